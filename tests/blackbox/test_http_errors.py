"""Black-box: the HTTP API's errors as a shop's developer meets them.

Every refusal is JSON naming what was wrong and what was expected: a
path id with a broken percent-escape, a method a route does not take, an
empty intake body or one that is JSON but no event, a request target or
headers too large.
"""
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
d = csbb.Daemon(a.bin).start()


def err_of(body):
    return body.get("error", {}) if isinstance(body, dict) else {}


try:
    st, _, body = d.post_events([csbb.order_event("pct-1", "50%off", customer="c%1"),
                                 csbb.order_event("pct-2", "50", customer="c")])
    t.eq((st, body.get("accepted")), (200, 2), "orders with a '%' in their ids")

    # ---- a path id: a '%' that starts no escape is refused naming id ----
    for path in ("/v1/orders/50%off", "/v1/orders/%zz", "/v1/orders/50%2",
                 "/v1/orders/50%/status", "/v1/customers/c%1", "/v1/customers/c%1/messages",
                 "/v1/customers/c%/journeys"):
        st, _, body = d.request("GET", path)
        e = err_of(body)
        t.check(st == 400 and e.get("field") == "id" and "%25" in e.get("message", ""),
                "%s: a broken escape is 400 naming id and how to send a '%%': %s %r"
                % (path, st, body))
    st, _, body = d.request("POST", "/v1/journeys/a%zz/enable")
    t.eq((st, err_of(body).get("field")), (400, "id"), "a journey id with a broken escape")
    # sent as %25, the '%' is part of the id
    st, _, body = d.request("GET", "/v1/orders/50%25off")
    t.eq((st, body.get("id") if isinstance(body, dict) else body), (200, "50%off"),
         "a '%' sent as %25 reads the order")
    st, _, body = d.request("GET", "/v1/customers/c%251/messages")
    t.eq((st, body.get("customer_id") if isinstance(body, dict) else body), (200, "c%1"),
         "a customer id with a '%' sent as %25")

    # ---- a customer no event named: 404 on every customer route, as the view ----
    for sub in ("", "/messages", "/journeys", "/discounts"):
        st, _, body = d.request("GET", "/v1/customers/nobody-here" + sub)
        e = err_of(body)
        t.check(st == 404 and e.get("field") == "id" and "nobody-here" in e.get("message", ""),
                "GET /v1/customers/nobody-here%s: 404 naming id: %s %r" % (sub, st, body))
    for sub in ("/messages", "/journeys", "/discounts"):
        st, _, body = d.request("GET", "/v1/customers/c" + sub)
        t.check(st == 200 and isinstance(body, dict) and body.get("customer_id") == "c",
                "a known customer with nothing yet: 200 and an empty list (%s): %s %r"
                % (sub, st, body))

    # ---- a method a route does not take: 405 naming it and the ones it takes ----
    for method, path, allow in (("DELETE", "/v1/events", "GET, HEAD, POST"),
                                ("PUT", "/v1/orders/50", "GET, HEAD"),
                                ("GET", "/v1/journeys/x/enable", "POST"),
                                ("PATCH", "/v1/callbacks/email", "POST"),
                                ("POST", "/healthz", "GET, HEAD")):
        st, h, body = d.request(method, path)
        msg = err_of(body).get("message", "")
        t.check(st == 405 and h.get("allow") == allow and msg.startswith(method + ":")
                and allow in msg,
                "%s %s: 405 naming the method and what the route takes: %s %r %r"
                % (method, path, st, h.get("allow"), body))

    # ---- an intake body that holds no event: 400 naming body ----
    for raw, got in (("", "empty"), ("  \r\n", "empty"), ("42", "an integer"),
                     ("null", "null"), ('"order.placed"', "a string"), ("true", "a boolean"),
                     ("4.5", "a number")):
        st, _, body = d.request("POST", "/v1/events", raw, {"Content-Type": "application/json"})
        e = err_of(body)
        msg = e.get("message", "")
        t.check(st == 400 and e.get("field") == "body" and got in msg
                and "a JSON object" in msg and "malformed" not in msg,
                "a body of %r: 400 naming body, saying what came and what was expected: %s %r"
                % (raw, st, body))
    # malformed JSON keeps its line, column and byte
    st, _, body = d.request("POST", "/v1/events", "4x", {"Content-Type": "application/json"})
    t.check(st == 400 and "malformed JSON at line 1" in err_of(body).get("message", ""),
            "malformed JSON that starts like a number: %s %r" % (st, body))

    # ---- a compressed body: 415 naming Content-Encoding, nothing stored ----
    # (gzip was read as JSON and told as a stray byte: "'[' or '{' expected near '\u001f'")
    ev = csbb.order_event("gz-1", "gz-1")
    packed = gzip.compress(json.dumps(ev).encode())
    for path, ctype in (("/v1/events", "application/json"), ("/v1/events", "application/x-ndjson"),
                        ("/v1/callbacks/email", "application/json"),
                        ("/v1/messages/retry", "application/json")):
        st, _, body = d.request("POST", path, packed, {"Content-Type": ctype, "Content-Encoding": "gzip"})
        e = err_of(body)
        t.check(st == 415 and e.get("field") == "Content-Encoding" and '"gzip"' in e.get("message", ""),
                "POST %s (%s) gzipped: 415 naming Content-Encoding: %s %r" % (path, ctype, st, body))
    st, _, body = d.request("GET", "/v1/orders/gz-1")
    t.eq(st, 404, "the gzipped event was not stored")
    st, _, body = d.request("POST", "/v1/events", json.dumps(ev),
                            {"Content-Type": "application/json", "Content-Encoding": "identity"})
    t.eq(st, 201, "Content-Encoding: identity is the body as it is: %r" % (body,))

    # ---- the keyed POST routes take no query parameters ----
    ev = csbb.order_event("dry-1", "dry-1")
    for path, body_ in (("/v1/events?dry_run=1", ev), ("/v1/callbacks/email?verbose=1", [])):
        st, _, body = d.request("POST", path, body_)
        e = err_of(body)
        t.check(st == 400 and e.get("field") == path.split("?")[1].split("=")[0]
                and "takes none" in e.get("message", ""),
                "POST %s: 400 naming the parameter: %s %r" % (path, st, body))
    st, _, body = d.request("GET", "/v1/orders/dry-1")
    t.eq(st, 404, "the event posted with ?dry_run=1 was not stored")
    st, _, body = d.request("POST", "/v1/events?dry_run=1", ev, key=False)
    t.eq(st, 401, "without a key: 401, whatever the query")

    # ---- the email callback wants JSON, as intake does ----
    item = '{"message_id": "<m-1@shop.example>", "status": "bounced"}'
    for ctype in ("application/x-www-form-urlencoded", "text/plain", None):
        st, _, body = d.request("POST", "/v1/callbacks/email", item,
                                {"Content-Type": ctype} if ctype else {})
        e = err_of(body)
        t.check(st == 415 and e.get("field") == "Content-Type"
                and "application/json" in e.get("message", ""),
                "the email callback with Content-Type %s: 415 naming it: %s %r" % (ctype, st, body))
    st, _, body = d.request("POST", "/v1/callbacks/email", item,
                            {"Content-Type": "application/json; charset=utf-8"})
    t.eq(st, 422, "with application/json the item is read (no such message: 422)")
    # a time before 1970 is a time, only too early: told as one before 2000 is
    for at in ("1969-12-31T23:00:00Z", "1999-12-31T23:00:00Z"):
        st, _, body = d.request("POST", "/v1/callbacks/email",
                                '{"message_id": "<m-1@shop.example>", "status": "bounced", '
                                '"occurred_at": "%s"}' % at, {"Content-Type": "application/json"})
        t.check("occurred_at" in str(body) and "from 2000-01-01 on" in str(body),
                "the email callback, occurred_at %s: too early: %s %r" % (at, st, body))
    st, _, body = d.request("POST", "/v1/callbacks/email", "[]",
                            {"Content-Type": "application/json"})
    e = err_of(body)
    t.check(st == 400 and e.get("field") == "body" and "empty" in e.get("message", ""),
            "the email callback with an empty array: 400 naming body: %s %r" % (st, body))
    st, _, body = d.request("POST", "/v1/callbacks/email", item,
                            {"Content-Type": "text/plain"}, key=False)
    t.eq(st, 401, "without a key: 401 first")

    # ---- a request target or headers too large: 414 / 431 in JSON ----
    def sized(path, hdrs):
        try:
            return d.request("GET", path, headers=hdrs)
        except Exception as ex:  # the connection closed without an answer
            return type(ex).__name__, {}, None
    for n in (8300, 32260, 40000, 60000):
        st, h, body = sized("/v1/events?x=" + "a" * n, {})
        e = err_of(body)
        t.check(st == 414 and h.get("content-type", "").startswith("application/json")
                and e.get("field") == "path" and "8192" in e.get("message", ""),
                "a request target of %d bytes: 414 in JSON naming path and the bound: %s %r"
                % (n, st, body if isinstance(body, dict) else str(body)[:80]))
        st, h, body = sized("/v1/events", {"X-Trace-Blob": "b" * n})
        e = err_of(body)
        if n < 32768 - 200:
            t.eq(st, 200, "a header of %d bytes is taken" % n)
            continue
        t.check(st == 431 and h.get("content-type", "").startswith("application/json")
                and e.get("field") == "X-Trace-Blob" and "32768" in e.get("message", ""),
                "headers of %d bytes: 431 in JSON naming the largest and the bound: %s %r"
                % (n, st, body if isinstance(body, dict) else str(body)[:80]))
    st, _, body = d.request("GET", "/v1/events?limit=1&type=order.placed")
    t.eq(st, 200, "an ordinary request after them")
    # a known parameter without '=' is not read as absent (the default limit
    # of 100); a value without a name is named as the query's
    for path, field, words in (("/v1/events?limit", "limit", "expected limit=VALUE, got the name alone"),
                               ("/v1/events?type=order.placed&limit", "limit", "got the name alone"),
                               ("/v1/events?=1", "query", "no name before its '='"),
                               ("/v1/orders/1/status?lang", "lang", "expected lang=VALUE")):
        st, _, body = d.request("GET", path)
        e = err_of(body)
        t.check(st == 400 and e.get("field") == field and words in e.get("message", ""),
                "%s: 400 naming %s: %s %r" % (path, field, st, body))
    st, _, body = d.request("GET", "/v1/events?limit=2&")
    t.eq(st, 200, "a trailing '&' is still nothing")
    # metrics count them under the route they were aimed at, with their own
    # codes; a path that is no route under too_large, not with the 404s
    st, _, _ = sized("/nope?x=" + "a" * 9000, {})
    t.eq(st, 414, "an oversized target on a path that is no route: 414")

    def counted(route, code):
        _, _, text = d.request("GET", "/metrics", key=False)
        for line in text.splitlines():
            if line.startswith('consonance_http_requests_total{route="%s",code="%s"} ' % (route, code)):
                return int(line.split()[-1])
        return 0
    t.eq((counted("events_get", 414), counted("events_get", 431), counted("too_large", 414),
          counted("other", "other"), counted("other", 414)), (4, 2, 1, 0, 0),
         "414 and 431 counted by the route they were aimed at")
    # a method or header name of bytes that are not UTF-8 still gets its JSON answer
    import socket
    for raw, want in ((b"G\xc3T /v1/events HTTP/1.1\r\nHost: x\r\n\r\n", b" 405 "),
                      (b"GET /v1/events HTTP/1.1\r\nHost: x\r\nX-\xe9: " + b"e" * 40000
                       + b"\r\n\r\n", b" 431 ")):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(raw)
        got = b""
        while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        t.check(want in got.split(b"\r\n", 1)[0] and b'"code":"' in got and b"internal" not in got,
                "%r...: %s in JSON: %r" % (raw[:24], want, got[:300]))
