"""Black-box: an out-for-delivery notice held back until its parcel was
delivered is not sent. The SMS provider refuses (503) while the parcel is
out for delivery; the carrier then scans it delivered, and the provider
answers again: the retry is skipped as no_longer_out_for_delivery instead
of telling the customer, with the parcel in their hands (or days later),
that it "arrives today". A notice whose parcel is still out for delivery
when the provider answers again goes, on its retry."""
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
lock = threading.Lock()
down = [True]  # the provider answers 503 while this holds
bodies = []    # the SMS texts it took


class Provider(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with lock:
            if down[0]:
                code, obj = 503, {"code": 20500, "message": "busy"}
            else:
                bodies.append(urllib.parse.parse_qs(body))
                code, obj = 201, {"sid": "SM%04d" % len(bodies), "status": "queued"}
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
threading.Thread(target=srv.serve_forever, daemon=True).start()

d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": os.path.join(root, "etc", "journeys"),
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMS_URL": "http://127.0.0.1:%d/2010-04-01/Accounts/AC1/Messages.json"
                          % srv.server_address[1],
    "CONSONANCE_SMS_ACCOUNT": "AC1",
    "CONSONANCE_SMS_TOKEN": "sms-token-0123456789",
    "CONSONANCE_SMS_FROM": "+4930123456",
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
})
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parcel(cid, n):
    oid = "o-" + cid
    return [
        {"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": now,
         "data": {"id": cid, "name": "Kim " + cid, "phone": "+49151000001%02d" % n, "locale": "de",
                  "timezone": "Europe/Berlin", "consents": {"sms": {"transactional": True}}}},
        csbb.order_event("e-o-" + cid, oid, customer=cid, at=now),
        {"event_id": "e-s-" + cid, "type": "shipment.created", "occurred_at": now,
         "data": {"id": "s-" + cid, "order_id": oid, "carrier": "dhl", "tracking_number": "T%d" % n}},
        {"event_id": "e-t-" + cid, "type": "tracking.event", "occurred_at": now,
         "data": {"shipment_id": "s-" + cid, "carrier": "dhl", "tracking_number": "T%d" % n,
                  "status": "out_for_delivery"}},
    ]


def notice(cid):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cid)
    got = [m for m in body.get("messages", []) if m["template"] == "out_for_delivery"] if st == 200 else []
    return got[0] if got else None


try:
    d.start()
    st, _, _ = d.post_events(parcel("ida", 1) + parcel("jon", 2))
    t.eq(st, 200, "events accepted")
    # both notices tried once and refused: waiting for their retry
    for cid in ("ida", "jon"):
        t.wait_for(lambda: (notice(cid) or {}).get("attempts", 0) >= 1 and
                   notice(cid)["status"] == "queued", "%s's notice tried and waiting" % cid)
    st, _, _ = d.post_events([{"event_id": "e-d-ida", "type": "tracking.event", "occurred_at": now,
                               "data": {"shipment_id": "s-ida", "carrier": "dhl",
                                        "tracking_number": "T1", "status": "delivered"}}])
    t.check(st in (200, 201), "the delivery scan accepted: %r" % st)
    with lock:
        down[0] = False
    got = t.wait_for(lambda: (notice("ida") or {}).get("status") in ("sent", "skipped", "failed")
                     and notice("ida"), "ida's notice settled")
    if got:
        t.eq((got["status"], got["reason"]), ("skipped", "no_longer_out_for_delivery"),
             "no \"arrives today\" after the delivery: %r" % got)
    got = t.wait_for(lambda: (notice("jon") or {}).get("status") == "sent" and notice("jon"),
                     "jon's notice sent on its retry")
    with lock:
        texts = [b.get("Body", [""])[0] for b in bodies]
    t.check(len(texts) == 1 and "o-jon" in texts[0] and "kommt heute" in texts[0],
            "one SMS, jon's: %r" % texts)
finally:
    d.stop()
    d.cleanup()
    srv.shutdown()
t.done()
