"""Black-box: a parcel the shop cancelled (shipment.cancelled) through the real daemon.

An order in two parcels whose second label was voided, its first parcel
delivered on time: the order view keeps the voided parcel with its
cancelled_at and reason; the status answer and the tracking page show only
the delivered one; the order watch closes the order on it and raises no
at-risk flag, delay notice or compensation for the voided label (it would
follow it as the latest parcel on its way, past the shop's promise). An
order whose only parcel was cancelled (the cancellation came before the
announcement) reads as not shipped yet, gets no shipping notice, and a
delivered scan for the voided parcel is kept but does not make it
delivered (the delivered journey keeps waiting). A cancellation of a delivered parcel
is refused with 422 naming data.id, alone and in a batch; sent twice, a
cancellation is a duplicate."""
import datetime as dt
import hashlib
import hmac
import os
import shutil
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

tmp = tempfile.mkdtemp(prefix="cs-void-")
jdir = os.path.join(tmp, "journeys")
os.makedirs(jdir)
for f in ("30-shipped.yaml", "45-delivery-problem.yaml", "46-late-apology.yaml",
          "47-parcel-returned.yaml", "50-delivered-tips.yaml"):
    shutil.copy(os.path.join(root, "etc", "journeys", f), jdir)
env = {
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_PUBLIC_URL": "https://shop.example/consonance",
    "CONSONANCE_LINK_SECRET": "test-link-secret-0123456789",
    "CONSONANCE_COMPENSATION_BUDGET": "200",
    "CONSONANCE_DEFAULT_LOCALE": "en",
}
d = csbb.Daemon(a.bin, extra_env=env)
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def order(oid, at, promised_to=None):
    data = {"id": oid, "customer_id": "vera", "currency": "EUR", "placed_at": iso(at),
            "totals": {"shipping": "4.90", "total": "59.00"},
            "items": [{"sku": "ZELT-2", "name": "Zelt Kauz 2", "unit_price": "59.00", "quantity": 1}]}
    if promised_to:
        data["promised_delivery"] = {"latest": iso(promised_to)}
    return {"event_id": "o-" + oid, "type": "order.placed", "occurred_at": iso(at), "data": data}


def shipment(sid, oid, at):
    return {"event_id": "s-" + sid, "type": "shipment.created", "occurred_at": iso(at),
            "data": {"id": sid, "order_id": oid, "carrier": "dhl", "tracking_number": "JJD" + sid,
                     "origin": {"country": "DE", "region": "SN"},
                     "destination": {"country": "DE", "postal_code": "10115", "city": "Berlin"}}}


def cancel(sid, oid, at, reason=None, eid=None):
    data = {"id": sid, "order_id": oid}
    if reason:
        data["reason"] = reason
    return {"event_id": eid or "x-" + sid, "type": "shipment.cancelled", "occurred_at": iso(at),
            "data": data}


def scan(sid, n, at, status, city=None):
    data = {"shipment_id": sid, "carrier": "dhl", "tracking_number": "JJD" + sid, "status": status}
    if city:
        data["location"] = {"city": city, "country": "DE"}
    return {"event_id": "sc-%s-%d" % (sid, n), "type": "tracking.event", "occurred_at": iso(at),
            "data": data}


def token(oid):
    mac = hmac.new(env["CONSONANCE_LINK_SECRET"].encode(), ("t:" + oid).encode(), hashlib.sha256)
    return oid.encode().hex() + "." + mac.hexdigest()[:32]


def view(oid):
    st, _, v = d.request("GET", "/v1/orders/" + oid)
    t.eq(st, 200, "order view " + oid)
    return v if st == 200 else {}


def parcel(v, sid):
    return next((s for s in v.get("shipments", []) if s["id"] == sid), None)


def runs(oid, waiting=False):
    """The journeys of the order's runs; with waiting, those of its runs
    still waiting for a tracking event too (as "delivered_tips:waiting")."""
    st, _, body = d.request("GET", "/v1/customers/vera/journeys")
    return [r["journey"] + (":waiting" if waiting and r.get("waiting_for") == "tracking.event" else "")
            for r in (body.get("journeys", []) if st == 200 else []) if r.get("order_id") == oid]


def lookup(oid, key):
    """Where the lookup form sends the customer ("" when it does not)."""
    st, h, _ = d.request("POST", "/t", urllib.parse.urlencode({"order": oid, "key": key}),
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, key=False)
    return h.get("location", "") if st == 303 else ""


