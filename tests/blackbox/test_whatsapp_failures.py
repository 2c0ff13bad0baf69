"""Black-box: what a WhatsApp failure reported later, in a status callback,
leaves where an operator looks, and what WhatsApp's 131050 does.

Kim's order sends three WhatsApp messages: marketing, marketing that may
fall back to email, and the order's confirmation. The Cloud API accepts
them, then reports the first failed with 131050 (she stopped the shop's
marketing in WhatsApp), the confirmation failed with 132001 (no such
approved template), the second delivered. The messages view (and
`consonance journeys messages`) shows each failure's code and text in
`delivery_detail`: it used to show only `delivery: "failed"`, the reason
only in the message.status event. A status's detail is kept to 300 bytes,
cut between two characters.

And 131050 is her refusal of WhatsApp marketing: her next order's WhatsApp
marketing is skipped (`no_consent`) or goes by email, the next channel of
its send, while its confirmation still goes by WhatsApp; it used to be
sent by WhatsApp again, for WhatsApp to refuse. A consent the shop stated
before the stop, arriving late, does not undo it; one stated after it (she
said yes again) does. Lea's marketing message, waiting for a retry when
her 131050 comes, is not sent by the retry (`consent_withdrawn_before_send`).

The Cloud API may also refuse the send itself with 131050 (Mia): that is
her refusal too, recorded at the answer's time, so her next order's
WhatsApp marketing is skipped or goes by email while its confirmation
still goes by WhatsApp; it used to fail the message and nothing else, and
every later marketing WhatsApp was tried and refused the same way.

Meta's `user_preferences` webhook says the same of a number: a `stop` of
marketing_messages for Noa's number is the refusal of both customers who
have it (her account and her guest checkout), at the item's time, once
however often Meta sends it; her next order's WhatsApp marketing is
skipped or goes by email. A `resume` grants nothing; a number no customer
has is counted as unknown; a consent the shop states later wins. It used
to be ignored: her marketing went on by WhatsApp.
Email points at a port where nothing listens: email stays queued."""
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
LEA = "4915100000302"
MIA = "4915100000303"
NOA = "4915100000304"
refused = []  # the marketing sends to Mia the fake refused with 131050
released = threading.Event()


class CloudApi(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with lock:
            seen.append(body)
            n = len(seen)
        # Lea's marketing message waits for a retry until her 131050 is in
        if (body.get("to") == LEA and not released.is_set() and
                self.headers.get("Idempotency-Key", "").startswith("promo_wa:")):
            return csbb.reply_json(self, 503, {"error": {"message": "busy", "code": 131000}})
        # Mia stopped the shop's marketing: the Cloud API refuses its sends
        if body.get("to") == MIA and self.headers.get("Idempotency-Key", "").startswith("promo_"):
            with lock:
                refused.append(body)
            return csbb.reply_json(self, 400, {"error": {
                "message": "(#131050) Unable to deliver the message", "type": "OAuthException",
                "code": 131050, "error_data": {"messaging_product": "whatsapp",
                                               "details": STOP_TITLE}}})
        return csbb.wa_accepted(self, body.get("to"), "wamid.F%04d" % n)


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
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_CONTACT_BUDGET": "20",
})
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
minute = dt.timedelta(minutes=1)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def messages(order_id, cid="kim"):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cid)
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


def consents(cid="kim"):
    st, _, cu = d.request("GET", "/v1/customers/" + cid)
    return (cu.get("contact") or {}).get("whatsapp", {}).get("consents")


def upsert(eid, at, data):
    return {"event_id": eid, "type": "customer.upserted", "occurred_at": iso(at), "data": data}


def order(n, at, cid="kim"):
    oid = "o%d" % n if cid == "kim" else "o-" + cid
    return csbb.order_event(oid, oid, customer=cid, at=iso(at))


def wa_customer(cid, phone, at):
    return upsert("c1-" + cid, at,
                  {"id": cid, "email": cid + "@example.de", "phone": phone, "locale": "de",
                   "consents": {"email": {"transactional": True, "marketing": True},
                                "whatsapp": {"transactional": True, "marketing": True}}})


STOP = ("131050 the customer stopped the shop's marketing messages in WhatsApp: WhatsApp "
        "marketing consent withdrawn")
