"""Black-box: refusals keep a keep-alive connection usable.

A shop's backend and a proxy in front of the tracking page reuse one
connection for many requests. A refusal of a request whose body was read
whole, or that had none (a 404 for an unknown link, a 401 for a missing
key, a 405, a 415, a 414 or 431), leaves the connection open for the next
request; only a refusal sent before a body that was not read (a declared
size over the limit) closes it.
"""
import http.client
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
d = csbb.Daemon(a.bin).start()


try:
    c = d.conn()
    auth = {"Authorization": "Bearer " + d.key}
    # the first request opens the connection; every one after must reuse it
    st, _, _ = d.request("GET", "/healthz", conn=c)
    t.eq(st, 200, "healthz on a keep-alive connection")
    first = c.sock
    event = csbb.order_event("ka-1", "ka-1")
    tries = (
        ("GET", "/nope", None, {}, 404, "an unknown path"),
        ("GET", "/t/unknown-link", None, {}, 404, "an unknown tracking link"),
        ("GET", "/v1/orders/nobody", None, auth, 404, "an unknown order"),
        ("GET", "/v1/orders/nobody", None, {"Authorization": "Bearer wrong"}, 401,
         "a wrong key on a read route"),
        ("GET", "/v1/orders/nobody", None, {}, 401, "no key on a read route"),
        ("POST", "/v1/events", None, {}, 401, "intake without a key or body"),
        ("POST", "/v1/events", json.dumps(event), {"Content-Type": "application/json"}, 401,
         "intake with a body and no key"),
        ("POST", "/v1/events", json.dumps(event), dict(auth, **{"Content-Type": "text/plain"}),
         415, "intake with a body of another type"),
        ("DELETE", "/v1/events", None, auth, 405, "a method the route does not take"),
        ("PUT", "/v1/events", "x" * 100, auth, 405, "a method the route does not take, with a body"),
        ("GET", "/v1/orders/" + "x" * 9000, None, auth, 414, "a request target too long"),
        ("GET", "/healthz", None, {"X-Big": "y" * 33000}, 431, "headers too large"),
    )
    for method, path, body, headers, want, what in tries:
        try:
            st, hdrs, _ = d.request(method, path, body, headers, key=False, conn=c)
            t.eq(st, want, what)
            t.check(hdrs.get("connection", "").lower() != "close",
                    "%s: no Connection: close (%r)" % (what, hdrs.get("connection")))
            st, _, _ = d.request("GET", "/healthz", conn=c)
            t.check(st == 200 and first is not None and c.sock is first,
                    "%s: the next request goes over the same connection" % what)
        except (OSError, http.client.HTTPException) as e:
            t.check(False, "%s: the connection broke: %r" % (what, e))
            c.close()
        if c.sock is not first:  # go on with a fresh one
            c.close()
            c = d.conn()
            d.request("GET", "/healthz", conn=c)
            first = c.sock
    # the one place a refusal closes: a body declared over the limit, not read
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    s.sendall(("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
               % (d.key, 1 << 30)).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    t.check(data.startswith(b"HTTP/1.1 413") and b"onnection: close" in data,
            "a body declared over the limit: 413, and the connection closed: %r" % data[:200])
    c.close()
finally:
    d.stop()
    d.cleanup()
t.done()
