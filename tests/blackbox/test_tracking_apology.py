"""Black-box: the tracking page's apology for a promise it broke, as a percentage.

An order in a currency other than the shop's (here USD in a EUR shop) gets
a percent code when it arrives late (docs/configuration.md, compensation
settings). The page names what the code gives as the apology mail does: in
German with a narrow no-break space before the percent sign ("10 % Rabatt",
U+202F, as German typography and the shipped messages write it), so the
number and its sign never part at the end of a line; in English "10% off"."""
import datetime as dt
import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()

SECRET = "test-link-secret-0123456789"
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def token(oid):
    mac = hmac.new(SECRET.encode(), ("t:" + oid).encode(), hashlib.sha256)
    return oid.encode().hex() + "." + mac.hexdigest()[:32]


# placed within three days (an order the watch first sees later was
# promised nothing by us), promised for a day at least one before today's
# (48 hours back is another day in any zone), delivered now: late
placed = now - dt.timedelta(hours=60)
promised = now - dt.timedelta(hours=50)
events = [
    {"event_id": "c-anna", "type": "customer.upserted", "occurred_at": iso(placed),
     "data": {"id": "anna", "email": "anna@example.de", "locale": "de", "timezone": "Europe/Berlin"}},
    {"event_id": "o-u1", "type": "order.placed", "occurred_at": iso(placed),
     "data": {"id": "u1", "customer_id": "anna", "currency": "USD", "placed_at": iso(placed),
              "totals": {"total": "80.00"},
              "promised_delivery": {"earliest": iso(promised - dt.timedelta(days=1)),
                                    "latest": iso(promised)},
              "items": [{"sku": "ZELT-2", "name": "Zelt Kauz 2", "unit_price": "80.00", "quantity": 1}]}},
    {"event_id": "s-u1", "type": "shipment.created", "occurred_at": iso(placed + dt.timedelta(hours=3)),
     "data": {"id": "Su1", "order_id": "u1", "carrier": "dhl", "tracking_number": "JJDu1",
              "destination": {"country": "DE", "postal_code": "10115", "city": "Berlin"}}},
    {"event_id": "sc-u1", "type": "tracking.event", "occurred_at": iso(now - dt.timedelta(minutes=5)),
     "data": {"shipment_id": "Su1", "carrier": "dhl", "tracking_number": "JJDu1", "status": "delivered",
              "location": {"city": "Berlin", "country": "DE"}}},
]

d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_LINK_SECRET": SECRET, "CONSONANCE_SHOP_NAME": "Waldkauz",
    "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin", "CONSONANCE_SHOP_CURRENCY": "EUR",
    "CONSONANCE_COMPENSATION_BUDGET": "200"})
try:
    d.start()
    st, _, body = d.post_events(events)
    t.eq(st, 200, "events accepted: %r" % (body,))

    def code():
        st, _, ov = d.request("GET", "/v1/orders/u1")
        return st == 200 and ((ov.get("promise") or {}).get("compensation") or {}).get("code")

    got = t.wait_for(code, "a compensation code for the late order", timeout=30)
    st, _, disc = d.request("GET", "/v1/customers/anna/discounts")
    codes = [x for x in disc.get("discounts", []) if x.get("journey") == "compensation"] \
        if st == 200 else []
    t.check(len(codes) == 1 and codes[0].get("kind") == "percent" and codes[0].get("code") == got,
            "the code is a percent code: %r" % (codes,))
    if got and codes:
        pct = "%g" % codes[0]["value"]
        st, _, html = d.request("GET", "/t/" + token("u1"), key=False)
        t.eq(st, 200, "the page opens")
        t.check(got in html, "the page shows the code")
        said = html[html.find("<h2>Entschuldigung</h2>"):][:400]
        t.check(pct + "\u202f% Rabatt" in said,
                "the page writes the percentage with a narrow no-break space (%s\u202f%%): %r"
                % (pct, said))
        t.check(pct + " % Rabatt" not in html, "and with no plain space")
        st, _, en = d.request("GET", "/t/" + token("u1") + "?lang=en", key=False)
        t.check(st == 200 and "this code gives you %s%% off on your next order" % pct in en,
                "in English: %s%% off: %r" % (pct, en[en.find("<h2>We are sorry</h2>"):][:400]))
finally:
    d.stop()
    d.cleanup()
t.done()
