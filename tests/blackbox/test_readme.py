"""Black-box: the README's curl walk-through works as written (the event it
posts is accepted, the order it then reads shows it)."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md"), encoding="utf-8").read()
m = re.search(r"-d '(\{.*?\})' \\", readme, re.S)
t.check(m is not None, "README has a curl -d example")
# the README lets the shell insert the current time: do the same
now = __import__("time").strftime("%Y-%m-%dT%H:%M:%SZ", __import__("time").gmtime())
event = json.loads(re.sub(r"\s+", " ", m.group(1).replace("'$(date -u +%FT%TZ)'", now)))
paths = re.findall(r"http://127\.0\.0\.1:8080(/v1/[^' \n]*)", readme)
d = csbb.Daemon(a.bin).start()
try:
    st, _, body = d.post_events(event)
    t.eq((st, body.get("status")), (201, "accepted"), "README event accepted: %r" % (body,))
    for p in paths:
        method = "POST" if p == "/v1/events" else "GET"
        if method == "GET":
            st, _, body = d.request("GET", p)
            t.eq(st, 200, "README GET " + p)
    st, _, order = d.request("GET", "/v1/orders/" + event["data"]["id"])
    t.eq(order["items"][0]["sku"], event["data"]["items"][0]["sku"], "README order view")
finally:
    d.stop()
    d.cleanup()
t.done()
