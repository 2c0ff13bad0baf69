"""Black-box: SMS (a Twilio-style API) and WhatsApp (the Cloud API format)
against a local HTTP receiver. The out-for-delivery journey picks the first
channel the customer agreed to; requests carry the provider's auth, body
format and an idempotency key; the provider's message id is recorded; a
rejected number fails for good, a 503 is retried; the SMS rate limit
spaces the requests. Delivery callbacks come back signed (X-Twilio-Signature,
X-Hub-Signature-256), are recorded once as message.status events, set the
message's delivery status, and a bounce stops that channel for the customer;
forged ones are refused. An out-for-delivery scan that arrives after the
delivery sends nothing. A provider whose status callback comes before it
has answered the send (before the message's provider id is recorded) has
its status kept and applied once the id is recorded."""
import base64
import hashlib
import hmac
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
# answers 401 this many times: the provider refused our token (rotated,
# expired) until the operator fixed it -- our setup, not the message
refused = {"+4915100000097": 1}
FAST = "+4915100000077"  # its status callback comes before the send is answered
fast_answers = []
# this request is noted late, as a loaded machine notes one (the test's
# thread scheduled late, or the provider slow to read it): the SMS pacing
# is judged by what the sender can control, not by when requests arrive
SLOW = "+4915100000101"


class Provider(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if urllib.parse.quote_plus(SLOW) in body.decode():
            time.sleep(0.4)
        with lock:
            n = len(seen) + 1
            rec = {"path": self.path, "headers": dict(self.headers), "body": body.decode(),
                   "at": time.monotonic()}
            seen.append(rec)
        self.rec = rec
        if self.path.startswith("/2010-04-01/"):
            form = urllib.parse.parse_qs(body.decode())
            to = form.get("To", [""])[0]
            if to == "+4915100000099":
                return self.reply(400, {"code": 21211, "message": "The 'To' number is not valid."})
            with lock:
                if flaky.get(to, 0) > 0:
                    flaky[to] -= 1
                    return self.reply(503, {"code": 20500, "message": "busy"})
                if refused.get(to, 0) > 0:
                    refused[to] -= 1
                    return self.reply(401, {"code": 20003, "message": "Authenticate"})
            if to == FAST:
                # a provider faster than our write of its sid: the callback
                # is answered before the send it reports on
                fast_answers.append(twilio_post({"MessageSid": "SM%04d" % n,
                                                 "MessageStatus": "delivered"}))
            return self.reply(201, {"sid": "SM%04d" % n, "status": "queued"})
        return self.reply(200, {"messaging_product": "whatsapp",
                                "messages": [{"id": "wamid.%04d" % n}]})

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.rec["answered"] = time.monotonic()  # before the sender can have the answer
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
    "CONSONANCE_SMS_TOKEN": "sms-token-0123456789",
    "CONSONANCE_SMS_FROM": "+4930123456",
    "CONSONANCE_SMS_RATE": "4",
    "CONSONANCE_WHATSAPP_URL": base + "/v19.0/1234567/messages",
    "CONSONANCE_WHATSAPP_TOKEN": "wa-token",
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_PUBLIC_URL": "https://shop.example",
    "CONSONANCE_LINK_SECRET": "a-link-secret-of-some-length",
    "CONSONANCE_WHATSAPP_APP_SECRET": "wa-app-secret-0123456789",
    "CONSONANCE_WHATSAPP_VERIFY_TOKEN": "wa-verify-0123456789",
})


def twilio_post(fields, token="sms-token-0123456789"):
    """POST a Twilio-style status callback, signed as Twilio signs it."""
    data = "https://shop.example/v1/callbacks/sms" + "".join(k + fields[k] for k in sorted(fields))
    sig = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return d.request("POST", "/v1/callbacks/sms", body=urllib.parse.urlencode(fields).encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "X-Twilio-Signature": sig}, key=False)


def meta_post(statuses, secret="wa-app-secret-0123456789"):
    return csbb.meta_post(d, statuses, secret)