finally:
    d.stop()
    d.cleanup()

# ---- providers' callbacks: a 403 names the header or parameter that failed ----
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_SMS_TOKEN": "sms-token-0123456789", "CONSONANCE_PUBLIC_URL": "https://shop.example",
    "CONSONANCE_LINK_SECRET": "a-link-secret-of-some-length",
    "CONSONANCE_WHATSAPP_APP_SECRET": "wa-app-secret-0123456789",
    "CONSONANCE_WHATSAPP_VERIFY_TOKEN": "wa-verify-0123456789"}).start()
try:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for method, path, body_, hdrs, field, says in (
            ("POST", "/v1/callbacks/sms", "MessageSid=SM1&MessageStatus=sent", form,
             "X-Twilio-Signature", "missing"),
            ("POST", "/v1/callbacks/sms", "MessageSid=SM1&MessageStatus=sent",
             dict(form, **{"X-Twilio-Signature": "Zm9yZ2Vk"}), "X-Twilio-Signature", "public_url"),
            ("POST", "/v1/callbacks/whatsapp", "{}", {"Content-Type": "application/json"},
             "X-Hub-Signature-256", "missing"),
            ("POST", "/v1/callbacks/whatsapp", "{}",
             {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"},
             "X-Hub-Signature-256", "whatsapp_app_secret"),
            ("GET", "/v1/callbacks/whatsapp?hub.mode=subscribe&hub.verify_token=nope"
             "&hub.challenge=1", None, {}, "hub.verify_token", "whatsapp_verify_token"),
            ("GET", "/v1/callbacks/whatsapp?hub.mode=unsubscribe&hub.verify_token=wa-verify-0123456789"
             "&hub.challenge=1", None, {}, "hub.mode", "subscribe"),
            ("GET", "/v1/callbacks/whatsapp?hub.mode=subscribe&hub.verify_token=wa-verify-0123456789",
             None, {}, "hub.challenge", "missing")):
        st, _, body = d.request(method, path, body_, hdrs, key=False)
        e = err_of(body)
        t.check(st == 403 and e.get("field") == field and says in e.get("message", ""),
                "%s %s: 403 naming %s (%s): %s %r" % (method, path, field, says, st, body))
    st, _, body = d.request("POST", "/v1/callbacks/sms", "{}",
                            {"Content-Type": "application/json"}, key=False)
    t.check(st == 415 and "application/json" in err_of(body).get("message", ""),
            "the SMS callback's 415 says what came: %s %r" % (st, body))
    import hashlib
    import hmac
    for raw, says in ((b"[]", "got an array"), (b"{", "malformed JSON at line 1")):
        sig = "sha256=" + hmac.new(b"wa-app-secret-0123456789", raw, hashlib.sha256).hexdigest()
        st, _, body = d.request("POST", "/v1/callbacks/whatsapp", raw,
                                {"Content-Type": "application/json", "X-Hub-Signature-256": sig},
                                key=False)
        e = err_of(body)
        t.check(st == 400 and e.get("field") == "body" and says in e.get("message", "")
                and "()" not in e.get("message", ""),
                "a signed WhatsApp body of %r: 400 saying %s: %s %r" % (raw, says, st, body))
    st, _, body = d.request("GET", "/v1/callbacks/whatsapp?hub.mode=subscribe"
                            "&hub.verify_token=wa-verify-0123456789&hub.challenge=42", key=False)
    t.eq((st, body), (200, "42"), "the subscription check still echoes the challenge")
finally:
    d.stop()
    d.cleanup()
# ---- SMS callbacks with sms_token but no public_url: 503 not_configured, as documented ----
d = csbb.Daemon(a.bin, extra_env={"CONSONANCE_SMS_TOKEN": "sms-token-0123456789"}).start()
try:
    st, h, body = d.request("POST", "/v1/callbacks/sms", "MessageSid=SM1&MessageStatus=sent",
                            {"Content-Type": "application/x-www-form-urlencoded"}, key=False)
    e = err_of(body)
    t.check(st == 503 and e.get("code") == "not_configured" and "public_url" in e.get("message", "")
            and h.get("retry-after"), "no public_url: 503 not_configured: %s %r" % (st, body))
    t.check("`503 not_configured`" in open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "..", "..", "docs", "api.md")).read(),
            "docs/api.md documents not_configured")
finally:
    d.stop()
    d.cleanup()
t.done()
