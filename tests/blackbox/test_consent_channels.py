"""Black-box: an unsubscribe starts over per channel, through the real daemon.

Kim unsubscribes (the one-click link in a marketing email), then ticks
"SMS offers" at checkout: a consent granted on SMS. Her next order's
marketing goes by SMS, but not by email: the email unsubscribe holds until
an email consent is granted anew or her email address changes (it used to
be lifted by a consent granted on any channel, and she got marketing email
again). A send that lists both (`channel: [email, sms]`) falls through to
SMS for her, as it would for a bounced email address (it used to be
skipped as `unsubscribed`). Lea, who did the same and then gave a new email
address, gets all three by their first channel; Max, who said no SMS
offers, gets none, and the list's message is skipped for its first
channel's reason. Email and SMS point at ports where nothing listens:
messages stay queued."""
import datetime as dt
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

tmp = tempfile.mkdtemp(prefix="cs-consentch-")
jdir = os.path.join(tmp, "journeys")
os.makedirs(jdir)
for name, ch, template in (("email", "email", "cross_sell"),
                           ("sms", "sms", "delivery_problem"),
                           ("list", "[email, sms]", "delivery_problem")):
    with open(os.path.join(jdir, "promo_%s.yaml" % name), "w") as f:
        f.write("journey: promo_%s\n"
                "trigger: {event: order.placed}\n"
                "steps:\n"
                "  - send: {channel: %s, template: %s, class: marketing}\n" % (name, ch, template))
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:9",
    "CONSONANCE_SMTP_FROM": "shop@example.de",
    "CONSONANCE_SMS_URL": "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json",
    "CONSONANCE_SMS_ACCOUNT": "AC123",
    "CONSONANCE_SMS_TOKEN": "sms-token-of-some-length",
    "CONSONANCE_SMS_FROM": "+4930123456",
    "CONSONANCE_RETRY_BASE": "1d",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_CONTACT_BUDGET": "10",
})
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def upsert(eid, at, data):
    return {"event_id": eid, "type": "customer.upserted", "occurred_at": iso(at), "data": data}


def unsubscribe(cid, at):
    return {"event_id": "u-" + cid, "type": "message.status", "occurred_at": iso(at),
            "data": {"message_id": "unsubscribe-link", "status": "unsubscribed",
                     "customer_id": cid}}


def messages(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    t.eq(st, 200, "GET messages of " + cust)
    return sorted((m["journey"], m["channel"],
                   "queued" if m["status"] == "sending" else m["status"],
                   m.get("reason")) for m in body.get("messages", []))


def all_decided(cust):
    got = messages(cust)
    return got if len(got) == 3 else None


try:
    d.start()
    hours = dt.timedelta(hours=1)
    events = []
    for cid in ("kim", "lea", "max"):
        events += [
            upsert("c1-" + cid, now - 3 * hours,
                   {"id": cid, "email": cid + "@example.de", "phone": "+4915100000001",
                    "locale": "de",
                    "consents": {"email": {"transactional": True, "marketing": True},
                                 "sms": {"transactional": True, "marketing": False}}}),
            unsubscribe(cid, now - 2 * hours),
        ]
    # both say yes to SMS offers; Lea also gives a new email address
    events += [
        upsert("c2-kim", now - hours, {"id": "kim", "consents": {"sms": {"marketing": True}}}),
        upsert("c2-lea", now - hours, {"id": "lea", "email": "lea.neu@example.de",
                                       "consents": {"sms": {"marketing": True}}}),
        csbb.order_event("o-kim", "o-kim", customer="kim", at=iso(now)),
        csbb.order_event("o-lea", "o-lea", customer="lea", at=iso(now)),
        csbb.order_event("o-max", "o-max", customer="max", at=iso(now)),
    ]
    st, _, body = d.post_events(events)
    t.eq(st, 200, "events accepted: %r" % (body,))
    got = t.wait_for(lambda: all_decided("kim"), "kim's three messages", timeout=30, step=0.05)
    t.eq(got, [("promo_email", "email", "skipped", "unsubscribed"),
               ("promo_list", "sms", "queued", None),
               ("promo_sms", "sms", "queued", None)],
         "an SMS consent granted after the unsubscribe opens SMS marketing, not email; "
         "a send listing [email, sms] falls through to SMS")
    got = t.wait_for(lambda: all_decided("lea"), "lea's three messages", timeout=30, step=0.05)
    t.eq(got, [("promo_email", "email", "queued", None),
               ("promo_list", "email", "queued", None),
               ("promo_sms", "sms", "queued", None)],
         "a new email address lifts the email unsubscribe")
    got = t.wait_for(lambda: all_decided("max"), "max's three messages", timeout=30, step=0.05)
    t.eq(got, [("promo_email", "email", "skipped", "unsubscribed"),
               ("promo_list", "email", "skipped", "unsubscribed"),
               ("promo_sms", "sms", "skipped", "no_consent")],
         "no channel of the list left: skipped with the first channel's reason")
finally:
    d.stop()
    d.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