def messages(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    return [m for m in body.get("messages", []) if m["template"] == "out_for_delivery"] if st == 200 else []


now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def shop_events(cid, phone, consents, n):
    return csbb.out_for_delivery(cid, phone, consents, n, now)


def two_parcels(cid, phone, consents):
    """An order in two parcels: the earlier one goes out for delivery."""
    oid = "o-" + cid
    ago = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - s))
    return [
        {"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": ago(180),
         "data": {"id": cid, "name": "Kim " + cid, "phone": phone, "locale": "de",
                  "timezone": "Europe/Berlin", "consents": consents}},
        csbb.order_event("e-o-" + cid, oid, customer=cid, at=ago(180)),
        {"event_id": "e-sa-" + cid, "type": "shipment.created", "occurred_at": ago(120),
         "data": {"id": "sa-" + cid, "order_id": oid, "carrier": "dhl", "tracking_number": "T50"}},
        {"event_id": "e-sb-" + cid, "type": "shipment.created", "occurred_at": ago(60),
         "data": {"id": "sb-" + cid, "order_id": oid, "carrier": "dhl", "tracking_number": "T51"}},
        {"event_id": "e-t-" + cid, "type": "tracking.event", "occurred_at": ago(1),
         "data": {"carrier": "dhl", "tracking_number": "T50", "status": "out_for_delivery"}},
    ]


