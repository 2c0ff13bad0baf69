"""Black-box: SMS (a Twilio-style API) and WhatsApp (the Cloud API format)
against a local HTTP receiver. The out-for-delivery journey picks the first
channel the customer agreed to; requests carry the provider's auth, body
format and an idempotency key; the provider's message id is recorded; a
rejected number fails for good, a 503 is retried; the SMS rate limit
spaces the requests."""
import base64
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
seen = []
lock = threading.Lock()
flaky = {"+4915100000098": 1}  # answers 503 this many times


class Provider(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            n = len(seen) + 1
            rec = {"path": self.path, "headers": dict(self.headers), "body": body.decode(),
                   "at": time.time()}
            seen.append(rec)
        if self.path.startswith("/2010-04-01/"):
            form = urllib.parse.parse_qs(body.decode())
            to = form.get("To", [""])[0]
            if to == "+4915100000099":
                return self.reply(400, {"code": 21211, "message": "The 'To' number is not valid."})
            with lock:
                if flaky.get(to, 0) > 0:
                    flaky[to] -= 1
                    return self.reply(503, {"code": 20500, "message": "busy"})
            return self.reply(201, {"sid": "SM%04d" % n, "status": "queued"})
        return self.reply(200, {"messaging_product": "whatsapp",
                                "messages": [{"id": "wamid.%04d" % n}]})

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
threading.Thread(target=srv.serve_forever, daemon=True).start()
base = "http://127.0.0.1:%d" % srv.server_address[1]

d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": os.path.join(root, "etc", "journeys"),
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMS_URL": base + "/2010-04-01/Accounts/AC123/Messages.json",
    "CONSONANCE_SMS_ACCOUNT": "AC123",
    "CONSONANCE_SMS_TOKEN": "sms-token",
    "CONSONANCE_SMS_FROM": "+4930123456",
    "CONSONANCE_SMS_RATE": "4",
    "CONSONANCE_WHATSAPP_URL": base + "/v19.0/1234567/messages",
    "CONSONANCE_WHATSAPP_TOKEN": "wa-token",
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
})


def wait_for(fn, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    t.check(False, "timed out waiting for " + what)
    return None


def messages(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    return [m for m in body.get("messages", []) if m["template"] == "out_for_delivery"] if st == 200 else []


now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def shop_events(cid, phone, consents, n):
    oid = "o-" + cid
    return [
        {"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": now,
         "data": {"id": cid, "name": "Kim " + cid, "phone": phone, "locale": "de",
                  "timezone": "Europe/Berlin", "consents": consents}},
        csbb.order_event("e-o-" + cid, oid, customer=cid, at=now),
        {"event_id": "e-s-" + cid, "type": "shipment.created", "occurred_at": now,
         "data": {"id": "s-" + cid, "order_id": oid, "carrier": "dhl", "tracking_number": "T%d" % n}},
        {"event_id": "e-t-" + cid, "type": "tracking.event", "occurred_at": now,
         "data": {"shipment_id": "s-" + cid, "carrier": "dhl", "tracking_number": "T%d" % n,
                  "status": "out_for_delivery"}},
    ]


try:
    d.start()
    wa = {"whatsapp": {"transactional": True}}
    sms = {"sms": {"transactional": True}}
    evs = shop_events("wa1", "+4915100000001", wa, 1) + shop_events("sms1", "+4915100000002", sms, 2) + \
        shop_events("bad", "+4915100000099", sms, 3) + shop_events("flaky", "+4915100000098", sms, 4)
    for i in range(4):
        evs += shop_events("r%d" % i, "+49151000001%02d" % i, sms, 10 + i)
    st, _, body = d.post_events(evs)
    t.eq(st, 200, "events accepted")

    got = wait_for(lambda: [m for m in messages("wa1") if m["status"] == "sent"], "WhatsApp sent")
    if got:
        t.eq(got[0]["channel"], "whatsapp", "WhatsApp preferred")
    wreq = [r for r in seen if r["path"] == "/v19.0/1234567/messages"]
    t.eq(len(wreq), 1, "one WhatsApp request")
    if wreq:
        r = wreq[0]
        b = json.loads(r["body"])
        t.eq((b["messaging_product"], b["to"], b["type"]), ("whatsapp", "4915100000001", "text"),
             "Cloud API message")
        t.check("kommt heute" in b["text"]["body"], "German text: %r" % b["text"]["body"])
        t.eq(r["headers"].get("Authorization"), "Bearer wa-token", "bearer token")
        t.check(r["headers"].get("Idempotency-Key", "").startswith("out_for_delivery:"), "idempotency key")

    got = wait_for(lambda: [m for m in messages("sms1") if m["status"] == "sent"], "SMS sent")
    sreq = [r for r in seen if r["path"].startswith("/2010-04-01/")]
    one = [r for r in sreq if "%2B4915100000002" in r["body"]]
    t.check(len(one) == 1, "one SMS request for sms1")
    if one:
        form = urllib.parse.parse_qs(one[0]["body"])
        t.eq((form["To"][0], form["From"][0]), ("+4915100000002", "+4930123456"), "form fields")
        t.check("kommt heute" in form["Body"][0], "SMS body")
        auth = one[0]["headers"].get("Authorization", "")
        t.eq(base64.b64decode(auth.split()[1]).decode(), "AC123:sms-token", "Basic auth")
        t.check(one[0]["headers"].get("I-Twilio-Idempotency-Token"), "idempotency token")
    if got:
        t.check(got[0].get("channel") == "sms", "sms channel")

    got = wait_for(lambda: [m for m in messages("bad") if m["status"] == "failed"], "rejected number")
    if got:
        t.check("21211" in got[0]["reason"], "the provider's code is kept: %r" % got[0]["reason"])
    got = wait_for(lambda: [m for m in messages("flaky") if m["status"] == "sent"], "retried SMS")
    if got:
        t.eq(got[0]["attempts"], 2, "sent on the second attempt")

    wait_for(lambda: all([m for m in messages("r%d" % i) if m["status"] == "sent"] for i in range(4)),
             "four more SMS")
    times = sorted(r["at"] for r in seen if r["path"].startswith("/2010-04-01/"))
    gaps = [b - a_ for a_, b in zip(times, times[1:])]
    t.check(gaps and min(gaps) >= 0.2, "rate limit 4/s spaces SMS requests (smallest gap %.3f s)" %
            (min(gaps) if gaps else -1))
finally:
    d.cleanup()
    srv.shutdown()
t.done()
