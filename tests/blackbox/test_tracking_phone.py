"""Black-box: the tracking page on a phone stays readable.

A shop's `brand_color` may be light (a yellow, a pale blue): the header's
name, the buttons' labels and the help button's text on white must still
stand out from what they are written on, and the help button's border (all
that shows a white button on white) by WCAG's 3:1 for controls. And a word longer than a phone is
wide -- a German compound in an item's name, a carrier's text or place
without blanks, a long tracking number -- must break rather than widen the
page (a phone's browser then shrinks all of it to fit). Headless Chromium
(Debian's, through playwright-core; tests/browser/tracking_page.mjs)
renders the page of such an order on a phone for a light and a dark
colour, and checks every text's contrast (WCAG's 4.5:1), the 3:1 of the
marks that say where the order is (the progress bar, the history's current
dot) and that nothing scrolls sideways, with the rest of its checks. Those
marks are in a shade of a light colour, of its hue, and in a dark colour
itself."""
import colorsys
import datetime as dt
import hashlib
import hmac
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

node, msg = csbb.browser_missing(root)
if msg:
    if os.environ.get("CI"):
        print("FAIL: " + msg + " (scripts/install-deps.sh installs them)")
        sys.exit(1)
    print("SKIP: " + msg)
    sys.exit(csbb.SKIP)

SECRET = "test-link-secret-0123456789"
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def token(oid):
    mac = hmac.new(SECRET.encode(), ("t:" + oid).encode(), hashlib.sha256)
    return oid.encode().hex() + "." + mac.hexdigest()[:32]


placed = now - dt.timedelta(hours=30)
TN = "00340434161094015902123456789012"
events = [
    {"event_id": "c-anna", "type": "customer.upserted", "occurred_at": iso(now),
     "data": {"id": "anna", "email": "anna@example.de", "locale": "de", "timezone": "Europe/Berlin"}},
    {"event_id": "o-b1", "type": "order.placed", "occurred_at": iso(placed),
     "data": {"id": "b1", "customer_id": "anna", "currency": "EUR", "placed_at": iso(placed),
              "items": [{"sku": "ZELT-2", "name": "Zelt Kauz 2", "unit_price": "89.00", "quantity": 1},
                        {"sku": "BAND", "name": "Schlafsackkompressionspacksackverschlussbandersatzteil",
                         "unit_price": "4.00", "quantity": 1}]}},
    {"event_id": "s-b1", "type": "shipment.created", "occurred_at": iso(placed + dt.timedelta(hours=3)),
     "data": {"id": "Sb1", "order_id": "b1", "carrier": "dhl", "tracking_number": TN,
              "destination": {"country": "DE", "postal_code": "10115", "city": "Berlin"}}},
    {"event_id": "sc-b1", "type": "tracking.event", "occurred_at": iso(placed + dt.timedelta(hours=5)),
     "data": {"shipment_id": "Sb1", "carrier": "dhl", "tracking_number": TN, "status": "in_transit",
              "location": {"city": "Leipzig", "country": "DE"}}},
    # a code no table knows: shown with the carrier's text, here without blanks
    {"event_id": "sc-b1-2", "type": "tracking.event", "occurred_at": iso(placed + dt.timedelta(hours=8)),
     "data": {"shipment_id": "Sb1", "carrier": "dhl", "tracking_number": TN, "carrier_code": "ZZ-UNKNOWN",
              "carrier_text": "Sendungsstatus:Weiterleitung_an_Paketzentrum_Leipzig-Radefeld_Band_17",
              "location": {"city": "Frankfurt-Flughafen-Frachtzentrum-Süd", "country": "DE"}}},
]

outdir = os.environ.get("CS_SCREENSHOTS", os.path.join(os.getcwd(), "screenshots"))
# a yellow, a pale blue, and a dark green that takes white text
for color in ("#ffd400", "#8fd3f4", "#2d5b3f"):
    d = csbb.Daemon(a.bin, extra_env={
        "CONSONANCE_LINK_SECRET": SECRET, "CONSONANCE_SHOP_NAME": "Waldkauz",
        "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin", "CONSONANCE_BRAND_COLOR": color,
        "CONSONANCE_RETURNS_URL": "https://shop.example/returns",
        "CONSONANCE_SUPPORT_EMAIL": "hilfe@waldkauz.example"})
    try:
        d.start()
        st, _, body = d.post_events(events)
        t.eq(st, 200, "events accepted: %r" % (body,))
        url = "http://127.0.0.1:%d/t/%s" % (d.port, token("b1"))
        # the marks' colour: the brand colour where it stands out (the
        # green), else a darker shade of the same hue
        st, _, html = d.request("GET", "/t/" + token("b1"), key=False)
        m = re.search(r"--mark:(#[0-9a-f]{6})", html)
        t.check(m, "the page names the marks' colour")
        if m:
            mark = m.group(1)
            if color == "#2d5b3f":
                t.eq(mark, color, "a dark colour's marks are in the colour itself")
            else:
                def hsv(c):
                    return colorsys.rgb_to_hsv(*(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)))
                (h0, _, v0), (h1, _, v1) = hsv(color), hsv(mark)
                t.check(v1 < v0 and abs(h1 - h0) * 360 < 3,
                        "a light colour's marks (%s) are a darker shade of it (%s)" % (mark, color))
        name = "brand-" + color[1:]
        r = subprocess.run([node, os.path.join(root, "tests", "browser", "tracking_page.mjs"), outdir,
                            "%s=%s,de,Unterwegs" % (name, url)],
                           capture_output=True, text=True, timeout=180)
        print(r.stdout, r.stderr[-2000:])
        t.eq(r.returncode, 0, "the page in %s in headless Chromium" % color)
    finally:
        d.stop()
        d.cleanup()
t.done()
