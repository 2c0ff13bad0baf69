"""Black-box: docs/api.md against the daemon: every metric /metrics prints
and every route label and status code it uses is documented; HEAD answers as GET does
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
    # the status codes counted by their own label, as the metrics table lists them
    m = re.search(r"`consonance_http_requests_total` \| counter \| `route`, `code` \(([^)]*)\)",
                  api)
    listed = set(re.findall(r"\b\d{3}\b", m.group(1))) if m else set()
    t.check(len(listed) > 10, "docs/api.md lists the counted status codes: %r" % sorted(listed))
    for c in (200, 201, 303, 304, 400, 401, 403, 404, 405, 413, 414, 415, 422, 429, 431, 500, 503):
        t.check(str(c) in listed, "status %d is in docs/api.md's list of counted codes" % c)
    for line in text.splitlines():
        m = re.search(r'code="(\d+)"', line)
        if m:
            t.check(m.group(1) in listed, "code label %s is documented: %s" % (m.group(1), line))
    for rt in sorted(routes):
        t.check("`%s`" % rt in api, "route label %s is documented in docs/api.md" % rt)
finally:
    d.stop()
    d.cleanup()
t.done()