try:
    d.start()
    wa = {"whatsapp": {"transactional": True}}
    sms = {"sms": {"transactional": True}}
    evs = shop_events("wa1", "+4915100000001", wa, 1) + shop_events("sms1", "+4915100000002", sms, 2) + \
        shop_events("bad", "+4915100000099", sms, 3) + shop_events("flaky", "+4915100000098", sms, 4) + \
        shop_events("authfail", "+4915100000097", sms, 5)
    for i in range(4):
        evs += shop_events("r%d" % i, "+49151000001%02d" % i, sms, 10 + i)
    evs += two_parcels("two", "+4915100000050", sms)
    # delivered, then the carrier's older out-for-delivery scan arrives:
    # no "arrives today" after the delivery
    stale = shop_events("stale", "+4915100000060", sms, 60)
    scan_ofd = stale.pop()
    scan_ofd["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    stale += [{"event_id": "e-d-stale", "type": "tracking.event", "occurred_at": now,
               "data": {"shipment_id": "s-stale", "carrier": "dhl", "tracking_number": "T60",
                        "status": "delivered"}}, scan_ofd]
    evs += stale + shop_events("after", "+4915100000061", sms, 61)
    posted = time.monotonic()  # no SMS request starts before this
    st, _, body = d.post_events(evs)
    t.eq(st, 200, "events accepted")

    got = t.wait_for(lambda: [m for m in messages("wa1") if m["status"] == "sent"], "WhatsApp sent")
    # (events are handled in order: "after" comes after the stale scan)
    t.wait_for(lambda: messages("after"), "the message after the stale scan")
    t.eq(messages("stale"), [], "no out-for-delivery message after the delivery")
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

    got = t.wait_for(lambda: [m for m in messages("sms1") if m["status"] == "sent"], "SMS sent")
    sreq = [r for r in seen if r["path"].startswith("/2010-04-01/")]
    one = [r for r in sreq if "%2B4915100000002" in r["body"]]
    t.check(len(one) == 1, "one SMS request for sms1")
    if one:
        form = urllib.parse.parse_qs(one[0]["body"])
        t.eq((form["To"][0], form["From"][0]), ("+4915100000002", "+4930123456"), "form fields")
        t.check("kommt heute" in form["Body"][0], "SMS body")
        auth = one[0]["headers"].get("Authorization", "")
        t.eq(base64.b64decode(auth.split()[1]).decode(), "AC123:sms-token-0123456789", "Basic auth")
        t.check(one[0]["headers"].get("I-Twilio-Idempotency-Token"), "idempotency token")
    if got:
        t.check(got[0].get("channel") == "sms", "sms channel")

    got = t.wait_for(lambda: [m for m in messages("bad") if m["status"] == "failed"], "rejected number")
    if got:
        t.check("21211" in got[0]["reason"], "the provider's code is kept: %r" % got[0]["reason"])
    got = t.wait_for(lambda: [m for m in messages("flaky") if m["status"] == "sent"], "retried SMS")
    if got:
        t.eq(got[0]["attempts"], 2, "sent on the second attempt")
    # a 401 refuses the provider credentials, not this message: retried
    # (it failed for good, as every SMS would until the token was fixed)
    got = t.wait_for(lambda: [m for m in messages("authfail") if m["status"] in ("sent", "failed")],
                     "the SMS refused with 401 settled")
    if got:
        t.eq((got[0]["status"], got[0]["attempts"]), ("sent", 2),
             "a 401 is retried, not failed: %r" % got[0])

    t.wait_for(lambda: all([m for m in messages("r%d" % i) if m["status"] == "sent"] for i in range(4)),
             "four more SMS")
    # two parcels: the message names the one out for delivery, not the
    # one shipped last
    t.wait_for(lambda: [m for m in messages("two") if m["status"] == "sent"], "two parcels' SMS")
    two = [urllib.parse.parse_qs(r["body"])["Body"][0] for r in seen
           if r["path"].startswith("/2010-04-01/") and "%2B4915100000050" in r["body"]]
    t.check(len(two) == 1 and "T50" in two[0] and "T51" not in two[0],
            "the SMS names the parcel out for delivery: %r" % (two,))
    # the sender starts one SMS request every 0.25 s at most, one at a time
    # (the next once this one is answered). When a request arrives here
    # also carries its own delay (a busy machine, a sanitizer build, the
    # slow one above), so gaps between arrivals prove nothing either way;
    # what holds however late requests are noted: the k-th cannot arrive
    # before 0.25 * k s after the events were posted, nor the one after
    # next before 0.25 s after this one was answered (the next one started
    # after that answer, and the one after it 0.25 s later at the earliest).
    # A burst breaks both at once.
    sms_reqs = sorted((r for r in seen if r["path"].startswith("/2010-04-01/")),
                      key=lambda r: r["at"])
    early = [k for k, r in enumerate(sms_reqs) if r["at"] - posted < 0.25 * k - 0.01]
    close = [k for k in range(len(sms_reqs) - 2)
             if sms_reqs[k + 2]["at"] - sms_reqs[k]["answered"] < 0.25 - 0.01]
    t.check(len(sms_reqs) >= 10 and not early and not close,
            "rate limit 4/s spaces SMS requests (%d requests; too early: %r, too close: %r)" %
            (len(sms_reqs), early, close))

    # a shop without delivery history: a parcel out for delivery on its first
    # day is not "delayed" -- no delay notice follows the out-for-delivery one
    st, _, o = d.request("GET", "/v1/orders/o-sms1")
    t.check(st == 200 and (o.get("promise") or {}).get("at_risk") is False,
            "out for delivery today is not at risk: %r" % ((o.get("promise") if st == 200 else o),))
    t.eq(len([r for r in seen if "%2B4915100000002" in r["body"]]), 1,
         "still one SMS for sms1 after every other was sent")

    # ---- delivery callbacks ----
    sms_msg = messages("sms1")[0]
    sid = sms_msg.get("provider_ref", "")
    t.check(sid.startswith("SM"), "the SMS sid is the message's provider_ref: %r" % sid)
    st, _, body = twilio_post({"MessageSid": sid, "MessageStatus": "delivered", "To": "+4915100000002",
                               "AccountSid": "AC123"})
    t.eq((st, body.get("recorded")), (200, 1), "signed SMS callback recorded")
    st, _, body = twilio_post({"MessageSid": sid, "MessageStatus": "delivered", "To": "+4915100000002",
                               "AccountSid": "AC123"})
    t.eq(st, 200, "a repeated callback is answered")
    # a callback with many fields (Twilio adds some per feature): every one
    # is in the signature, not the first 64
    many = {"MessageSid": sid, "MessageStatus": "delivered"}
    many.update({"X%03d" % i: "v%d" % i for i in range(120)})
    st, _, body = twilio_post(many)
    t.eq(st, 200, "a signed callback with 122 fields is taken: %r" % (body,))
    st, _, body = twilio_post({"MessageSid": sid, "MessageStatus": "delivered"}, token="guess")
    t.eq(st, 403, "a forged SMS callback is refused")
    st, _, body = twilio_post({"MessageSid": "SMnotours", "MessageStatus": "delivered"})
    t.eq((st, body.get("unknown"), body.get("kept")), (200, 0, 1),
         "an unknown sid is answered and kept for a while (its send may not be recorded yet)")
    st, _, body = twilio_post({"MessageSid": sid, "MessageStatus": "sending"})
    t.eq((st, body.get("recorded")), (200, 0), "intermediate statuses are not recorded")
    got = messages("sms1")[0]
    t.eq(got.get("delivery"), "delivered", "the message shows its delivery status")
    st, _, body = d.request("GET", "/v1/events?type=message.status&limit=100")
    mine = [e for e in body.get("events", []) if e["event"]["data"]["message_id"] == str(sms_msg["id"])]
    t.eq(len(mine), 1, "one message.status event despite the repeat")
    # providers do not keep their callbacks in order: a "sent" that comes
    # after the "delivered" is recorded but does not take the message back
    st, _, body = twilio_post({"MessageSid": sid, "MessageStatus": "sent"})
    t.eq((st, body.get("recorded")), (200, 1), "a late sent callback is recorded")
    t.eq(messages("sms1")[0].get("delivery"), "delivered", "a late sent leaves the message delivered")

    # WhatsApp: the subscription check, then statuses
    st, _, body = d.request("GET", "/v1/callbacks/whatsapp?hub.mode=subscribe&hub.verify_token=wa-verify-0123456789"
                            "&hub.challenge=12345", key=False)
    t.eq((st, body), (200, "12345"), "Meta's subscription check echoes the challenge")
    st, _, _ = d.request("GET", "/v1/callbacks/whatsapp?hub.mode=subscribe&hub.verify_token=nope"
                         "&hub.challenge=1", key=False)
    t.eq(st, 403, "a wrong verify token is refused")
    wa_msg = messages("wa1")[0]
    wamid = wa_msg.get("provider_ref", "")
    read_at = int(time.time())
    st, _, body = meta_post([{"id": wamid, "status": "read", "timestamp": str(read_at),
                              "recipient_id": "4915100000001"}])
    t.eq((st, body.get("recorded")), (200, 1), "signed WhatsApp status recorded")
    t.eq(messages("wa1")[0].get("delivery"), "opened", "read shows as opened")
    # Meta's times are seconds: the "delivered" of the same second, coming
    # after the "read", does not take the message back
    st, _, body = meta_post([{"id": wamid, "status": "delivered", "timestamp": str(read_at),
                              "recipient_id": "4915100000001"}])
    t.eq((st, body.get("recorded")), (200, 1), "a late delivered status is recorded")
    t.eq(messages("wa1")[0].get("delivery"), "opened", "a late delivered leaves the message opened")
    # a batch of more statuses than one lookup takes: none is dropped
    many = [{"id": "wamid.other%04d" % i, "status": "delivered"} for i in range(299)]
    st, _, body = meta_post(many + [{"id": wamid, "status": "sent", "timestamp": str(read_at)}])
    t.eq((st, body.get("recorded"), body.get("kept")), (200, 1, 299),
         "300 statuses in one callback: each counted, ours recorded")
    # a timestamp no time is (it overflowed as milliseconds: undefined
    # behaviour, which the sanitizer build stops at) or one from the
    # future: kept, at its arrival
    st, _, body = meta_post([{"id": "wamid.future1", "status": "delivered",
                              "timestamp": "9999999999999999"},
                             {"id": "wamid.future2", "status": "delivered",
                              "timestamp": str(read_at + 30 * 86400)}])
    t.eq((st, body.get("kept")), (200, 2), "statuses with times out of bounds are kept: %r" % body)
    st, _, _ = meta_post([{"id": wamid, "status": "failed"}], secret="wrong")
    t.eq(st, 403, "a forged WhatsApp callback is refused")
    st, _, body = meta_post([{"id": wamid, "status": "failed", "timestamp": str(read_at + 1),
                              "errors": [{"code": 131026, "title": "Message undeliverable"}]}])
    t.eq((st, body.get("recorded")), (200, 1), "a failed WhatsApp status is recorded")
    # the number bounced: the next message for this customer skips WhatsApp
    evs = [csbb.order_event("e-o2-wa1", "o2-wa1", customer="wa1", at=now),
           {"event_id": "e-s2-wa1", "type": "shipment.created", "occurred_at": now,
            "data": {"id": "s2-wa1", "order_id": "o2-wa1", "carrier": "dhl", "tracking_number": "T99"}},
           {"event_id": "e-t2-wa1", "type": "tracking.event", "occurred_at": now,
            "data": {"shipment_id": "s2-wa1", "carrier": "dhl", "tracking_number": "T99",
                     "status": "out_for_delivery"}}]
    st, _, _ = d.post_events(evs)
    got = t.wait_for(lambda: [m for m in messages("wa1") if m.get("order_id") == "o2-wa1"], "second message")
    if got:
        t.eq((got[0]["status"], got[0].get("reason")), ("skipped", "bounced"),
             "a bounced channel is skipped and says why")

    # email: the generic form needs a key and names what is wrong
    st, _, _ = d.request("POST", "/v1/callbacks/email", body=b"[]",
                         headers={"Content-Type": "application/json"}, key=False)
    t.eq(st, 401, "the email callback needs an API key")
    st, _, body = d.request("POST", "/v1/callbacks/email", body=json.dumps([
        {"message_id": "<nope@shop.example>", "status": "bounced"},
        {"message_id": "<x@shop.example>", "status": "exploded"}]).encode(),
        headers={"Content-Type": "application/json"})
    rej = {r["index"]: r["error"]["field"] for r in body.get("rejected", [])}
    t.eq((st, rej), (422, {0: "message_id", 1: "status"}), "unknown message and bad status named")
    # each says it as every refusal does: the field, what it expects, what came
    msgs = {r["index"]: r["error"]["message"] for r in body.get("rejected", [])}
    t.eq(msgs, {0: 'message_id: no email of ours has the Message-ID "<nope@shop.example>"',
                1: 'status: expected sent, delivered, opened, clicked, bounced, complained, '
                   'unsubscribed or failed, got "exploded"'}, "the email callback's refusals say what came")
    # a time a year ahead is refused as the event intake refuses it, and a
    # time or detail of the wrong type is named, not passed over
    st, _, body = d.request("POST", "/v1/callbacks/email", body=json.dumps([
        {"message_id": "<y@shop.example>", "status": "bounced",
         "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 366 * 86400))},
        {"message_id": "<y@shop.example>", "status": "bounced", "occurred_at": 1767225600},
        {"message_id": "<y@shop.example>", "status": "bounced", "detail": {"code": 550}},
        "<y@shop.example> bounced",
        {"message_id": "<y@shop.example>", "status": "bounced", "occurred_at": "2026-12-07"},
        {"message_id": "<y@shop.example>", "status": "bounced", "occurred_at": "2026-12-07T09:00:00"}]).encode(),
        headers={"Content-Type": "application/json"})
    rej = {r["index"]: (r["error"]["field"], r["error"]["message"]) for r in body.get("rejected", [])}
    t.eq((st, {k: v[0] for k, v in rej.items()}),
         (422, {0: "occurred_at", 1: "occurred_at", 2: "detail", 3: "body", 4: "occurred_at",
                5: "occurred_at"}),
         "time and detail checked, and an item that is no object named")
    t.check("future" in rej.get(0, ("", ""))[1], "a time ahead is named so: %r" % (rej.get(0),))
    # a date alone is no time a bounce happened at (it was taken as midnight
    # UTC), and a time without its zone is named as the event intake names it
    t.check("a date alone" in rej.get(4, ("", ""))[1], "a date alone is named so: %r" % (rej.get(4),))
    t.check("no zone" in rej.get(5, ("", ""))[1], "a time without a zone is named so: %r" % (rej.get(5),))
    # each provider reports on its own channel's messages: an email bounce
    # naming the SMS's sid is no email of ours, and the SMS keeps its status
    st, _, body = d.request("POST", "/v1/callbacks/email", body=json.dumps(
        {"message_id": sid, "status": "bounced"}).encode(),
        headers={"Content-Type": "application/json"})
    rej = {r["index"]: r["error"]["field"] for r in body.get("rejected", [])}
    t.eq((st, body.get("recorded"), rej), (422, 0, {0: "message_id"}),
         "an email callback for an SMS is refused")
    t.eq(messages("sms1")[0].get("delivery"), "delivered", "the SMS is not taken for bounced")
    st, _, body = meta_post([{"id": sid, "status": "failed"}])
    t.eq((st, body.get("recorded"), body.get("unknown")), (200, 0, 1),
         "a WhatsApp status for an SMS is not ours")

    # a status callback that comes before the provider has answered the
    # send (so before its sid is recorded) is kept, and applied once the
    # sid is recorded: the message shows it, with its one event
    st, _, _ = d.post_events(shop_events("fast", FAST, sms, 77))
    t.eq(st, 200, "the fast provider's customer")
    got = t.wait_for(lambda: [m for m in messages("fast") if m["status"] == "sent"], "fast SMS sent")
    t.eq([(a_[0], a_[2].get("recorded"), a_[2].get("kept")) for a_ in fast_answers], [(200, 0, 1)],
         "the early callback is answered and kept")
    got = t.wait_for(lambda: [m for m in messages("fast") if m.get("delivery") == "delivered"],
                     "the early status applied")
    if got:
        st, _, body = d.request("GET", "/v1/events?type=message.status&limit=100")
        mine = [e for e in body.get("events", [])
                if e["event"]["data"]["message_id"] == str(got[0]["id"])]
        t.eq([e["event"]["data"]["status"] for e in mine], ["delivered"],
             "one message.status event for the early callback")
finally:
    d.cleanup()
    srv.shutdown()
t.done()