def watched(oid):
    """The watch's record once it has looked at the order's latest event."""
    v = view(oid)
    pr = v.get("promise")
    return pr if pr and (pr.get("current") or {}).get("updated_at") else None


try:
    d.start()

    # -- two parcels, the second label voided, the first delivered on time --
    placed = now - dt.timedelta(hours=60)
    st, _, _ = d.post_events([
        {"event_id": "c-vera", "type": "customer.upserted", "occurred_at": iso(placed),
         "data": {"id": "vera", "name": "Vera", "email": "vera@example.com", "locale": "en",
                  "consents": {"email": {"transactional": True}}}},
        order("v1", placed, promised_to=placed + dt.timedelta(hours=10)),
        shipment("V1A", "v1", placed + dt.timedelta(hours=3)),
        shipment("V1B", "v1", placed + dt.timedelta(hours=4)),
        cancel("V1B", "v1", placed + dt.timedelta(hours=5), reason="duplicate_label"),
        scan("V1A", 1, placed + dt.timedelta(hours=5), "in_transit", city="Leipzig"),
        scan("V1A", 2, placed + dt.timedelta(hours=9), "delivered", city="Berlin"),
    ])
    t.eq(st, 200, "events accepted")
    # the same cancellation again: a duplicate
    st, _, body = d.post_events(cancel("V1B", "v1", placed + dt.timedelta(hours=5),
                                       reason="duplicate_label"))
    t.eq((st, body.get("status")), (200, "duplicate"), "a cancellation sent twice is a duplicate")

    v = view("v1")
    b = parcel(v, "V1B") or {}
    t.check(b.get("cancelled_at") is not None and b.get("cancel_reason") == "duplicate_label",
            "the view keeps the voided parcel with when and why: %r" % b)
    t.eq((parcel(v, "V1A") or {}).get("cancelled_at", "missing"), None,
         "the delivered parcel is not cancelled")
    t.check("shipment.cancelled" in [e["type"] for e in v.get("timeline", [])],
            "the cancellation is in the order's timeline")

    pr = t.wait_for(lambda: (lambda p: p if p and p.get("next_check_at") is None else None)(
        watched("v1")), "the watch closes v1 on its delivered parcel")
    # everything the events make the engine do, done: nothing may follow
    t.check(d.settle(), "the engine settles")
    v = view("v1")
    pr = v.get("promise") or {}
    t.eq(pr.get("at_risk"), False, "no at-risk flag for the voided label")
    t.eq(pr.get("broken_at"), None, "the promise is not broken")
    t.check("compensation" not in pr, "no compensation: %r" % pr.get("compensation"))
    t.eq([e for e in v.get("timeline", []) if e["type"] == "signal"], [],
         "no signal of the watch for v1")
    t.check(not ({"delivery_problem", "late_apology", "parcel_returned"} & set(runs("v1"))),
            "no problem or apology journey for v1: %r" % runs("v1"))
    st, _, body = d.request("GET", "/v1/customers/vera/discounts")
    t.eq(body.get("discounts") if st == 200 else None, [], "no code issued")

    st, _, s1 = d.request("GET", "/v1/orders/v1/status?lang=en")
    t.eq(st, 200, "status answer of v1")
    t.eq(s1.get("status"), "delivered", "v1 delivered: %r" % s1)
    t.eq([p["tracking_number"] for p in s1.get("parcels", [])], ["JJDV1A"],
         "the status answer lists only the delivered parcel")
    t.check("2 parcels" not in s1.get("text", "") and "delivered" in s1.get("text", ""),
            "one parcel, delivered: %r" % s1.get("text"))
    st, _, html = d.request("GET", "/t/" + token("v1") + "?lang=en", key=False)
    t.eq(st, 200, "tracking page of v1")
    t.check("JJDV1A" in html and "JJDV1B" not in html,
            "the page shows the delivered parcel, not the voided one")

    # a delivered scan of the voided label: kept, not counted, no revival
    st, _, _ = d.post_events([scan("V1B", 1, now - dt.timedelta(minutes=5), "delivered")])
    t.eq(st, 200, "scan of the voided parcel accepted")
    b = parcel(view("v1"), "V1B") or {}
    t.check(b.get("cancelled_at") is not None and len(b.get("scans", [])) == 1 and
            b.get("status") is None, "the scan is shown, the parcel stays cancelled: %r" % b)

    # a delivered parcel cannot be cancelled: 422 naming data.id, alone ...
    st, _, body = d.post_events(cancel("V1A", "v1", now - dt.timedelta(minutes=1), eid="x-late"))
    err = body.get("error", {}) if isinstance(body, dict) else {}
    t.eq((st, err.get("code"), err.get("field")), (422, "rule", "data.id"),
         "cancelling a delivered parcel is refused: %r" % body)
    t.check("delivered" in err.get("message", ""), "the message says why: %r" % err)
    # ... and in a batch, beside an event that is taken
    st, _, body = d.post_events([
        cancel("V1A", "v1", now - dt.timedelta(minutes=1), eid="x-late-2"),
        order("v9", now - dt.timedelta(hours=1)),
    ])
    res = body.get("results", [{}, {}]) if st == 200 else [{}, {}]
    t.eq((st, body.get("accepted"), body.get("rejected"), body.get("failed")), (200, 1, 1, 0),
         "a batch takes the rest: %r" % body)
    t.eq((res[0].get("status"), res[0].get("error", {}).get("field")), ("rejected", "data.id"),
         "the refused cancellation by its index")
    t.eq((parcel(view("v1"), "V1A") or {}).get("cancelled_at"), None, "the delivered parcel stays")
    logged = d.all_event_ids()
    t.check("x-late" not in logged and "x-late-2" not in logged and "o-v9" in logged,
            "a refused cancellation is not logged")

    # -- the only parcel cancelled, the cancellation before the announcement --
    placed2 = now - dt.timedelta(hours=2)
    st, _, body = d.post_events([order("v2", placed2),
                                 cancel("V2C", "v2", now - dt.timedelta(minutes=30), reason="void")])
    t.eq(st, 200, "a cancellation before its parcel is taken")
    st, _, _ = d.post_events(shipment("V2C", "v2", now - dt.timedelta(hours=1)))
    t.eq(st, 201, "the (older) announcement")
    c = parcel(view("v2"), "V2C") or {}
    t.eq(c.get("cancel_reason"), "void", "the kept cancellation applies to the older announcement")
    t.wait_for(lambda: watched("v2"), "the watch looks at v2")
    t.check(d.settle(), "the engine settles")
    t.check("shipped" not in runs("v2"), "no shipping notice for a cancelled parcel: %r" % runs("v2"))
    st, _, s2 = d.request("GET", "/v1/orders/v2/status?lang=en")
    t.eq((st, s2.get("status"), s2.get("parcels")), (200, None, []), "v2 is not shipped: %r" % s2)
    t.check("is being prepared" in s2.get("text", ""), "reads as not shipped yet: %r" % s2.get("text"))
    st, _, html = d.request("GET", "/t/" + token("v2") + "?lang=en", key=False)
    t.check(st == 200 and "JJDV2C" not in html and 'aria-current="step">Ordered' in html,
            "the page shows no parcel, the order at 'Ordered'")
    # the cancelled label's postcode opens no page (the order has no other)
    t.eq(lookup("v2", "10115"), "", "the lookup does not take a cancelled parcel's postcode")
    pr = view("v2").get("promise") or {}
    t.check(pr.get("next_check_at") is not None and pr.get("at_risk") is False,
            "the watch keeps the order open, not at risk: %r" % pr)
    # the voided parcel delivered anyway: no "delivered" journey, still cancelled
    st, _, _ = d.post_events([scan("V2C", 1, now - dt.timedelta(minutes=2), "delivered")])
    t.check(d.settle(), "the engine settles")
    t.check("delivered_tips:waiting" in runs("v2", True),
            "the delivered journey still waits for a delivery: %r" % runs("v2", True))
    st, _, s2 = d.request("GET", "/v1/orders/v2/status?lang=en")
    t.eq(s2.get("status"), None, "still not shipped")
    # announced anew after the cancellation: a parcel again
    st, _, _ = d.post_events([dict(shipment("V2C", "v2", now), event_id="s-V2C-again")])
    st, _, s2 = d.request("GET", "/v1/orders/v2/status?lang=en")
    t.eq([p["tracking_number"] for p in s2.get("parcels", [])], ["JJDV2C"],
         "revived by a newer announcement")
    t.check(lookup("v2", "10115").startswith("https://shop.example/consonance/t/"),
            "the revived parcel's postcode opens the page")
finally:
    d.stop()
    d.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
