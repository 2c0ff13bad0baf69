"""Black-box: what a WhatsApp failure reported later, in a status callback,
leaves where an operator looks.

Kim's order sends three WhatsApp messages. The Cloud API accepts them,
then reports the first failed with 131049 (Meta's per-user marketing
limit), the order's confirmation failed with 132001 (no such approved
template), the second delivered. The messages view (and `consonance
journeys messages`) shows each failure's code and text in
`delivery_detail`: it used to show only `delivery: "failed"`, the reason
only in the message.status event. A status's detail is kept to 300 bytes,
cut between two characters. Email points at a port where nothing listens:
email stays queued."""
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import http.server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
seen = []
lock = threading.Lock()


class CloudApi(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with lock:
            seen.append(body)
            n = len(seen)
        return csbb.reply_json(self, 200, {"messaging_product": "whatsapp",
                                           "contacts": [{"input": body.get("to"),
                                                         "wa_id": body.get("to")}],
                                           "messages": [{"id": "wamid.F%04d" % n}]})


srv, base = csbb.serve(CloudApi)
work = tempfile.mkdtemp(prefix="cs-bb-wafail-")
jdir = os.path.join(work, "journeys")
os.makedirs(jdir)
for name, ch, template, cls in (("promo_wa", "whatsapp", "cross_sell", "marketing"),
                                ("promo_list", "[whatsapp, email]", "cross_sell", "marketing"),
                                ("confirm_wa", "whatsapp", "order_confirmation", "transactional")):
    with open(os.path.join(jdir, name + ".yaml"), "w") as f:
        f.write("journey: %s\n"
                "trigger: {event: order.placed}\n"
                "steps:\n"
                "  - send: {channel: %s, template: %s, class: %s}\n" % (name, ch, template, cls))
APP_SECRET = "wa-app-secret-0123456789"
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_WHATSAPP_URL": base + "/v21.0/1234567/messages",
    "CONSONANCE_WHATSAPP_TOKEN": "wa-token",
    "CONSONANCE_WHATSAPP_APP_SECRET": APP_SECRET,
    "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:9",
    "CONSONANCE_SMTP_FROM": "shop@example.de",
    "CONSONANCE_RETRY_BASE": "1d",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_CONTACT_BUDGET": "20",
})
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
minute = dt.timedelta(minutes=1)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def messages(order_id):
    st, _, body = d.request("GET", "/v1/customers/kim/messages")
    return {m["journey"]: m for m in body.get("messages", []) if m.get("order_id") == order_id} \
        if st == 200 else {}


def decided(order_id, n=3):
    got = messages(order_id)
    return got if len(got) == n and all(m["status"] not in ("queued", "sending") or
                                        m["channel"] == "email" for m in got.values()) else None


def summary(ms):
    """(channel, status, reason) by journey; an email waits for its server
    (queued or being tried: its reason is the last try's)."""
    return {j: ("email", "queued", None) if m["channel"] == "email" and
            m["status"] in ("queued", "sending") else
            (m["channel"], m["status"], m.get("reason")) for j, m in ms.items()}


def upsert(eid, at, data):
    return {"event_id": eid, "type": "customer.upserted", "occurred_at": iso(at), "data": data}


def order(n, at):
    return csbb.order_event("o%d" % n, "o%d" % n, customer="kim", at=iso(at))


LIMIT = "This message was not delivered to maintain healthy ecosystem engagement."
try:
    d.start()
    st, _, body = d.post_events([
        upsert("c1", now - 10 * minute,
               {"id": "kim", "email": "kim@example.de", "phone": "+4915100000301", "locale": "de",
                "consents": {"email": {"transactional": True, "marketing": True},
                             "whatsapp": {"transactional": True, "marketing": True}}}),
        order(1, now - 5 * minute)])
    t.eq(st, 200, "events accepted: %r" % (body,))
    got = t.wait_for(lambda: decided("o1"), "the first order's three messages", timeout=30)
    t.eq(summary(got or {}), {"promo_wa": ("whatsapp", "sent", None),
                              "promo_list": ("whatsapp", "sent", None),
                              "confirm_wa": ("whatsapp", "sent", None)},
         "all three go by WhatsApp")
    ref = {j: m.get("provider_ref", "") for j, m in (got or {}).items()}

    # ---- the Cloud API reports back ----
    stamp = str(int((now - minute).timestamp()))
    st, _, body = csbb.meta_post(d, [
        {"id": ref.get("promo_wa"), "status": "failed", "timestamp": stamp,
         "recipient_id": "4915100000301",
         "errors": [{"code": 131049, "title": LIMIT}]},
        {"id": ref.get("confirm_wa"), "status": "failed", "timestamp": stamp,
         "errors": [{"code": 132001, "title": "Template name does not exist in the translation"}]},
        {"id": ref.get("promo_list"), "status": "delivered", "timestamp": stamp}], APP_SECRET)
    t.eq((st, body.get("recorded")), (200, 3), "the three statuses are recorded")

    # ---- the messages view says why each failed ----
    got = messages("o1")
    t.eq({j: (m.get("delivery"), m.get("delivery_detail")) for j, m in got.items()},
         {"promo_wa": ("failed", "131049 " + LIMIT),
          "confirm_wa": ("failed", "132001 Template name does not exist in the translation"),
          "promo_list": ("delivered", None)},
         "each failure's code and text in the messages view; none for a delivery")

    # ---- a detail is kept to 300 bytes, between two characters ----
    st, _, body = d.post_events([
        {"event_id": "long-detail", "type": "message.status", "occurred_at": iso(now),
         "data": {"message_id": str(got["confirm_wa"]["id"]) if got else "0",
                  "status": "failed", "channel": "whatsapp", "customer_id": "kim",
                  "detail": "\u00fc" * 250}}])
    t.eq(st, 200, "a status with a long detail accepted: %r" % (body,))
    m = messages("o1").get("confirm_wa", {})
    t.eq((m.get("delivery"), m.get("delivery_detail")), ("failed", "\u00fc" * 150),
         "the detail cut to 300 bytes, between two characters")
    d.stop()

    # ---- the command line lists the same ----
    env = dict(os.environ)
    env.pop("CONSONANCE_STORE", None)
    proc = subprocess.run([a.bin, "journeys", "--store", d.store, "messages", "kim"],
                          capture_output=True, text=True, timeout=60, env=env)
    listed = json.loads(proc.stdout) if proc.returncode == 0 else []
    t.eq(sorted((m.get("journey"), m.get("delivery_detail")) for m in listed
                if m.get("order_id") == "o1"),
         [("confirm_wa", "\u00fc" * 150), ("promo_list", None), ("promo_wa", "131049 " + LIMIT)],
         "consonance journeys messages shows the detail: %r" % proc.stderr[-300:])
finally:
    d.cleanup()
    srv.shutdown()
    shutil.rmtree(work, ignore_errors=True)
t.done()
