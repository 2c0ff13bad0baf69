"""Black-box: docs/api.md against the daemon: every metric /metrics prints
and every route label it uses is documented; HEAD answers as GET does
without a body; application/ndjson is taken as NDJSON.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "..", "docs", "api.md"), encoding="utf-8") as f:
    api = f.read()
d = csbb.Daemon(a.bin).start()
try:
    st, _, body = d.request("POST", "/v1/events",
                            '{"event_id":"nd-1","type":"order.placed","occurred_at":'
                            '"2026-03-01T10:00:00Z","data":{"id":"nd1","customer_id":"c-1",'
                            '"currency":"EUR","items":[{"sku":"A","name":"A","unit_price":"1.00",'
                            '"quantity":1}]}}\n', {"Content-Type": "application/ndjson"})
    t.eq((st, body.get("accepted") if isinstance(body, dict) else body), (200, 1),
         "application/ndjson is taken as NDJSON")
    for path in ("/v1/events?limit=1", "/v1/orders/nd1", "/healthz"):
        st_get, h_get, _ = d.request("GET", path)
        c = d.conn()
        c.request("HEAD", path, headers={"Authorization": "Bearer " + d.key})
        r = c.getresponse()
        data = r.read()
        c.close()
        t.check(r.status == st_get == 200 and data == b""
                and r.getheader("Content-Type") == h_get.get("content-type"),
                "HEAD %s answers as GET without a body: %s %r" % (path, r.status, data[:40]))
    d.request("GET", "/nope")
    st, _, text = d.request("GET", "/metrics", key=False)
    names = set()
    routes = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        m = re.search(r'route="([a-z_]+)"', line)
        if m:
            routes.add(m.group(1))
    t.check(len(names) > 10, "metrics printed: %r" % sorted(names))
    for n in sorted(names):
        t.check("`%s`" % n in api, "metric %s is documented in docs/api.md" % n)
    t.check("other" in routes and "events_post" in routes, "route labels seen: %r" % routes)
    for rt in sorted(routes):
        t.check("`%s`" % rt in api, "route label %s is documented in docs/api.md" % rt)
finally:
    d.stop()
    d.cleanup()
t.done()
