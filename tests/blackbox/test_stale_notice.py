"""Black-box: notices held back until what they tell is over are not sent.
The SMS provider refuses (503) for a while. An out-for-delivery notice
whose parcel the carrier scans delivered meanwhile is skipped as
no_longer_out_for_delivery instead of telling the customer, with the
parcel in their hands (or days later), that it "arrives today"; one whose
parcel is still out for delivery goes, on its retry. A delay notice whose
order the watch finds at risk for a new reason meanwhile is skipped as
superseded: the newer notice tells the same state (both are written when
they are sent), and the customer got the same SMS twice. A shop's own
journey started by the same scan that waits for the delivery and then
sends (class service) is not such a notice: its message goes."""
import http.server
import os
import shutil
import sys
import tempfile
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
        csbb.reply_json(self, code, obj)


srv, base = csbb.serve(Provider)

# the shipped journeys, and a shop's own that the out-for-delivery scan
# starts too: once the parcel is delivered, it asks whether all is well
conf = tempfile.mkdtemp(prefix="cs-stale-")
journeys = os.path.join(conf, "journeys")
templates = os.path.join(conf, "templates")
shutil.copytree(os.path.join(root, "etc", "journeys"), journeys)
shutil.copytree(os.path.join(root, "etc", "templates"), templates)
with open(os.path.join(journeys, "41-after-the-round.yaml"), "w") as f:
    f.write("""journey: after_the_round
name: After the delivery round
trigger:
  event: tracking.event
  if: "event.status == 'out_for_delivery' and shipment.status == 'out_for_delivery'"
once_per: order
steps:
  - wait_for:
      event: tracking.event
      if: "event.status == 'delivered'"
      timeout: 1d
  - send: {channel: sms, template: after_the_round, class: service}
""")
for lang, text in (("de", "Ist Ihre Bestellung {{order.id}} gut angekommen?"),
                   ("en", "Did your order {{order.id}} arrive safely?")):
    with open(os.path.join(templates, "after_the_round.%s.txt" % lang), "w") as f:
        f.write(text + "\n")

d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": journeys,
    "CONSONANCE_TEMPLATES": templates,
    "CONSONANCE_SMS_URL": base + "/2010-04-01/Accounts/AC1/Messages.json",
    "CONSONANCE_SMS_ACCOUNT": "AC1",
    "CONSONANCE_SMS_TOKEN": "sms-token-0123456789",
    "CONSONANCE_SMS_FROM": "+4930123456",
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
})
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parcel(cid, n):
    return csbb.out_for_delivery(cid, "+49151000001%02d" % n, {"sms": {"transactional": True}}, n, now)


def notice(cid, template="out_for_delivery"):
    """The customer's first message of the template (None: none yet)."""
    got = notices(cid, template)
    return got[0] if got else None


def notices(cid, template):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cid)
    got = [m for m in body.get("messages", []) if m["template"] == template] if st == 200 else []
    return list(reversed(got))  # oldest first


def scan(cid, n, status, reason=None):
    data = {"shipment_id": "s-" + cid, "carrier": "dhl", "tracking_number": "T%d" % n,
            "status": status}
    if reason:
        data["reason"] = reason
    return {"event_id": "e-%s-%s-%s" % (cid, status, reason), "type": "tracking.event",
            "occurred_at": now, "data": data}


try:
    d.start()
    kai = parcel("kai", 3)
    kai[-1] = scan("kai", 3, "exception", "weather")
    st, _, _ = d.post_events(parcel("ida", 1) + parcel("jon", 2) + kai)
    t.eq(st, 200, "events accepted")
    # the notices tried once and refused: waiting for their retry
    for cid, tmpl in (("ida", "out_for_delivery"), ("jon", "out_for_delivery"),
                      ("kai", "delivery_problem")):
        t.wait_for(lambda: (notice(cid, tmpl) or {}).get("attempts", 0) >= 1 and
                   notice(cid, tmpl)["status"] == "queued", "%s's notice tried and waiting" % cid)
    st, _, _ = d.post_events([scan("ida", 1, "delivered"),
                              scan("kai", 3, "exception", "address_problem")])
    t.eq(st, 200, "the delivery and the second delay accepted")
    t.wait_for(lambda: len(notices("kai", "delivery_problem")) == 2 and
               notices("kai", "delivery_problem")[1]["attempts"] >= 1, "kai's second notice tried")
    with lock:
        down[0] = False
    got = t.wait_for(lambda: (notice("ida") or {}).get("status") in ("sent", "skipped", "failed")
                     and notice("ida"), "ida's notice settled")
    if got:
        t.eq((got["status"], got["reason"]), ("skipped", "no_longer_out_for_delivery"),
             "no \"arrives today\" after the delivery: %r" % got)
    got = t.wait_for(lambda: (notice("jon") or {}).get("status") == "sent" and notice("jon"),
                     "jon's notice sent on its retry")
    # the shop's own message after the delivery goes: it was skipped as
    # no_longer_out_for_delivery, for its run was started by that scan too
    got = t.wait_for(lambda: (notice("ida", "after_the_round") or {}).get("status") in
                     ("sent", "skipped", "failed") and notice("ida", "after_the_round"),
                     "ida's message after the round settled")
    if got:
        t.eq((got["status"], got["reason"]), ("sent", None),
             "a service message after the delivery is sent: %r" % got)
    got = t.wait_for(lambda: [m for m in notices("kai", "delivery_problem")
                              if m["status"] in ("sent", "skipped", "failed")] == 
                     notices("kai", "delivery_problem") and notices("kai", "delivery_problem"),
                     "kai's notices settled")
    if got:
        t.eq([(m["status"], m["reason"]) for m in got],
             [("skipped", "superseded"), ("sent", None)],
             "the first delay notice gives way to the second: %r" % got)
    with lock:
        texts = [b.get("Body", [""])[0] for b in bodies]
    t.check(len([x for x in texts if "o-jon" in x and "kommt heute" in x]) == 1 and
            [x for x in texts if "o-ida" in x] == ["Ist Ihre Bestellung o-ida gut angekommen?"],
            "jon's notice, none of ida's (but the shop's own after the round): %r" % texts)
    kais = [x for x in texts if "o-kai" in x]
    t.check(len(kais) == 1 and "Adresse" in kais[0], "one delay SMS to kai, the newer: %r" % kais)
finally:
    d.stop()
    d.cleanup()
    srv.shutdown()
    shutil.rmtree(conf, ignore_errors=True)
t.done()
