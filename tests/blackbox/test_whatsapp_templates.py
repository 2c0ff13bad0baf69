"""Black-box: WhatsApp template messages against a fake Cloud API. A
template mapped to an approved WhatsApp template (T.L.whatsapp) goes as
that template: its name, language code, header, body parameters in order
and URL button, rendered from the message's context, with the bearer
token and the idempotency key, and its wamid recorded. An unmapped one
goes as text; the Cloud API's 131047 (a text outside the 24-hour window)
and a template it refuses (132001) fail the message with a reason that
names the cause and the file to write or fix. A failed status callback
for the window (131047) marks the message failed, with that reason, and
does not stop WhatsApp for the customer, as a bounce would. The start-up
check (journeys check) names a mapping's file and line."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import http.server
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
seen = []
lock = threading.Lock()
WINDOW = "4915100000203"    # a text to this number is outside the window
UNKNOWN = "4915100000204"   # the Cloud API knows no approved template for this one's

MAPPING = """# out_for_delivery in German, as the approved template "paket_kommt_heute":
#   header: Bestellung {{1}}
#   body:   Hallo {{1}}, dein Paket ({{2}}, {{3}}) kommt heute. {{4}}
#   button: Sendung verfolgen -> https://shop.example/t/{{1}}
name: paket_kommt_heute
language: de
header: {{order.id}}
body: {{#customer.first_name}}{{.}}{{/customer.first_name}}{{^customer.first_name}}Hallo{{/customer.first_name}}
body: {{shipment.carrier}}
body: {{shipment.tracking_number}}
body: Bestellung {{order.id}}   ({{shop.name}})
button: {{links.tracking_token}}
"""


class CloudApi(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with lock:
            seen.append({"headers": dict(self.headers), "body": body})
            n = len(seen)
        if body.get("to") == WINDOW and body.get("type") == "text":
            return csbb.reply_json(self, 400, {"error": {
                "message": "(#131047) Re-engagement message", "type": "OAuthException",
                "code": 131047, "error_data": {"messaging_product": "whatsapp", "details":
                                               "Message failed to send because more than 24 "
                                               "hours have passed since the customer last "
                                               "replied to this number."},
                "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})
        if body.get("to") == UNKNOWN and body.get("type") == "template":
            return csbb.reply_json(self, 404, {"error": {
                "message": "(#132001) Template name does not exist in the translation",
                "type": "OAuthException", "code": 132001, "error_data": {
                    "messaging_product": "whatsapp",
                    "details": "template name (paket_kommt_heute) does not exist in de"}}})
        return csbb.wa_accepted(self, body.get("to"), "wamid.T%04d" % n)


srv, base = csbb.serve(CloudApi)
work = tempfile.mkdtemp(prefix="cs-bb-watpl-")
tpl_dir = os.path.join(work, "templates")
shutil.copytree(os.path.join(root, "etc", "templates"), tpl_dir)
with open(os.path.join(tpl_dir, "out_for_delivery.de.whatsapp"), "w") as f:
    f.write(MAPPING)
journeys = os.path.join(work, "journeys")
os.makedirs(journeys)
shutil.copy(os.path.join(root, "etc", "journeys", "40-out-for-delivery.yaml"), journeys)

APP_SECRET = "wa-app-secret-0123456789"
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": journeys,
    "CONSONANCE_TEMPLATES": tpl_dir,
    "CONSONANCE_WHATSAPP_URL": base + "/v21.0/1234567/messages",
    "CONSONANCE_WHATSAPP_TOKEN": "wa-token",
    "CONSONANCE_WHATSAPP_APP_SECRET": APP_SECRET,
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_PUBLIC_URL": "https://shop.example",
    "CONSONANCE_LINK_SECRET": "a-link-secret-of-some-length",
    "CONSONANCE_SHOP_NAME": "Kaffee & Co",
})
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
wa = {"whatsapp": {"transactional": True}}


def customer(cid, n, locale):
    """cid, speaking locale, with the phone +49151000002nn: order o-CID's
    parcel is out for delivery today."""
    evs = csbb.out_for_delivery(cid, "+49151000002%02d" % n, wa, 200 + n, now)
    evs[0]["data"]["locale"] = locale
    return evs


def second_order(cid, n):
    """cid's next order, o-CIDb, out for delivery today too."""
    oid, tn = "o-%sb" % cid, "T9%d" % n
    return [csbb.order_event("e-o2-" + cid, oid, customer=cid, at=now),
            {"event_id": "e-s2-" + cid, "type": "shipment.created", "occurred_at": now,
             "data": {"id": "s2-" + cid, "order_id": oid, "carrier": "dhl", "tracking_number": tn}},
            {"event_id": "e-t2-" + cid, "type": "tracking.event", "occurred_at": now,
             "data": {"shipment_id": "s2-" + cid, "carrier": "dhl", "tracking_number": tn,
                      "status": "out_for_delivery"}}]


def messages(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    return body.get("messages", []) if st == 200 else []


def sent_to(number):
    with lock:
        return [r for r in seen if r["body"].get("to") == number]


def meta_post(statuses):
    return csbb.meta_post(d, statuses, APP_SECRET)


def check(env_templates, what):
    """`consonance journeys check` on the journey with these templates."""
    env = dict(os.environ, CONSONANCE_TEMPLATES=env_templates, CONSONANCE_QUIET_HOURS="off",
               CONSONANCE_PUBLIC_URL="https://shop.example",
               CONSONANCE_LINK_SECRET="a-link-secret-of-some-length")
    env.pop("CONSONANCE_STORE", None)
    return subprocess.run([a.bin, "journeys", "check", journeys], capture_output=True,
                          text=True, timeout=60, env=env)


try:
    d.start()
    evs = customer("wt1", 1, "de") + customer("wt2", 2, "en") + customer("wt3", 3, "en") + \
        customer("wt4", 4, "de")
    st, _, _ = d.post_events(evs)
    t.eq(st, 200, "events accepted")

    # ---- a mapped template goes as the approved WhatsApp template ----
    got = t.wait_for(lambda: [m for m in messages("wt1") if m["status"] == "sent"],
                     "wt1's WhatsApp template sent")
    reqs = sent_to("4915100000201")
    t.eq(len(reqs), 1, "one request for wt1")
    if reqs:
        b = reqs[0]["body"]
        token = (b.get("template", {}).get("components", [{}])[-1].get("parameters", [{}])[0]
                 .get("text", ""))
        want = {"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "4915100000201", "type": "template",
                "template": {"name": "paket_kommt_heute", "language": {"code": "de"},
                             "components": [
                                 {"type": "header", "parameters": [{"type": "text", "text": "o-wt1"}]},
                                 {"type": "body", "parameters": [
                                     {"type": "text", "text": "Kim"},
                                     {"type": "text", "text": "DHL"},
                                     {"type": "text", "text": "T201"},
                                     # a run of spaces is one: the Cloud API refuses runs
                                     {"type": "text", "text": "Bestellung o-wt1 (Kaffee & Co)"}]},
                                 {"type": "button", "sub_type": "url", "index": "0",
                                  "parameters": [{"type": "text", "text": token}]}]}}
        t.eq(b, want, "the template message's exact JSON")
        # the button's parameter is the order's tracking token: the link
        # https://shop.example/t/{{1}} the template was approved with opens it
        st, _, page = d.request("GET", "/t/" + token, key=False)
        t.check(len(token) > 10 and st == 200 and "o-wt1" in str(page),
                "the button's token opens the order's tracking page (%s, %r)" % (st, token))
        h = reqs[0]["headers"]
        t.eq(h.get("Authorization"), "Bearer wa-token", "bearer token")
        t.check(h.get("Idempotency-Key", "").startswith("out_for_delivery:"),
                "idempotency key: %r" % h.get("Idempotency-Key"))
    if got:
        t.check(got[0]["channel"] == "whatsapp" and got[0].get("provider_ref", "").startswith("wamid.T"),
                "the wamid is the provider reference: %r" % got[0])

    # ---- an unmapped one (English) goes as text ----
    got = t.wait_for(lambda: [m for m in messages("wt2") if m["status"] == "sent"],
                     "wt2's WhatsApp text sent")
    reqs = sent_to("4915100000202")
    t.eq([(r["body"]["type"], "arrives today" in r["body"].get("text", {}).get("body", ""))
          for r in reqs], [("text", True)], "an unmapped template goes as English text")

    # ---- the Cloud API's 131047: a clear, permanent reason ----
    got = t.wait_for(lambda: [m for m in messages("wt3") if m["status"] in ("failed", "sent")],
                     "wt3's text refused")
    if got:
        t.eq((got[0]["status"], got[0]["channel"], got[0]["attempts"]), ("failed", "whatsapp", 1),
             "a text outside the window fails for good, at once")
        t.eq(got[0].get("reason"),
             "outside WhatsApp's 24-hour window: map template out_for_delivery.en to an approved "
             "WhatsApp template (out_for_delivery.en.whatsapp); http 400, code 131047",
             "the reason names the cause and the file to write")
    t.eq(len(sent_to(WINDOW)), 1, "not retried")

    # ---- a template the Cloud API does not know ----
    got = t.wait_for(lambda: [m for m in messages("wt4") if m["status"] in ("failed", "sent")],
                     "wt4's template refused")
    if got:
        t.eq(got[0]["status"], "failed", "a refused template fails for good")
        t.eq(got[0].get("reason"),
             "whatsapp template paket_kommt_heute (de) of out_for_delivery.de.whatsapp refused: "
             "no approved template of that name in that language; http 404, code 132001: "
             "template name (paket_kommt_heute) does not exist in de",
             "the reason names the template, its language, the file and the cause")

    # ---- a window failure reported later, in a status callback ----
    wt2 = [m for m in messages("wt2") if m["status"] == "sent"]
    wamid = wt2[0].get("provider_ref", "") if wt2 else ""
    st, _, body = meta_post([{"id": wamid, "status": "failed", "timestamp": str(int(time.time())),
                              "recipient_id": "4915100000202",
                              "errors": [{"code": 131047, "title": "Re-engagement message"}]}])
    t.eq((st, body.get("recorded")), (200, 1), "the failed status is recorded")
    wt2 = [m for m in messages("wt2") if m.get("provider_ref") == wamid]
    t.eq(wt2[0].get("delivery") if wt2 else None, "failed", "the message shows failed, not bounced")
    st, _, body = d.request("GET", "/v1/events?type=message.status&limit=100")
    ev = [e["event"]["data"] for e in body.get("events", [])
          if wt2 and e["event"]["data"]["message_id"] == str(wt2[0]["id"])]
    t.eq([(e["status"], e.get("detail")) for e in ev],
         [("failed", "131047 outside WhatsApp's 24-hour window: map template out_for_delivery to "
                     "an approved WhatsApp template")],
         "its status event says why and what to do")
    st, _, cu = d.request("GET", "/v1/customers/wt2")
    t.eq((cu.get("contact") or {}).get("whatsapp", {}).get("bounced"), False,
         "the number did not bounce: %r" % (cu.get("contact"),))
    # the number is fine: the customer's next message still goes by WhatsApp
    st, _, _ = d.post_events(second_order("wt2", 2))
    got = t.wait_for(lambda: [m for m in messages("wt2") if m.get("order_id") == "o-wt2b" and
                              m["status"] in ("sent", "skipped", "failed")], "wt2's next message")
    if got:
        t.eq((got[0]["status"], got[0]["channel"], got[0].get("reason")),
             ("sent", "whatsapp", None), "WhatsApp is not stopped by a window failure")
    # a limit of Meta's (the per-user marketing limit), or a failure that
    # names no error, says nothing against the number: failed, not a bounce
    # (which stopped WhatsApp for the customer until the number changed)
    wt2b = [m for m in messages("wt2") if m.get("order_id") == "o-wt2b" and m["status"] == "sent"]
    wt1 = [m for m in messages("wt1") if m["status"] == "sent"]
    st, _, body = meta_post([{"id": wt2b[0]["provider_ref"] if wt2b else "", "status": "failed",
                              "errors": [{"code": 131049, "title": "This message was not delivered "
                                                                   "to maintain healthy ecosystem engagement."}]},
                             {"id": wt1[0]["provider_ref"] if wt1 else "", "status": "failed"}])
    t.eq((st, body.get("recorded")), (200, 2), "both failures recorded")
    for cid in ("wt2", "wt1"):
        st, _, cu = d.request("GET", "/v1/customers/" + cid)
        t.eq((cu.get("contact") or {}).get("whatsapp", {}).get("bounced"), False,
             "%s: a failure not about the number is no bounce: %r" % (cid, cu.get("contact")))
    wt2b = [m for m in messages("wt2") if m.get("order_id") == "o-wt2b"]
    t.eq(wt2b[0].get("delivery") if wt2b else None, "failed", "the message shows failed")
    # a failure of the number itself still is a bounce
    st, _, body = meta_post([{"id": wt1[0]["provider_ref"] if wt1 else "", "status": "failed",
                              "errors": [{"code": 131026, "title": "Message undeliverable"}]}])
    st, _, cu = d.request("GET", "/v1/customers/wt1")
    t.eq((cu.get("contact") or {}).get("whatsapp", {}).get("bounced"), True,
         "131026 (the number cannot get WhatsApp) stops WhatsApp")
finally:
    d.cleanup()
    srv.shutdown()

# ---- the start-up check names the mapping's file and line ----
proc = check(tpl_dir, "as shipped")
t.check(proc.returncode == 0 and "templates ok" in proc.stdout,
        "the mapping renders against the sample: %r" % (proc.stdout + proc.stderr)[-300:])
path = os.path.join(tpl_dir, "out_for_delivery.de.whatsapp")
# the example in docs/channels.md is a mapping the check takes
with open(os.path.join(root, "docs", "channels.md")) as f:
    doc = f.read()
start = doc.index("`out_for_delivery.de.whatsapp` is:\n\n") + len("`out_for_delivery.de.whatsapp` is:\n\n")
example = doc[start:doc.index("\n\n", start)]
with open(path, "w") as f:
    f.write("\n".join(line[4:] for line in example.splitlines()) + "\n")
proc = check(tpl_dir, "the documented example")
t.check(proc.returncode == 0 and "templates ok" in proc.stdout and "paket_heute_v1" in example,
        "the documented mapping passes the check: %r" % (proc.stdout + proc.stderr)[-300:])
with open(path, "w") as f:
    f.write(MAPPING.replace("body: {{shipment.carrier}}", "body: {{shipment.carier}}"))
proc = check(tpl_dir, "a misspelt variable")
t.check(proc.returncode != 0 and "40-out-for-delivery.yaml" in proc.stderr and
        "out_for_delivery.de.whatsapp:9: body parameter 2:" in proc.stderr and
        "shipment.carier" in proc.stderr,
        "a misspelt variable is named with the journey, the file and the line: %r" % proc.stderr[-400:])
with open(path, "w") as f:
    f.write(MAPPING.replace("body: {{shipment.carrier}}", "bdy: {{shipment.carrier}}"))
proc = check(tpl_dir, "an unknown key")
t.check(proc.returncode != 0 and
        "out_for_delivery.de.whatsapp:9: unknown key \"bdy\"; expected name, language, header, "
        "body or button" in proc.stderr,
        "an unknown key is named with the file and the line: %r" % proc.stderr[-400:])
with open(path, "w") as f:
    f.write(MAPPING.replace("name: paket_kommt_heute\n", ""))
proc = check(tpl_dir, "no name")
t.check(proc.returncode != 0 and "out_for_delivery.de.whatsapp: name: missing" in proc.stderr,
        "a mapping without a name is refused: %r" % proc.stderr[-400:])
shutil.rmtree(work, ignore_errors=True)
t.done()
