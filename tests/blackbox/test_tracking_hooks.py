"""Black-box: carrier scans come in raw and leave normalized. An aggregator
webhook (AfterShip format, aftership-hmac-sha256) and our own signed scan
form deliver checkpoints; the carrier tables map codes and texts to
statuses and incident reasons; a repeated delivery records nothing twice;
forged signatures, stale signatures and future timestamps are refused with
a clear answer; a raw scan posted to /v1/events is mapped too, and an
unknown code is kept, shown as in transit and counted."""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
AS_SECRET = "aftership-secret-1"
TR_SECRET = "tracking-secret-1"
d = csbb.Daemon(a.bin, extra_env={"CONSONANCE_AFTERSHIP_SECRET": AS_SECRET,
                                  "CONSONANCE_TRACKING_SECRET": TR_SECRET})


def iso(offset_s=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def aftership(body, secret=AS_SECRET):
    raw = json.dumps(body).encode()
    sig = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return d.request("POST", "/v1/tracking/aftership", body=raw, key=False,
                     headers={"Content-Type": "application/json", "aftership-hmac-sha256": sig})


def own(body, secret=TR_SECRET, ts=None):
    raw = json.dumps(body).encode()
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(secret.encode(), str(ts).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return d.request("POST", "/v1/tracking/scans", body=raw, key=False,
                     headers={"Content-Type": "application/json",
                              "X-Consonance-Signature": "t=%d,v1=%s" % (ts, mac)})


def scans(order_id):
    st, _, o = d.request("GET", "/v1/orders/" + order_id)
    return o["shipments"][0]["scans"] if st == 200 and o.get("shipments") else []


try:
    d.start()
    st, _, _ = d.post_events([
        csbb.order_event("o-1", "1001", at=iso(-86400 * 2)),
        {"event_id": "s-1", "type": "shipment.created", "occurred_at": iso(-86400),
         "data": {"id": "SHP-1", "order_id": "1001", "carrier": "dhl",
                  "tracking_number": "00340434161094015902"}},
        csbb.order_event("o-2", "1002", at=iso(-86400 * 2)),
        {"event_id": "s-2", "type": "shipment.created", "occurred_at": iso(-86400),
         "data": {"id": "SHP-2", "order_id": "1002", "carrier": "dpd", "tracking_number": "01905002345612"}},
    ])
    t.eq(st, 200, "orders and shipments accepted")

    hook = {"event": "tracking_update", "msg": {
        "slug": "dhl-germany", "tracking_number": "00340434161094015902", "tag": "AttemptFail",
        "checkpoints": [
            {"checkpoint_time": iso(-7200), "tag": "InTransit", "subtag": "InTransit_001",
             "message": "Die Sendung wurde im Ziel-Paketzentrum bearbeitet.", "city": "Leipzig",
             "zip": "04109", "country_iso3": "DEU"},
            {"checkpoint_time": iso(-3600), "tag": "OutForDelivery", "subtag": "OutForDelivery_001",
             "message": "Die Sendung wurde in das Zustellfahrzeug geladen.", "city": "Berlin"},
            {"checkpoint_time": iso(-600), "tag": "AttemptFail", "subtag": "AttemptFail_002",
             "message": "Der Empfänger wurde nicht angetroffen.", "city": "Berlin"},
        ]}}
    st, _, body = aftership(hook)
    t.eq((st, body.get("accepted"), body.get("duplicates")), (200, 3, 0), "three checkpoints recorded")
    got = scans("1001")
    t.eq([(s["status"], s.get("reason")) for s in got],
         [("in_transit", None), ("out_for_delivery", None), ("failed_attempt", "recipient_absent")],
         "mapped statuses and the incident reason")
    if got:
        t.eq(got[0]["location"], {"city": "Leipzig", "postal_code": "04109", "country": "DE"},
             "location with the country as alpha-2")
        t.eq(got[2]["carrier_code"], "AttemptFail_002", "the raw code is kept")
    st, _, body = aftership(hook)
    t.eq((st, body.get("accepted"), body.get("duplicates")), (200, 0, 3), "a repeated webhook adds nothing")
    t.eq(len(scans("1001")), 3, "still three scans")
    st, _, _ = aftership(hook, secret="guess")
    t.eq(st, 403, "a forged aggregator webhook is refused")

    # our own form: a future timestamp is refused by index; the others land
    st, _, body = own({"carrier": "DPD", "tracking_number": "01905002345612", "scans": [
        {"code": "AT_DELIVERY_DEPOT", "occurred_at": iso(-5000)},
        {"code": "DELIVERY_FAILED", "text": "Empfänger nicht angetroffen", "occurred_at": iso(-100)},
        {"code": "DELIVERED", "occurred_at": iso(86400 * 3)},
        {"occurred_at": iso(-50)},
    ]})
    rej = {r["index"]: r["error"]["field"] for r in body.get("rejected", [])}
    t.eq((st, body.get("accepted"), rej), (200, 2, {2: "occurred_at", 3: "code"}),
         "future and empty scans refused by index, the rest recorded")
    t.eq([s["status"] for s in scans("1002")], ["in_transit", "failed_attempt"], "DPD codes mapped")
    st, _, _ = own({"carrier": "dpd", "tracking_number": "x", "scans": []}, ts=int(time.time()) - 3600)
    t.eq(st, 403, "an hour-old signature is refused")
    st, _, _ = own({"carrier": "dpd", "tracking_number": "x", "scans": []}, secret="guess")
    t.eq(st, 403, "a forged signature is refused")
    st, _, body = own({"tracking_number": "x", "scans": []})
    t.eq((st, body.get("error", {}).get("field")), (400, "carrier"), "a missing carrier is named")

    # raw scans through the event API; an unknown code is kept and counted
    st, _, body = d.post_events([
        {"event_id": "raw-1", "type": "tracking.event", "occurred_at": iso(-30),
         "data": {"shipment_id": "SHP-1", "carrier": "dhl", "tracking_number": "00340434161094015902",
                  "carrier_text": "Die Sendung wurde erfolgreich zugestellt."}},
        {"event_id": "raw-2", "type": "tracking.event", "occurred_at": iso(-20),
         "data": {"shipment_id": "SHP-2", "carrier": "dpd", "tracking_number": "01905002345612",
                  "carrier_code": "WARP_DRIVE", "carrier_text": "Paket im Hyperraum"}},
    ])
    t.eq(st, 200, "raw scans accepted")
    last = scans("1001")[-1]
    t.eq(last["status"], "delivered", "DHL text mapped to delivered")
    odd = scans("1002")[-1]
    t.eq((odd["status"], odd.get("unmapped"), odd["carrier_text"]), ("in_transit", True, "Paket im Hyperraum"),
         "an unknown code is in transit, marked and keeps its text")
    st, _, metrics = d.request("GET", "/metrics", key=False)
    t.check('consonance_scans_unmapped_total{carrier="dpd"} 1' in metrics, "the unknown code is counted")
    st, _, o = d.request("GET", "/v1/orders/1001")
    t.eq(o["shipments"][0]["status"], "delivered", "the shipment's status follows its latest scan")
finally:
    d.cleanup()
t.done()
