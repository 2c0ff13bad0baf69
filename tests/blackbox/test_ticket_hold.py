"""Black-box: the contact policy's "ticket open" hold through the real daemon.

A ticket left open without an update for ticket_stale_after (a helpdesk
that never sends the closing ticket.updated) holds nothing: the customer's
marketing is queued. A ticket updated within that time still holds it.
Set here to 10d, so the daemon must take the setting (the default is 30d,
which would hold both). The runs view says why a send waits: the ticket,
or quiet hours (a third customer's, set around the time the test runs in
her zone; the other two live half a world away)."""
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

tmp = tempfile.mkdtemp(prefix="cs-tickethold-")
jdir = os.path.join(tmp, "journeys")
os.makedirs(jdir)
with open(os.path.join(jdir, "promo.yaml"), "w") as f:
    f.write("journey: promo\n"
            "trigger: {event: order.placed}\n"
            "steps:\n"
            "  - send: {channel: email, template: cross_sell, class: marketing}\n")
# email on, towards a port where nothing listens: messages stay queued
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:9",
    "CONSONANCE_SMTP_FROM": "shop@example.de",
    "CONSONANCE_RETRY_BASE": "1d",
    # quiet hours around now in UTC: from the hour before to two after
    "CONSONANCE_QUIET_HOURS": "%02d:00-%02d:00" % ((dt.datetime.now(dt.timezone.utc).hour - 1) % 24,
                                                   (dt.datetime.now(dt.timezone.utc).hour + 2) % 24),
    "CONSONANCE_TICKET_STALE_AFTER": "10d",
})
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def customer(cid, tz="Pacific/Auckland"):
    return {"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": iso(now),
            "data": {"id": cid, "email": cid + "@example.de", "locale": "de", "timezone": tz,
                     "consents": {"email": {"transactional": True, "marketing": True}}}}


def ticket(cid, at):
    return {"event_id": "t-" + cid, "type": "ticket.created", "occurred_at": iso(at),
            "data": {"id": "t-" + cid, "customer_id": cid, "subject": "Frage"}}


def messages(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    t.eq(st, 200, "GET messages of " + cust)
    return [(m["template"], "queued" if m["status"] == "sending" else m["status"])
            for m in body.get("messages", [])]


try:
    d.start()
    # both orders in one batch: one journey pass decides both messages
    st, _, _ = d.post_events([
        customer("olga"), ticket("olga", now - dt.timedelta(days=20)),
        customer("fritz"), ticket("fritz", now - dt.timedelta(days=2)),
        csbb.order_event("o-fritz", "o-fritz", customer="fritz", at=iso(now)),
        csbb.order_event("o-olga", "o-olga", customer="olga", at=iso(now)),
        customer("nina", "UTC"),
        csbb.order_event("o-nina", "o-nina", customer="nina", at=iso(now)),
    ])
    t.eq(st, 200, "events accepted")
    got = t.wait_for(lambda: messages("olga"), "olga's marketing", timeout=30, step=0.05)
    t.eq(got, [("cross_sell", "queued")],
         "a ticket open for 20 days without an update holds nothing (ticket_stale_after 10d)")
    t.eq(messages("fritz"), [], "a ticket opened 2 days ago holds the marketing")
    st, _, body = d.request("GET", "/v1/customers/fritz/journeys")
    t.eq([(r["journey"], r["status"]) for r in body.get("journeys", [])] if st == 200 else st,
         [("promo", "active")], "fritz's run waits (held), not ended")
    run = (body.get("journeys") or [{}])[0] if st == 200 else {}
    # the hold shows: since when, and when it is looked at again
    held = run.get("held_since")
    wakes = run.get("wakes_at")
    t.check(isinstance(held, str) and isinstance(wakes, str) and wakes > held,
            "the held run shows held_since and a later wakes_at: %r, %r" % (held, wakes))
    t.eq(run.get("held_for"), "ticket_open", "and why: the open ticket")
    st, _, body = d.request("GET", "/v1/customers/olga/journeys")
    t.eq([(r["journey"], r["status"], r["held_since"], r["held_for"], r["wakes_at"])
          for r in body.get("journeys", [])] if st == 200 else st,
         [("promo", "done", None, None, None)], "olga's run sent and done: no hold, no wake")
    # quiet hours: no hold (held_since), but the reason the send waits
    st, _, body = d.request("GET", "/v1/customers/nina/journeys")
    t.eq([(r["journey"], r["status"], r["held_since"], r["held_for"])
          for r in body.get("journeys", [])] if st == 200 else st,
         [("promo", "active", None, "quiet_hours")], "nina's send waits for quiet hours to end")
    t.eq(messages("nina"), [], "nothing queued for nina in her quiet hours")
finally:
    d.stop()
    d.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
