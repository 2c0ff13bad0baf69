"""Black-box: carrier scans come in raw and leave normalized. An aggregator
webhook (AfterShip format, aftership-hmac-sha256) and our own signed scan
form deliver checkpoints; the carrier tables map codes and texts to
statuses and incident reasons; a repeated delivery records nothing twice;
forged signatures, stale signatures and future timestamps are refused with
a clear answer naming the header; a raw scan posted to /v1/events is
mapped too, and an unknown code is kept, shown as in transit and counted.
AfterShip's subtag decides before the carrier's texts; zone-less
checkpoint times are the shop's local time; wrong JSON types are refused
naming the request's own field; a carrier added by data (a table with
@name and @slug in the carriers folder) receives AfterShip scans. A
rejected value quoted in an answer is cut between characters; scan ids do
not collide on '|' and stay what earlier versions made them. The
signature header is read as senders write it (any order, blanks, leading
zeros, several v1) and a malformed one is refused saying what; a tracking
number longer than a shipment's is refused at intake; a producer's
`unmapped` beside its status stands only for a code no table knows."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
AS_SECRET = "aftership-secret-1"
TR_SECRET = "tracking-secret-1"
# the shipped tables plus a carrier added by data
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
tables = tempfile.mkdtemp(prefix="cs-carriers-")
for f in os.listdir(os.path.join(SRC, "etc", "carriers")):
    if f.endswith(".tsv"):
        shutil.copy(os.path.join(SRC, "etc", "carriers", f), tables)
with open(os.path.join(tables, "postnl.tsv"), "w") as f:
    f.write("@name\tPostNL\n@slug\tpostnl-3s\tpostnl\nDELIVERED\tdelivered\n")
d = csbb.Daemon(a.bin, extra_env={"CONSONANCE_AFTERSHIP_SECRET": AS_SECRET,
                                  "CONSONANCE_TRACKING_SECRET": TR_SECRET,
                                  "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin",
                                  "CONSONANCE_CARRIERS": tables})


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


def err(body):
    e = body.get("error", {}) if isinstance(body, dict) else {}
    return (e.get("field"), e.get("message", ""))


def rejected(body):
    return {r["index"]: (r["error"]["field"], r["error"]["message"]) for r in body.get("rejected", [])}


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
             "zip": "04109", "state": "Sachsen", "country_iso3": "DEU"},
            {"checkpoint_time": iso(-3600), "tag": "OutForDelivery", "subtag": "OutForDelivery_001",
             "message": "Die Sendung wurde in das Zustellfahrzeug geladen.", "city": "Berlin"},
            {"checkpoint_time": iso(-600), "tag": "AttemptFail", "subtag": "AttemptFail_002",
             "message": "Der Empfänger wurde nicht angetroffen.", "city": "Berlin"},
        ]}}
    st, _, body = aftership(hook)
    t.eq((st, body.get("accepted"), body.get("duplicates")), (200, 3, 0), "three checkpoints recorded")
    t.eq(body.get("waiting_for_shipment"), 0, "all for a known parcel")
    got = scans("1001")
    t.eq([(s["status"], s.get("reason")) for s in got],
         [("in_transit", None), ("out_for_delivery", None), ("failed_attempt", "recipient_absent")],
         "mapped statuses and the incident reason")
    if got:
        t.eq(got[0]["location"], {"city": "Leipzig", "postal_code": "04109", "region": "Sachsen",
                                  "country": "DE"},
             "location with the state as its region and the country as alpha-2")
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
    t.eq((st, body.get("accepted"), rej), (200, 2, {2: "scans[2].occurred_at", 3: "scans[3].code"}),
         "future and empty scans refused by index and the request's own field, the rest recorded")
    t.eq([s["status"] for s in scans("1002")], ["in_transit", "failed_attempt"], "DPD codes mapped")
    # scans for a parcel the shop has not announced yet: kept, and the answer says so
    st, _, body = own({"carrier": "gls", "tracking_number": "ZX 4711", "scans": [
        {"code": "INBOUND", "occurred_at": iso(-4000)}, {"code": "INTRANSIT", "occurred_at": iso(-2000)}]})
    t.eq((st, body.get("accepted"), body.get("waiting_for_shipment")), (200, 2, 2),
         "two scans kept for an unknown parcel, counted as waiting: %r" % (body,))
    st, _, body = d.post_events([
        csbb.order_event("o-wait", "1090", at=iso(-86400)),
        {"event_id": "s-wait", "type": "shipment.created", "occurred_at": iso(-600),
         "data": {"id": "SHP-WAIT", "order_id": "1090", "carrier": "gls", "tracking_number": "ZX4711"}}])
    t.eq(st, 200, "its shipment arrives later")
    t.eq(len(scans("1090")), 2, "the waiting scans are the parcel's now")

    # a retry that writes the number or the code differently is the same scan
    body = {"carrier": "dpd", "tracking_number": "01905002345612", "scans": [
        {"code": "OUT_FOR_DELIVERY", "occurred_at": iso(-90)}]}
    st, _, first = own(body)
    body["tracking_number"] = "0190 5002 345612"
    st2, _, again = own(body)
    body["tracking_number"] = "01905002345612"
    body["scans"][0]["code"] = "out_for_delivery"
    st3, _, third = own(body)
    t.eq([(x.get("accepted"), x.get("duplicates")) for x in (first, again, third)],
         [(1, 0), (0, 1), (0, 1)], "the number's spaces and the code's case make no new scan")
    # nor blanks around the code (a fixed-width field), which the tables ignore too
    got = []
    when = iso(-85)  # once: a second passing between the posts would make each a new scan
    for code in (" OUT_FOR_DELIVERY", "OUT_FOR_DELIVERY", "OUT_FOR_DELIVERY  ", " out_for_delivery "):
        body["scans"][0] = {"code": code, "occurred_at": when}
        st, _, x = own(body)
        got.append((st, x.get("accepted"), x.get("duplicates")))
    t.eq(got, [(200, 1, 0)] + [(200, 0, 1)] * 3, "blanks around the code make no new scan")
    # a code of blanks alone is no code: a scan without a text then says
    # nothing and is refused by its index, naming the code; with a text it
    # is taken by its text
    st, _, x = own({"carrier": "dpd", "tracking_number": "BLANK-1", "scans": [
        {"code": "   ", "occurred_at": iso(-84)},
        {"code": "", "text": "  ", "occurred_at": iso(-83)},
        {"code": "  ", "text": "Im Paketshop abgegeben", "occurred_at": iso(-82)}]})
    rej = rejected(x)
    t.check(st == 200 and x.get("accepted") == 1 and sorted(rej) == [0, 1]
            and rej[0][0] == "scans[0].code" and rej[1][0] == "scans[1].code"
            and "only blanks" in rej[0][1] and "code or its text" in rej[0][1],
            "a code of blanks alone refused by index, naming the field: %s %r" % (st, x))
    st, _, x = own({"carrier": "dpd", "tracking_number": "BLANK-1", "scans": [
        {"code": "    ", "occurred_at": iso(-81)}]})
    t.eq((st, x.get("accepted")), (422, 0), "... alone in its request: 422: %r" % (x,))
    st, _, x = aftership({"msg": {"slug": "dpd-de", "tracking_number": "BLANK-1", "checkpoints": [
        {"checkpoint_time": iso(-81), "subtag": "  ", "tag": "InTransit"},
        {"checkpoint_time": iso(-80), "subtag": " ", "message": " "}]}})
    rej = rejected(x)
    t.check(st == 200 and x.get("accepted") == 1 and list(rej) == [1]
            and rej[1][0] == "msg.checkpoints[1].tag",
            "AfterShip: a subtag of blanks gives way to the tag; with neither, refused: %s %r" % (st, x))
    # a time before 2000 (a zero, seconds read as milliseconds), before 1970
    # too, is refused by index as too early, as the event API refuses it
    st, _, x = own({"carrier": "dpd", "tracking_number": "EARLY-1", "scans": [
        {"code": "INTRANSIT", "occurred_at": "1969-12-31T23:00:00Z"},
        {"code": "INTRANSIT", "occurred_at": "1999-12-31T23:00:00+01:00"},
        {"code": "INTRANSIT", "occurred_at": iso(-79)}]})
    rej = rejected(x)
    t.check(st == 200 and x.get("accepted") == 1 and sorted(rej) == [0, 1]
            and all(f == "scans[%d].occurred_at" % i and "from 2000-01-01 on" in m for i, (f, m) in rej.items()),
            "scans before 2000 refused as too early: %s %r" % (st, x))
    st, _, x = aftership({"msg": {"slug": "dpd-de", "tracking_number": "EARLY-1", "checkpoints": [
        {"checkpoint_time": "1969-12-31T23:00:00", "subtag": "InTransit_001"},
        {"checkpoint_time": "1969-12-31", "subtag": "InTransit_001"},
        {"checkpoint_time": "1969-12-31T23:00:00-05:00", "subtag": "InTransit_001"},
        {"checkpoint_time": "1970-01-02T00:00:00", "subtag": "InTransit_001"},
        {"checkpoint_time": "1969-13-31T23:00:00", "subtag": "InTransit_001"}]}})
    rej = rejected(x)
    t.check(st in (200, 422) and sorted(rej) == [0, 1, 2, 3, 4]
            and all("from 2000-01-01 on" in rej[i][1] for i in range(4)) and "ISO 8601" in rej[4][1],
            "AfterShip checkpoints before 2000 refused as too early, a month 13 as no time: %s %r" % (st, x))
    # AfterShip's countries: alpha-3 in any case, or alpha-2; an unknown one is refused by index
    st, _, body = aftership({"msg": {"slug": "dpd-de", "tracking_number": "01905002345612", "checkpoints": [
        {"checkpoint_time": iso(-80), "subtag": "InTransit_001", "city": "Tokyo", "country_iso3": "JPN"},
        {"checkpoint_time": iso(-70), "subtag": "InTransit_001", "city": "Köln", "country_iso3": "deu"},
        {"checkpoint_time": iso(-60), "subtag": "InTransit_001", "city": "Wien", "country_iso3": "at"},
        {"checkpoint_time": iso(-50), "subtag": "InTransit_001", "city": "Nowhere", "country_iso3": "XYZ"},
        {"checkpoint_time": iso(-40), "subtag": "InTransit_001", "city": "a\u0000b"}]}})
    rej = rejected(body)
    t.eq((st, body.get("accepted"), sorted(rej)), (200, 3, [3, 4]),
         "three countries known, an unknown one and a NUL refused by index: %r" % (body,))
    t.check(rej.get(3, ("", ""))[0] == "msg.checkpoints[3].country_iso3" and "DEU" in rej.get(3, ("", ""))[1],
            "the unknown country names its field and the form: %r" % (rej.get(3),))
    t.check(rej.get(4, ("", ""))[0] == "msg.checkpoints[4].city" and "NUL" in rej.get(4, ("", ""))[1],
            "a NUL names its field: %r" % (rej.get(4),))
    t.eq([s.get("location", {}).get("country") for s in scans("1002")[-3:]], ["JP", "DE", "AT"],
         "countries as alpha-2")
    st, _, body = own({"carrier": "dpd", "tracking_number": "01905002345612", "scans": [
        {"code": "AT_DELIVERY_DEPOT", "occurred_at": iso(86400 * 2)}]})
    t.check(st == 422 and "received at" in rejected(body).get(0, ("", ""))[1],
            "a future scan's answer says when it was received: %r" % (body,))
    raw = b'{"carrier":"dpd","tracking_number":"X","scans":[],"pad":"' + b"x" * (1100 * 1024) + b'"}'
    ts = int(time.time())
    mac = hmac.new(TR_SECRET.encode(), str(ts).encode() + b"." + raw, hashlib.sha256).hexdigest()
    st, _, body = d.request("POST", "/v1/tracking/scans", body=raw, key=False,
                            headers={"Content-Type": "application/json",
                                     "X-Consonance-Signature": "t=%d,v1=%s" % (ts, mac)})
    t.check(st == 413 and "1048576" in err(body)[1], "an oversized webhook names the limit: %r" % (err(body),))
    st, _, body = own({"carrier": "gls", "tracking_number": "ZX4711", "scans": [
        {"code": "INTRANSIT", "occurred_at": iso(-1000)}]})
    t.eq((st, body.get("accepted"), body.get("waiting_for_shipment")), (200, 1, 0),
         "the next scan finds it: %r" % (body,))
    st, _, body = d.post_events([{"event_id": "raw-wait-1", "type": "tracking.event",
                                  "occurred_at": iso(-300),
                                  "data": {"carrier": "ups", "tracking_number": "1Z999AA10123456784",
                                           "status": "in_transit"}}])
    res = (body.get("results") or [{}])[0]
    t.eq((st, res.get("status"), res.get("waiting_for")), (200, "accepted", "shipment"),
         "the event API says a scan waits for its shipment: %r" % (body,))
    st, _, body = d.post_events([
        {"event_id": "raw-wait-2", "type": "tracking.event", "occurred_at": iso(-250),
         "data": {"carrier": "ups", "tracking_number": "1Z999AA10123456799", "status": "in_transit"}},
        csbb.order_event("o-wait-2", "1091", at=iso(-86400)),
        {"event_id": "s-wait-2", "type": "shipment.created", "occurred_at": iso(-600),
         "data": {"id": "SHP-WAIT-2", "order_id": "1091", "carrier": "ups",
                  "tracking_number": "1Z999AA10123456799"}}])
    res = (body.get("results") or [{}])[0]
    t.eq((st, res.get("status"), "waiting_for" in res), (200, "accepted", False),
         "a scan whose shipment comes later in the same batch does not say it waits: %r" % (body,))
    t.eq(len(scans("1091")), 1, "... and is the parcel's")
    st, _, body = own({"carrier": "dpd", "tracking_number": "x", "scans": []}, ts=int(time.time()) - 3600)
    t.eq((st, err(body)[0]), (403, "X-Consonance-Signature"), "an hour-old signature is refused, naming the header")
    t.check("old" in err(body)[1], "... as too old: %r" % (err(body),))
    st, _, body = own({"carrier": "dpd", "tracking_number": "x", "scans": []}, ts=int(time.time()) + 600)
    t.eq(st, 403, "a signature 10 minutes ahead is refused")
    t.check("future" in err(body)[1] and "old" not in err(body)[1],
            "... as in the future, not as old: %r" % (err(body),))
    st, _, body = own({"carrier": "dpd", "tracking_number": "x", "scans": []}, ts=92233720368547758)
    t.eq((st, err(body)[0]), (403, "X-Consonance-Signature"), "a huge signature time is refused (no overflow)")
    st, _, body = own({"carrier": "dpd", "tracking_number": "x", "scans": []}, secret="guess")
    t.eq((st, err(body)[0]), (403, "X-Consonance-Signature"), "a forged signature is refused")
    st, _, body = aftership({"msg": {}}, secret="guess")
    t.eq((st, err(body)[0]), (403, "aftership-hmac-sha256"), "a forged aggregator webhook names its header")
    t.check("does not match" in err(body)[1], "... as not matching: %r" % (err(body),))
    # a signature that is no base64 HMAC-SHA256 is malformed, not "does not match"
    good = base64.b64encode(hmac.new(AS_SECRET.encode(), b"{}", hashlib.sha256).digest()).decode()
    for what, sig, says in (("hex", hmac.new(AS_SECRET.encode(), b"{}", hashlib.sha256).hexdigest(),
                             "got 64 characters"),
                            ("base64url", good[:41] + "-_=",
                             "that are not all base64"),
                            ("without its '='", good[:43], "got 43 characters"),
                            ("a word", "sha256", "got 6 characters")):
        st, _, body = d.request("POST", "/v1/tracking/aftership", body=b"{}", key=False,
                                headers={"Content-Type": "application/json", "aftership-hmac-sha256": sig})
        t.check(st == 403 and err(body)[0] == "aftership-hmac-sha256" and "malformed" in err(body)[1]
                and "base64" in err(body)[1] and says in err(body)[1],
                "an AfterShip signature as %s is malformed: %s %r" % (what, st, err(body)))
    st, _, body = own({"tracking_number": "x", "scans": []})
    t.eq((st, body.get("error", {}).get("field")), (400, "carrier"), "a missing carrier is named")

    # the signature header as senders write it: elements in any order and
    # with blanks, t with leading zeros (its text is what was signed), v1 in
    # upper case or given twice (any one that matches passes), other schemes
    # ignored; a malformed one is refused saying what is wrong
    def own_sig(body, header):
        raw = json.dumps(body).encode()

        def mac(ts_text):
            return hmac.new(TR_SECRET.encode(), ts_text.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return d.request("POST", "/v1/tracking/scans", body=raw, key=False,
                         headers={"Content-Type": "application/json", "X-Consonance-Signature": header(mac)})
    now = str(int(time.time()))
    sig_body = {"carrier": "dpd", "tracking_number": "SIG-1", "scans": [{"code": "ACCEPTED", "occurred_at": iso(-60)}]}
    for what, header in [
        ("t with leading zeros", lambda m: "t=00%s,v1=%s" % (now, m("00" + now))),
        ("a second v1 that matches", lambda m: "t=%s,v1=%s,v1=%s" % (now, "0" * 64, m(now))),
        ("blanks around the elements", lambda m: " t=%s , v1=%s " % (now, m(now))),
        ("v1 before t", lambda m: "v1=%s,t=%s" % (m(now), now)),
        ("v1 in upper case", lambda m: "t=%s,v1=%s" % (now, m(now).upper())),
        ("a v0 before v1", lambda m: "t=%s,v0=%s,v1=%s" % (now, "ab" * 32, m(now))),
    ]:
        st, _, body = own_sig(sig_body, header)
        t.eq(st, 200, "a valid signature passes: %s: %r" % (what, body))
    for what, header, says in [
        ("two v1, neither matching", lambda m: "t=%s,v1=%s,v1=%s" % (now, "0" * 64, "1" * 64), "does not match"),
        ("t signed without the zeros it is sent with", lambda m: "t=00%s,v1=%s" % (now, m(now)), "does not match"),
        ("t missing", lambda m: "v1=%s" % m(now), "t is missing"),
        ("t not digits", lambda m: "t=%sx,v1=%s" % (now, m(now)), "digits only"),
        ("t empty", lambda m: "t=,v1=%s" % m(now), "digits only"),
        ("t twice", lambda m: "t=%s,t=%s,v1=%s" % (now, now, m(now)), "t given twice"),
        ("v1 missing", lambda m: "t=%s" % now, "v1 is missing"),
        ("v1 cut short", lambda m: "t=%s,v1=%s" % (now, m(now)[:63]), "64 hex digits"),
        ("v1 not hex", lambda m: "t=%s,v1=%s" % (now, "g" * 64), "64 hex digits"),
        ("an element without '='", lambda m: "t=%s,v1=%s,x" % (now, m(now)), "KEY=VALUE"),
        ("t with 13 significant digits", lambda m: "t=100%s,v1=%s" % (now, m("100" + now)), "has 13 digits"),
    ]:
        st, _, body = own_sig(sig_body, header)
        t.check(st == 403 and err(body)[0] == "X-Consonance-Signature" and says in err(body)[1],
                "%s is refused naming the header, saying %r: %r" % (what, says, (st, err(body))))

    # a tracking number is bounded as shipments bound theirs, without its
    # spaces: a scan for a longer one could never find its parcel
    too_long = "1Z" + "9" * 63
    st, _, body = own({"carrier": "ups", "tracking_number": too_long, "scans": [
        {"code": "D", "occurred_at": iso(-60)}]})
    t.check(st == 400 and err(body)[0] == "tracking_number" and "at most 64" in err(body)[1],
            "a 65-character tracking number is refused whole, naming the field and the bound: %r" % (body,))
    st, _, body = aftership({"msg": {"slug": "ups", "tracking_number": too_long, "checkpoints": [
        {"checkpoint_time": iso(-60), "subtag": "Delivered_001"}]}})
    t.check(st == 400 and err(body)[0] == "msg.tracking_number" and "at most 64" in err(body)[1],
            "... in the AfterShip format too: %r" % (body,))
    st, _, body = d.post_events({"event_id": "long-number", "type": "tracking.event", "occurred_at": iso(-60),
                                 "data": {"carrier": "ups", "tracking_number": too_long, "status": "delivered"}})
    t.check(st == 400 and err(body)[0] == "data.tracking_number" and "at most 64" in err(body)[1],
            "... and in the event API: %r" % (body,))
    spaced = " ".join(["1Z77"] * 16)  # 64 characters and 15 spaces
    st, _, body = own({"carrier": "ups", "tracking_number": spaced, "scans": [
        {"code": "I", "occurred_at": iso(-500)}]})
    t.eq((st, body.get("waiting_for_shipment")), (200, 1), "64 characters with spaces between are taken: %r" % (body,))
    st, _, body = d.post_events([
        csbb.order_event("o-spaced", "1095", at=iso(-86400)),
        {"event_id": "s-spaced", "type": "shipment.created", "occurred_at": iso(-600),
         "data": {"id": "SHP-SPACED", "order_id": "1095", "carrier": "ups", "tracking_number": spaced}}])
    t.eq((st, body.get("accepted")), (200, 2), "... as its shipment's, spaces and all: %r" % (body,))
    t.eq(len(scans("1095")), 1, "... which the waiting scan finds")

    # AfterShip's subtag decides before the carrier's texts
    st, _, _ = d.post_events([
        csbb.order_event("o-3", "1003", at=iso(-86400 * 5)),
        {"event_id": "s-3", "type": "shipment.created", "occurred_at": iso(-86400),
         "data": {"id": "SHP-3", "order_id": "1003", "carrier": "dhl",
                  "tracking_number": "00340434161094015903"}},
        csbb.order_event("o-4", "1004", at=iso(-86400 * 2)),
        {"event_id": "s-4", "type": "shipment.created", "occurred_at": iso(-86400),
         "data": {"id": "SHP-4", "order_id": "1004", "carrier": "postnl",
                  "tracking_number": "3SABCD1234567"}},
    ])
    t.eq(st, 200, "more orders and shipments accepted")
    st, _, body = aftership({"msg": {"slug": "dhl-germany", "tracking_number": "00340434161094015903", "checkpoints": [
        {"checkpoint_time": iso(-7000), "tag": "Pending", "subtag": "Pending_001", "message": "Neu"},
        {"checkpoint_time": iso(-6000), "tag": "InTransit", "subtag": "InTransit_010",
         "message": "Die Sendung wurde im Paketzentrum bearbeitet."},
        {"checkpoint_time": iso(-5000), "tag": "AttemptFail", "subtag": "AttemptFail_001",
         "message": "The shipment could not be delivered"},
    ]}})
    t.eq((st, body.get("accepted")), (200, 3), "aggregator scans recorded")
    t.eq([(s["status"], s.get("reason"), s.get("unmapped")) for s in scans("1003")],
         [("info_received", None, None), ("in_transit", None, None), ("failed_attempt", "other", None)],
         "subtags decide (a new one by its tag), not the words 'delivered' in the text")

    # a carrier added by data: its slug leads to it
    st, _, body = aftership({"msg": {"slug": "postnl-3s", "tracking_number": "3SABCD1234567", "checkpoints": [
        {"checkpoint_time": iso(-4000), "tag": "Delivered", "subtag": "Delivered_001", "message": "Bezorgd"}]}})
    got = scans("1004")
    t.eq((st, body.get("accepted"), [s["status"] for s in got]), (200, 1, ["delivered"]),
         "a slug declared by a table (@slug) reaches that carrier's shipment")

    # zone-less checkpoint times are the shop's local time (Europe/Berlin)
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400 * 3))
    st, _, body = aftership({"msg": {"slug": "dhl-germany", "tracking_number": "00340434161094015903", "checkpoints": [
        {"checkpoint_time": day + "T09:15:00", "tag": "InTransit", "subtag": "InTransit_002", "message": "a"},
        {"checkpoint_time": day, "tag": "InTransit", "subtag": "InTransit_003", "message": "b"},
        {"checkpoint_time": "gestern", "tag": "InTransit", "message": "c"},
    ]}})
    rej = rejected(body)
    t.eq((st, body.get("accepted"), sorted(rej)), (200, 2, [2]), "zone-less times and dates accepted")
    t.eq(rej.get(2, ("",))[0], "msg.checkpoints[2].checkpoint_time", "a bad time names its checkpoint")
    at = {s["carrier_code"]: s["occurred_at"] for s in scans("1003")}
    t.check(at.get("InTransit_002", "").startswith(day + "T07:15:00") or
            at.get("InTransit_002", "").startswith(day + "T08:15:00"),
            "09:15 in Berlin is 07:15 or 08:15 UTC: %r" % at.get("InTransit_002"))
    t.check(at.get("InTransit_003", "")[11:19] in ("22:00:00", "23:00:00"),
            "a date is the shop's midnight: %r" % at.get("InTransit_003"))

    # wrong JSON types name the request's field
    st, _, body = own({"carrier": "dpd", "tracking_number": "01905002345612", "scans": [
        {"code": 13, "text": "Zustellung erfolgt", "occurred_at": iso(-40)},
        {"code": "DELIVERED", "occurred_at": iso(-40), "location": "Berlin"},
        "DELIVERED",
        {"code": True, "occurred_at": iso(-40)},
        {"code": "X", "text": "t" * 600, "occurred_at": iso(-40)},
    ]})
    rej = rejected(body)
    t.eq((st, body.get("accepted")), (200, 1), "an integer code is taken")
    t.eq({i: f for i, (f, _) in rej.items()},
         {1: "scans[1].location", 2: "scans[2]", 3: "scans[3].code", 4: "scans[4].text"},
         "wrong types and sizes are refused by the request's own field")
    t.check("expected an object" in rej.get(1, ("", ""))[1] and "expected an object" in rej.get(2, ("", ""))[1],
            "... saying what was expected: %r" % rej)
    t.check(any(s.get("carrier_code") == "13" for s in scans("1002")), "the integer code is kept as text")
    for hook, what, want in [
        ({"msg": {"slug": "dhl-germany", "tracking_number": "1"}}, "checkpoints missing", "msg.checkpoints"),
        ({"msg": {"slug": "dhl-germany", "tracking_number": "1", "checkpoints": {}}}, "checkpoints an object",
         "msg.checkpoints"),
        ({"msg": {"slug": 5, "tracking_number": "1", "checkpoints": []}}, "a numeric slug", "msg.slug"),
        ({"msg": "x"}, "msg a string", "msg"),
    ]:
        st, _, body = aftership(hook)
        t.eq((st, err(body)[0]), (400, want), "AfterShip: %s is refused naming %s" % (what, want))
    st, _, body = aftership({"msg": {"slug": 5, "tracking_number": "1", "checkpoints": []}})
    t.check("expected a string" in err(body)[1], "a numeric slug: %r" % (err(body),))
    st, _, body = aftership({"msg": {"slug": "dhl-germany", "tracking_number": "00340434161094015903",
                                     "checkpoints": [{"checkpoint_time": iso(-30), "subtag": "InTransit_001",
                                                      "state": ["Sachsen"]}]}})
    t.eq((st, [f for f, _ in rejected(body).values()]), (422, ["msg.checkpoints[0].state"]),
         "a state that is no string names its checkpoint")
    st, _, body = aftership({"msg": {"slug": "dhl-germany", "tracking_number": "00340434161094015903",
                                     "checkpoints": [{"checkpoint_time": iso(-30), "subtag": "InTransit_001",
                                                      "message": "m" * 600}]}})
    t.eq((st, [f for f, _ in rejected(body).values()]), (422, ["msg.checkpoints[0].message"]),
         "an over-long message names its checkpoint")
    st, _, body = own({"carrier": "DHL Paket", "tracking_number": "x", "scans": []})
    t.eq((st, err(body)[0]), (400, "carrier"), "a carrier id with a space is refused")
    t.check("a-z, 0-9, _ and -" in err(body)[1], "... saying the expected form: %r" % (err(body),))
    def refused_count():
        _, _, m = d.request("GET", "/metrics", key=False)
        return {w: int(re.search(r'consonance_scans_rejected_total\{webhook="%s"\} (\d+)' % w, m).group(1))
                for w in ("aftership", "scans")}
    before = refused_count()
    # our own form refuses fields it does not know, as the event API does:
    # a misspelt field is not dropped unseen
    st, _, body = own({"carrier": "dpd", "tracking_number": "01905002345612", "scans": [
        {"code": "DELIVERED", "occurred_at": iso(-35), "locaton": {"city": "Berlin"}},
        {"code": "DELIVERED", "text": "Zugestellt", "occurred_at": iso(-34)},
    ]})
    rej = rejected(body)
    t.eq((st, body.get("accepted"), {i: f for i, (f, _) in rej.items()}),
         (200, 1, {0: "scans[0].locaton"}), "a scan with an unknown field is refused alone, naming it")
    t.check("unknown field" in rej.get(0, ("", ""))[1] and "location" in rej.get(0, ("", ""))[1],
            "... saying which fields there are: %r" % rej)
    st, _, body = aftership({"msg": {"slug": "dhl-germany", "tracking_number": "00340434161094015903",
                                     "checkpoints": [{"checkpoint_time": iso(-30), "subtag": "InTransit_001",
                                                      "country_iso3": "XXX"}]}})
    t.eq(st, 422, "an AfterShip checkpoint of an unknown country is refused")
    after = refused_count()
    t.eq({w: after[w] - before[w] for w in after}, {"aftership": 1, "scans": 1},
         "refused scans are counted by webhook, one refused beside one taken too")
    st, _, body = own({"carrier": "dpd", "tracking_number": "01905002345612", "shipment": "SHP-2",
                       "scans": [{"code": "DELIVERED", "text": "Feld-Test", "occurred_at": iso(-33)}]})
    t.eq((st, err(body)[0]), (400, "shipment"), "an unknown field beside the scans refuses the request")
    t.check("unknown field" in err(body)[1] and "tracking_number" in err(body)[1],
            "... naming the fields there are: %r" % (err(body),))
    t.check(not any(s.get("carrier_text") == "Feld-Test" for s in scans("1002")),
            "... and stores none of its scans")

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
    st, _, body = d.post_events([{"event_id": "raw-2", "type": "tracking.event", "occurred_at": iso(-20),
                                  "data": {"shipment_id": "SHP-2", "carrier": "dpd",
                                           "tracking_number": "01905002345612", "carrier_code": "WARP_DRIVE",
                                           "carrier_text": "Paket im Hyperraum"}}])
    t.eq((st, body["duplicates"]), (200, 1), "the unknown scan sent again is a duplicate")
    st, _, metrics = d.request("GET", "/metrics", key=False)
    t.check('consonance_scans_unmapped_total{carrier="dpd"} 1' in metrics,
            "... and is not counted again")
    # a producer's status stands; its `unmapped: true` only where no table
    # knows the raw code (Consonance's own events imported again)
    st, _, body = d.post_events([
        {"event_id": "claim-1", "type": "tracking.event", "occurred_at": iso(-15),
         "data": {"shipment_id": "SHP-2", "carrier": "dpd", "tracking_number": "01905002345612",
                  "status": "out_for_delivery", "unmapped": True}},
        {"event_id": "claim-2", "type": "tracking.event", "occurred_at": iso(-14),
         "data": {"shipment_id": "SHP-2", "carrier": "dpd", "tracking_number": "01905002345612",
                  "status": "in_transit", "carrier_code": "AT_DELIVERY_DEPOT", "unmapped": True}},
        {"event_id": "claim-3", "type": "tracking.event", "occurred_at": iso(-13),
         "data": {"shipment_id": "SHP-2", "carrier": "dpd", "tracking_number": "01905002345612",
                  "status": "in_transit", "carrier_code": "WARP_DRIVE_2", "unmapped": True}}])
    t.eq((st, body.get("accepted")), (200, 3), "scans with a status and unmapped accepted")
    got = {s.get("carrier_code"): (s["status"], s.get("unmapped")) for s in scans("1002")[-3:]}
    t.eq(got, {None: ("out_for_delivery", None), "AT_DELIVERY_DEPOT": ("in_transit", None),
               "WARP_DRIVE_2": ("in_transit", True)},
         "the status stands; unmapped only for the code no table knows")
    st, _, metrics = d.request("GET", "/metrics", key=False)
    t.check('consonance_scans_unmapped_total{carrier="dpd"} 2' in metrics,
            "only that one is counted as unmapped")
    st, _, o = d.request("GET", "/v1/orders/1001")
    t.eq(o["shipments"][0]["status"], "delivered", "the shipment's status follows its latest scan")

    # a rejected value quoted in the answer is cut between characters, never
    # inside one: the rejection is listed (a cut "ü" once dropped it, 200)
    cut = "2026-12-04T10:00:00 Europe/Berlin, Zust"  # 39 bytes, then a 2-byte "ü"
    st, _, body = own({"carrier": "dpd", "tracking_number": "UTF8-CUT", "scans": [
        {"code": "ACCEPTED", "occurred_at": iso(-60)},
        {"code": "DELIVERED", "occurred_at": cut + "ü, morgen"}]})
    rej = rejected(body)
    t.eq((st, body.get("accepted"), sorted(rej)), (200, 1, [1]),
         "a bad time cut inside a character is still rejected: %r" % (body,))
    t.check(rej.get(1, ("", ""))[0] == "scans[1].occurred_at" and ('"%s"' % cut) in rej.get(1, ("", ""))[1],
            "... naming its field, quoted up to the whole character: %r" % (rej.get(1),))
    st, _, body = own({"carrier": "dpd", "tracking_number": "UTF8-CUT", "scans": [
        {"code": "DELIVERED", "occurred_at": cut + "ü"}]})
    t.eq((st, sorted(rejected(body))), (422, [0]), "... and alone it is a 422, not an empty 200")
    st, _, body = aftership({"msg": {"slug": "dpd-de", "tracking_number": "UTF8-CUT", "checkpoints": [
        {"checkpoint_time": cut + "é", "subtag": "InTransit_001"},
        {"checkpoint_time": iso(-50), "subtag": "InTransit_001", "country_iso3": "Deutschland-Nor" + "é"}]}})
    rej = rejected(body)
    t.eq((st, sorted(rej)), (422, [0, 1]), "AfterShip: a cut time and a cut country are listed: %r" % (body,))
    t.check('"Deutschland-Nor"' in rej.get(1, ("", ""))[1], "... the country quoted whole: %r" % (rej.get(1),))

    # scan ids: fields holding "|" do not collide, and a scan without one
    # keeps the id earlier versions gave it (a carrier's retry of an old
    # webhook is still a duplicate)
    ts = int(time.time()) - 400
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    st, _, body = own({"carrier": "dpd", "tracking_number": "PIPE-1", "scans": [
        {"code": "A|B", "text": "C", "occurred_at": when}, {"code": "A", "text": "B|C", "occurred_at": when}]})
    t.eq((st, body.get("accepted"), body.get("duplicates")), (200, 2, 0),
         "two scans whose code and text differ around a '|' are two scans: %r" % (body,))
    st, _, body = own({"carrier": "gls", "tracking_number": "zx 4711", "scans": [
        {"code": "intransit", "text": "Im Lager", "occurred_at": when}]})
    t.eq((st, body.get("accepted")), (200, 1), "a scan without '|'")
    old_id = "trk-" + hashlib.sha256(("gls|ZX4711|%d|INTRANSIT|Im Lager" % (ts * 1000)).encode()).hexdigest()[:40]
    # (the same scan as the webhook recorded it: the id's test; an event
    # under that id saying something else is refused, test_intake)
    st, _, body = d.post_events({"event_id": old_id, "type": "tracking.event", "occurred_at": when,
                                 "data": {"carrier": "gls", "tracking_number": "zx 4711",
                                          "carrier_code": "intransit", "carrier_text": "Im Lager"}})
    t.eq((st, body.get("status")), (200, "duplicate"),
         "... has the id of earlier versions, carrier|number|ms|CODE|text: %r" % (body,))
    # the order's status for chatbots: in transit, and the carrier's own words
    st, _, body = d.post_events([
        csbb.order_event("o-90", "1990", at=iso(-86400 * 2)),
        {"event_id": "s-90", "type": "shipment.created", "occurred_at": iso(-86400),
         "data": {"id": "SHP-90", "order_id": "1990", "carrier": "dpd", "tracking_number": "01905002349090"}},
        {"event_id": "raw-90", "type": "tracking.event", "occurred_at": iso(-40),
         "data": {"shipment_id": "SHP-90", "carrier": "dpd", "tracking_number": "01905002349090",
                  "carrier_code": "WARP_DRIVE", "carrier_text": "Paket im Hyperraum"}}])
    t.eq(st, 200, "an order whose only scan no table knows")
    st, _, s = d.request("GET", "/v1/orders/1990/status?lang=en")
    t.eq((st, s.get("status")), (200, "in_transit"), "the unknown scan's order reads as in transit")
    t.check(s.get("text", "").endswith(" The latest scan from DPD: \u201cPaket im Hyperraum\u201d."),
            "... and quotes the carrier's text: %r" % (s,))
    st, _, s = d.request("GET", "/v1/orders/1990/status?lang=de")
    t.check(s.get("text", "").endswith(" Letzte Meldung von DPD: \u201ePaket im Hyperraum\u201c."),
            "... in German too: %r" % (s,))
    st, _, body = d.post_events([
        {"event_id": "raw-91", "type": "tracking.event", "occurred_at": iso(-30),
         "data": {"shipment_id": "SHP-90", "carrier": "dpd", "tracking_number": "01905002349090",
                  "carrier_code": "AT_DELIVERY_DEPOT"}}])
    st, _, s = d.request("GET", "/v1/orders/1990/status?lang=en")
    t.check(st == 200 and "latest scan" not in s.get("text", ""),
            "a later scan a table knows is not quoted: %r" % (s,))
finally:
    d.cleanup()
    shutil.rmtree(tables, ignore_errors=True)
t.done()
