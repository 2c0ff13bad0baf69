"""Black-box: an SMTP server that refuses our own set-up -- it wants AUTH
that is not configured (530), or it will not send for our sender address
(553 at MAIL FROM) -- has not refused the message: the message is retried,
its reason says the configuration is at fault, and once the operator fixes
the setting and restarts, it goes out. A message refused for its size
at MAIL FROM (552) and a refused recipient (tests/blackbox/test_email.py)
stay permanent failures."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

sink = csbb.SmtpSink()
if not sink.py:
    print("SKIP: aiosmtpd is not installed (scripts/install-deps.sh installs python3-aiosmtpd)")
    sys.exit(csbb.SKIP)

tmp = tempfile.mkdtemp(prefix="cs-smtpconf-")
jdir = os.path.join(tmp, "journeys")
os.makedirs(jdir)
shutil.copy(os.path.join(root, "etc", "journeys", "10-order-confirmation.yaml"), jdir)
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def base_env():
    env = sink.env()
    env.update({
        "CONSONANCE_JOURNEYS": jdir,
        "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
        "CONSONANCE_SMTP_FROM": "Waldkauz <service@waldkauz.example>",
        "CONSONANCE_SHOP_NAME": "Waldkauz",
        "CONSONANCE_RETRY_BASE": "1s",
        "CONSONANCE_QUIET_HOURS": "off",
    })
    return env


def messages(d, cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    return body.get("messages", []) if st == 200 else []


def order_for(cid, mail):
    return [{"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": now,
             "data": {"id": cid, "name": "Anna Test", "email": mail, "locale": "de",
                      "consents": {"email": {"transactional": True}}}},
            csbb.order_event("o-" + cid, "o" + cid, customer=cid, at=now)]


daemons = []
try:
    sink.start()
    # no smtp_user, and the server requires AUTH: 530 at MAIL FROM
    noauth = base_env()
    del noauth["CONSONANCE_SMTP_USER"]
    del noauth["CONSONANCE_SMTP_PASSWORD"]
    # a sender address the server will not send for: 553 at MAIL FROM
    badfrom = base_env()
    badfrom["CONSONANCE_SMTP_FROM"] = "Waldkauz <reject-me@waldkauz.example>"
    # a message refused for its size at MAIL FROM: that message's own fault
    big = base_env()
    big["CONSONANCE_SMTP_FROM"] = "Waldkauz <big@waldkauz.example>"
    # a server that does not relay for us (its AUTH not configured): 554 at
    # RCPT for every outside recipient, our setup's fault, not the address's
    relay = base_env()
    cases = [("noauth", noauth, "530"), ("badfrom", badfrom, "553"), ("relay", relay, "554")]
    for cid, env, code in cases + [("big", big, "552")]:
        d = csbb.Daemon(a.bin, extra_env=env)
        daemons.append(d)
        d.start()
        d.post_events(order_for(cid, cid + "@example.de"))
    for (cid, env, code), d in zip(cases, daemons):
        got = t.wait_for(lambda: [m for m in messages(d, cid) if m["attempts"] >= 2 or
                                  m["status"] == "failed"], "%s: a second attempt" % cid)
        if got:
            m = got[0]
            print("%s: %s" % (cid, m["reason"]))
            t.check(m["status"] in ("queued", "sending"),
                    "%s: a refusal of our own setup is retried, not failed: %r" % (cid, m))
            t.check(code in (m["reason"] or "") and "configuration" in (m["reason"] or ""),
                    "%s: the reason names the server's reply and the configuration: %r"
                    % (cid, m["reason"]))
    got = t.wait_for(lambda: [m for m in messages(daemons[3], "big") if m["status"] != "queued" and
                              m["status"] != "sending"], "the oversized message settled")
    if got:
        t.check(got[0]["status"] == "failed" and got[0]["attempts"] == 1 and
                "552" in (got[0]["reason"] or ""),
                "a 552 at MAIL FROM (the message's size) fails at once: %r" % got[0])
    t.eq(sink.mails(), [], "nothing was accepted while the setup was wrong")

    # the operator fixes the sender address and restarts: the message goes out
    d = daemons[1]
    d.stop()
    fixed = csbb.Daemon(a.bin, workdir=d.dir, extra_env=base_env())
    daemons.append(fixed)
    fixed.start()
    got = t.wait_for(lambda: [e for _, e in sink.mails() if e["to"] == ["badfrom@example.de"]],
                     "the held message sent after the fix")
    if got:
        t.eq(got[0]["from"], "service@waldkauz.example", "sent from the fixed sender")
    t.wait_for(lambda: [m for m in messages(fixed, "badfrom") if m["status"] == "sent"],
               "the outbox says sent")
finally:
    for d in reversed(daemons):
        d.cleanup()
    sink.stop()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