STOP_TITLE = ("Unable to deliver the message. This recipient has chosen to stop receiving "
              "marketing messages on WhatsApp from your business.")
try:
    d.start()
    st, _, body = d.post_events([wa_customer("kim", "+4915100000301", now - 10 * minute),
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
         "errors": [{"code": 131050, "title": STOP_TITLE}]},
        {"id": ref.get("confirm_wa"), "status": "failed", "timestamp": stamp,
         "errors": [{"code": 132001, "title": "Template name does not exist in the translation"}]},
        {"id": ref.get("promo_list"), "status": "delivered", "timestamp": stamp}], APP_SECRET)
    t.eq((st, body.get("recorded")), (200, 3), "the three statuses are recorded")

    # ---- the messages view says why each failed ----
    got = messages("o1")
    t.eq({j: (m.get("delivery"), m.get("delivery_detail")) for j, m in got.items()},
         {"promo_wa": ("failed", STOP),
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

    # ---- 131050 is her refusal of WhatsApp marketing ----
    t.eq(consents(), {"transactional": True, "marketing": False},
         "her WhatsApp marketing consent is withdrawn, not the transactional one")
    st, _, cu = d.request("GET", "/v1/customers/kim")
    wa = (cu.get("contact") or {}).get("whatsapp", {})
    t.eq((wa.get("bounced"), wa.get("unsubscribed")), (False, False),
         "the number did not bounce, nothing else stops")
    # a consent the shop stated before the stop, arriving after it, does not undo it
    st, _, _ = d.post_events([
        upsert("c2", now - 3 * minute, {"id": "kim", "consents": {"whatsapp": {"marketing": True}}}),
        order(2, now)])
    t.eq(st, 200, "a late consent and the next order accepted")
    got = t.wait_for(lambda: decided("o2"), "the second order's three messages", timeout=30)
    t.eq(summary(got or {}), {"promo_wa": ("whatsapp", "skipped", "no_consent"),
                              "promo_list": ("email", "queued", None),
                              "confirm_wa": ("whatsapp", "sent", None)},
         "WhatsApp marketing is skipped or goes by email; the confirmation goes by WhatsApp")
    t.eq(consents(), {"transactional": True, "marketing": False},
         "an older consent arriving late does not undo the stop")
    # she says yes again, later: the shop's consent wins
    st, _, _ = d.post_events([
        upsert("c3", now + minute, {"id": "kim", "consents": {"whatsapp": {"marketing": True}}}),
        order(3, now + minute)])
    got = t.wait_for(lambda: decided("o3"), "the third order's three messages", timeout=30)
    t.eq(summary(got or {}), {"promo_wa": ("whatsapp", "sent", None),
                              "promo_list": ("whatsapp", "sent", None),
                              "confirm_wa": ("whatsapp", "sent", None)},
         "a consent granted after the stop opens WhatsApp marketing again")

    # ---- 131050 in the answer to the send is her refusal too ----
    st, _, _ = d.post_events([wa_customer("mia", "+" + MIA, now - 10 * minute),
                              order(5, now - 5 * minute, cid="mia")])
    t.eq(st, 200, "mia and her order accepted")
    got = t.wait_for(lambda: (lambda ms: ms if len(ms) == 3 and all(
        m["status"] not in ("queued", "sending") or m["channel"] == "email"
        for m in ms.values()) else None)(messages("o-mia", "mia")),
        "mia's first order's messages", timeout=30)
    with lock:
        n_refused = len(refused)
    failed = sorted((j, m.get("reason"), m.get("delivery"), m.get("delivery_detail"))
                    for j, m in (got or {}).items() if m["status"] == "failed")
    t.eq((n_refused, len(failed), failed[0][1:] if failed else None), (1, 1, (STOP, "failed", STOP)),
         "the one marketing WhatsApp the Cloud API refused fails with 131050, as the callback's")
    t.eq((got or {}).get("confirm_wa", {}).get("status"), "sent", "her confirmation is sent")
    t.eq(consents("mia"), {"transactional": True, "marketing": False},
         "her WhatsApp marketing consent is withdrawn by the refusal, not the transactional one")
    # a consent the shop stated before the refusal, arriving after it, does not undo it
    st, _, _ = d.post_events([
        upsert("c2-mia", now - 3 * minute, {"id": "mia",
                                            "consents": {"whatsapp": {"marketing": True}}}),
        csbb.order_event("o-mia-2", "o-mia-2", customer="mia", at=iso(now))])
    t.eq(st, 200, "a late consent and mia's next order accepted")
    got = t.wait_for(lambda: (lambda ms: ms if len(ms) == 3 and all(
        m["status"] not in ("queued", "sending") or m["channel"] == "email"
        for m in ms.values()) else None)(messages("o-mia-2", "mia")),
        "mia's second order's messages", timeout=30)
    t.eq(summary(got or {}), {"promo_wa": ("whatsapp", "skipped", "no_consent"),
                              "promo_list": ("email", "queued", None),
                              "confirm_wa": ("whatsapp", "sent", None)},
         "after the refusal her WhatsApp marketing is skipped or goes by email; the "
         "confirmation goes by WhatsApp")
    with lock:
        t.eq(len(refused), 1, "no marketing WhatsApp is tried again for the Cloud API to refuse")

    # ---- Meta's user_preferences: a stop for a number ----
    st, _, _ = d.post_events([wa_customer("noa", "+" + NOA, now - 10 * minute),
                              wa_customer("noa-guest", "+" + NOA, now - 10 * minute)])
    t.eq(st, 200, "noa's account and guest checkout accepted")

    def prefs(items):
        return csbb.meta_post(d, [], APP_SECRET, field="user_preferences",
                              value={"messaging_product": "whatsapp", "user_preferences": items})

    def pref(wa_id, value, at, **kw):
        item = {"wa_id": wa_id, "detail": "User requested to %s marketing messages" % value,
                "category": "marketing_messages", "value": value,
                "timestamp": int(at.timestamp())}
        item.update(kw)
        return item

    def noa_events():
        st, _, body = d.request("GET", "/v1/events?type=customer.upserted&customer_id=noa")
        return [e["event_id"] for e in body.get("events", [])] if st == 200 else st

    before = noa_events()
    stop = [pref(NOA, "stop", now - 2 * minute),
            pref("4915100000399", "stop", now - 2 * minute),  # no customer has it
            {"detail": "no number", "category": "marketing_messages", "value": "stop",
             "timestamp": int(now.timestamp())},  # bad: not recorded, not counted
            pref(NOA, "stop", now - 2 * minute, category="other")]
    st, _, body = prefs(stop)
    t.eq((st, body.get("recorded"), body.get("unknown")), (200, 2, 1),
         "a stop recorded for both customers of the number; an unknown number counted: %r"
         % (body,))
    t.eq((consents("noa"), consents("noa-guest")),
         ({"transactional": True, "marketing": False},) * 2,
         "both customers' WhatsApp marketing consent is withdrawn, not the transactional one")
    after = noa_events()
    t.eq(len(after) if isinstance(after, list) else after,
         len(before) + 1 if isinstance(before, list) else before,
         "one customer.upserted for her stop: %r" % (after,))
    st, _, body = prefs(stop)
    t.eq((st, body.get("recorded"), body.get("unknown")), (200, 2, 1),
         "the webhook sent again is answered alike")
    t.eq(noa_events(), after, "... and records nothing again")
    t.eq(consents("noa"), {"transactional": True, "marketing": False}, "... nor changes her consent")
    # a resume is no consent the shop holds
    st, _, body = prefs([pref(NOA, "resume", now - minute)])
    t.eq((st, body.get("recorded"), body.get("unknown")), (200, 0, 0), "a resume records nothing")
    t.eq((consents("noa"), noa_events()), ({"transactional": True, "marketing": False}, after),
         "... and grants no consent")
    # a consent the shop stated before the stop, arriving after it, does not undo it
    st, _, _ = d.post_events([
        upsert("c2-noa", now - 3 * minute, {"id": "noa",
                                            "consents": {"whatsapp": {"marketing": True}}}),
        csbb.order_event("o-noa", "o-noa", customer="noa", at=iso(now))])
    t.eq(st, 200, "a late consent and noa's order accepted")
    got = t.wait_for(lambda: (lambda ms: ms if len(ms) == 3 and all(
        m["status"] not in ("queued", "sending") or m["channel"] == "email"
        for m in ms.values()) else None)(messages("o-noa", "noa")),
        "noa's order's messages", timeout=30)
    t.eq(summary(got or {}), {"promo_wa": ("whatsapp", "skipped", "no_consent"),
                              "promo_list": ("email", "queued", None),
                              "confirm_wa": ("whatsapp", "sent", None)},
         "after her stop her WhatsApp marketing is skipped or goes by email; the confirmation "
         "goes by WhatsApp")
    # a stop whose time is no time is taken at its arrival, as a status's
    st, _, body = prefs([pref(MIA, "stop", now, timestamp="soon")])
    t.eq((st, body.get("recorded")), (200, 1), "a stop without a usable time recorded")
    st, _, page = d.request("GET", "/v1/events?type=customer.upserted&customer_id=mia")
    got = [e for e in page.get("events", []) if e["event"].get("source") ==
           "whatsapp-user-preferences"] if st == 200 else []
    t.eq(len(got), 1, "as mia's customer.upserted from WhatsApp: %r" % (got,))
    t.check(bool(got) and dt.datetime.fromisoformat(
        got[0]["occurred_at"].replace("Z", "+00:00")) >= now,
            "... at its arrival: %r" % ([e["occurred_at"] for e in got],))
    # she says yes again to the shop, later: the shop's consent wins
    st, _, _ = d.post_events([upsert("c3-noa", now + minute, {
        "id": "noa", "consents": {"whatsapp": {"marketing": True}}})])
    t.eq((st, consents("noa")), (200, {"transactional": True, "marketing": True}),
         "a consent the shop states after the stop wins")

    # ---- a marketing message waiting for its retry is not sent after it ----
    st, _, _ = d.post_events([wa_customer("lea", "+" + LEA, now - 10 * minute),
                              order(9, now - 5 * minute, cid="lea")])
    got = t.wait_for(lambda: (lambda ms: ms if len(ms) == 3 and ms["promo_wa"]["attempts"] >= 1 and
                              ms["promo_list"]["status"] == "sent" else None)(
                                  messages("o-lea", "lea")), "lea's messages", timeout=30)
    wamid = (got or {}).get("promo_list", {}).get("provider_ref", "")
    st, _, body = csbb.meta_post(d, [{"id": wamid, "status": "failed", "timestamp": stamp,
                                      "errors": [{"code": 131050, "title": STOP_TITLE}]}],
                                 APP_SECRET)
    t.eq((st, body.get("recorded")), (200, 1), "lea's 131050 recorded")
    # the fake stays busy for it: a hand-over begun before the stop was
    # recorded, reaching it after, is answered busy as the ones before, and
    # the next retry begins after the stop (a retry that did not look at her
    # consent again would go on failing busy, and fail for good)
    got = t.wait_for(lambda: (lambda m: m if m.get("status") in ("sent", "skipped", "failed")
                              else None)(messages("o-lea", "lea").get("promo_wa", {})),
                     "lea's marketing message decided", timeout=60)
    released.set()
    t.eq(((got or {}).get("channel"), (got or {}).get("status"), (got or {}).get("reason")),
         ("whatsapp", "skipped", "consent_withdrawn_before_send"),
         "the retry does not send marketing she stopped")
    d.stop()

    # ---- the command line lists the same ----
    env = dict(os.environ)
    env.pop("CONSONANCE_STORE", None)
    proc = subprocess.run([a.bin, "journeys", "--store", d.store, "messages", "kim"],
                          capture_output=True, text=True, timeout=60, env=env)
    listed = json.loads(proc.stdout) if proc.returncode == 0 else []
    t.eq(sorted((m.get("journey"), m.get("delivery_detail")) for m in listed
                if m.get("order_id") == "o1"),
         [("confirm_wa", "\u00fc" * 150), ("promo_list", None), ("promo_wa", STOP)],
         "consonance journeys messages shows the detail: %r" % proc.stderr[-300:])
finally:
    d.cleanup()
    srv.shutdown()
    shutil.rmtree(work, ignore_errors=True)
t.done()
