"""Black-box: a date on an order's status answer and tracking page reads
in the order of the customer's region, as their messages do: month first
for a customer in the United States (en-US: "Thursday, November 26"), day
first for one in Britain (en-GB: "Thursday, 26 November"). Both got the
British order."""
import datetime as dt
import hashlib
import hmac
import os
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
SECRET = "a-link-secret-of-some-length"
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_PUBLIC_URL": "https://shop.example",
    "CONSONANCE_LINK_SECRET": SECRET,
})
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
placed, delivered = now - dt.timedelta(days=6), now - dt.timedelta(days=4)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def events(cid, locale, zone):
    oid = "o-" + cid
    return [
        {"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": iso(placed),
         "data": {"id": cid, "email": cid + "@example.com", "locale": locale, "timezone": zone}},
        {"event_id": "e-" + oid, "type": "order.placed", "occurred_at": iso(placed),
         "data": {"id": oid, "customer_id": cid, "currency": "USD", "placed_at": iso(placed),
                  "items": [{"sku": "MUG", "name": "Mug", "unit_price": "9.00", "quantity": 1}]}},
        {"event_id": "s-" + oid, "type": "shipment.created", "occurred_at": iso(placed),
         "data": {"id": "S" + oid, "order_id": oid, "carrier": "dhl", "tracking_number": "T" + cid}},
        {"event_id": "d-" + oid, "type": "tracking.event", "occurred_at": iso(delivered),
         "data": {"shipment_id": "S" + oid, "carrier": "dhl", "tracking_number": "T" + cid,
                  "status": "delivered"}},
    ]


def token(oid):
    mac = hmac.new(SECRET.encode(), ("t:" + oid).encode(), hashlib.sha256)
    return oid.encode().hex() + "." + mac.hexdigest()[:32]


def day(zone, month_first):
    x = delivered.astimezone(zoneinfo.ZoneInfo(zone))
    wd, mo = x.strftime("%A"), x.strftime("%B")
    return "%s, %s %d" % (wd, mo, x.day) if month_first else "%s, %d %s" % (wd, x.day, mo)


try:
    d.start()
    st, _, _ = d.post_events(events("us", "en-US", "America/New_York") +
                             events("gb", "en-GB", "Europe/London"))
    t.eq(st, 200, "events accepted")
    for cid, zone, month_first in (("us", "America/New_York", True),
                                   ("gb", "Europe/London", False)):
        want = day(zone, month_first)
        got = t.wait_for(lambda: (lambda r: r[0] == 200 and "delivered" in r[2].get("text", "")
                                  and r[2])(d.request("GET", "/v1/orders/o-%s/status" % cid)),
                         "%s's order delivered" % cid)
        if got:
            t.check(" on %s." % want in got["text"],
                    "%s's status answer names the day %r: %r" % (cid, want, got["text"]))
        st, _, html = d.request("GET", "/t/" + token("o-" + cid), key=False)
        t.eq(st, 200, "%s's tracking page" % cid)
        t.check(want in (html or ""), "%s's tracking page names the day %r" % (cid, want))
finally:
    d.stop()
    d.cleanup()
t.done()
