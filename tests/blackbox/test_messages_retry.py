"""Black-box: an operator's retry of failed messages after a provider
outage. An SMS provider answers 503 until it is back; with send_attempts 2
the notices give up (`gave up: ...`), as after an outage longer than the
retry schedule. POST /v1/messages/retry (admin) with a filter puts them back
in the queue: the one whose customer still agrees is sent, under the same
idempotency token; the one whose customer withdrew the SMS consent in the
meantime is skipped by the hand-over's checks, as a first hand-over would
be; a message the policy skipped is not requeued. A dry run counts and
changes nothing; bad filters get 422 naming the field; a read key gets 403.
`consonance messages retry` does the same from the command line."""
import atexit
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
lock = threading.Lock()
seen = []
state = {"down": True}


class Provider(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        form = urllib.parse.parse_qs(body.decode())
        with lock:
            seen.append({"to": form.get("To", [""])[0],
                         "key": self.headers.get("I-Twilio-Idempotency-Token", "")})
            n = len(seen)
            down = state["down"]
        if down:
            return self.reply(503, {"code": 20500, "message": "provider down"})
        return self.reply(201, {"sid": "SM%04d" % n, "status": "queued"})

    def reply(self, code, obj):
        csbb.reply_json(self, code, obj)


srv, base = csbb.serve(Provider)

work = tempfile.mkdtemp(prefix="cs-retry-")
atexit.register(shutil.rmtree, work, True)
jdir, tdir = os.path.join(work, "journeys"), os.path.join(work, "templates")
os.makedirs(jdir)
os.makedirs(tdir)
with open(os.path.join(jdir, "notice.yaml"), "w") as f:
    f.write("journey: notice\n"
            "trigger: {event: order.placed}\n"
            "steps:\n"
            "  - send: {channel: sms, template: notice, class: service}\n")
for lang, text in (("de", "Bestellung {{order.id}} ist da."), ("en", "Order {{order.id}} is in.")):
    for part, body in (("subject", "Notice"), ("txt", text)):
        with open(os.path.join(tdir, "notice.%s.%s" % (lang, part)), "w") as f:
            f.write(body)

d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": tdir,
    "CONSONANCE_SMS_URL": base + "/2010-04-01/Accounts/AC123/Messages.json",
    "CONSONANCE_SMS_ACCOUNT": "AC123",
    "CONSONANCE_SMS_TOKEN": "sms-token-0123456789",
    "CONSONANCE_SMS_FROM": "+4930123456",
    "CONSONANCE_SEND_ATTEMPTS": "2",
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
})


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def customer(cid, phone, sms_yes, at):
    consents = {"sms": {"transactional": sms_yes}} if sms_yes is not None else {}
    return {"event_id": "c-%s-%d" % (cid, int(at)), "type": "customer.upserted", "occurred_at": iso(at),
            "data": {"id": cid, "phone": phone, "locale": "de", "consents": consents}}


def message(cid):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cid)
    msgs = body.get("messages", []) if st == 200 else []
    return msgs[0] if msgs else {}


def retry(body, key=True, headers=None, path="/v1/messages/retry"):
    return d.request("POST", path, body=body, key=key, headers=headers)


def cli(*args):
    return subprocess.run([a.bin, "messages", "retry", "--store", d.store] + list(args),
                          capture_output=True, text=True)


try:
    d.start()
    start = time.time() - 60
    since = iso(start)
    now = time.time()
    st, _, body = d.post_events([
        customer("k-1", "+4915100000001", True, now),
        customer("k-2", "+4915100000002", True, now),
        customer("k-3", "+4915100000003", None, now),  # SMS consent not stated
        csbb.order_event("o-1", "1", customer="k-1", at=iso(now)),
        csbb.order_event("o-2", "2", customer="k-2", at=iso(now)),
        csbb.order_event("o-3", "3", customer="k-3", at=iso(now)),
    ])
    t.eq(st, 200, "events accepted: %r" % (body,))
    t.wait_for(lambda: message("k-1").get("status") == "failed" and
               message("k-2").get("status") == "failed", "both notices give up")
    m1 = message("k-1")
    t.check((m1.get("reason") or "").startswith("gave up: "), "gave up: %r" % m1.get("reason"))
    t.eq(m1.get("attempts"), 2, "after send_attempts")
    t.eq(message("k-3").get("status"), "skipped", "no SMS consent: skipped by the policy")
    skipped_reason = message("k-3").get("reason")

    # refusals: the key's scope, the filters, the form of the request
    st, _, out = d.request("POST", "/v1/messages/retry", body={"failed_since": since}, key=False)
    t.eq(st, 401, "no key: 401")
    rc = subprocess.run([a.bin, "apikey", "create", "--store", d.store, "--name", "reader",
                         "--scopes", "read,write"], capture_output=True, text=True)
    reader = ([w for w in rc.stdout.split() if w.startswith("cs_live_")] or [""])[0]
    st, _, out = retry({"failed_since": since}, key=reader)
    t.eq(st, 403, "a key without admin: 403 (%r)" % (out,))
    for filt, field in (({}, "failed_since"),
                        ({"failed_since": "yesterday"}, "failed_since"),
                        ({"failed_since": since, "failed_until": since}, "failed_until"),
                        ({"failed_since": since, "channel": "fax"}, "channel"),
                        ({"failed_since": since, "journey": 7}, "journey"),
                        ({"failed_since": since, "dry_run": "yes"}, "dry_run"),
                        ({"failed_since": since, "status": "skipped"}, "status")):
        st, _, out = retry(filt)
        t.eq((st, (out.get("error") or {}).get("field") if isinstance(out, dict) else out), (422, field),
             "%r refused naming the field" % (filt,))
    t.check("required" in (retry({})[2].get("error") or {}).get("message", ""),
            "a retry without failed_since says it is required")
    st, _, out = retry("[1", headers={"Content-Type": "application/json"})
    t.eq(st, 400, "malformed JSON: 400")
    st, _, out = retry(json.dumps({"failed_since": since}), headers={"Content-Type": "text/plain"})
    t.eq(st, 415, "not JSON: 415")
    st, _, out = retry({"failed_since": since}, path="/v1/messages/retry?dry_run=1")
    t.eq(st, 400, "a query parameter is refused, not ignored: %r" % (out,))
    st, _, out = d.request("GET", "/v1/messages/retry")
    t.eq(st, 405, "GET: 405")
    t.eq(message("k-1").get("status"), "failed", "nothing requeued by a refused request")

    # k-2 withdraws the SMS consent while the provider is down
    st, _, _ = d.post_events([customer("k-2", "+4915100000002", False, time.time() + 1)])
    t.eq(st, 200, "consent withdrawn")
    state["down"] = False

    # a dry run counts, from the command line too, and changes nothing
    st, _, out = retry({"failed_since": since, "dry_run": True})
    t.eq((st, out.get("matched"), out.get("requeued")), (200, 2, 0), "dry run: 2 would be requeued")
    # the answer's own filter sent back: its nulls state nothing, as in an event
    st, _, again = retry(dict(out.get("filter") or {}, dry_run=True))
    t.eq((st, again.get("matched")), (200, 2),
         "the answer's filter, nulls and all, sent back counts the same: %r" % (again,))
    st, _, again = retry({"failed_since": None})
    t.check(st == 422 and "required" in (again.get("error") or {}).get("message", ""),
            "a null failed_since is missing, and required: %r" % (again,))
    p = cli("--since", since, "--channel", "sms", "--dry-run")
    t.eq(p.returncode, 0, "CLI dry run: %s" % p.stderr)
    t.eq(json.loads(p.stdout or "{}").get("matched"), 2, "CLI dry run counts 2")
    p = cli("--channel", "sms")
    t.check(p.returncode == 2 and "--since" in p.stderr, "CLI without --since: %r" % p.stderr)
    p = cli("--since", since, "--channel", "fax")
    t.check(p.returncode == 2 and "--channel" in p.stderr, "CLI bad channel: %r" % p.stderr)
    # (a requeue is written before the answer: a dry run that requeued
    # would show here at once, queued or already sent again)
    t.eq(message("k-1").get("status"), "failed", "a dry run changes nothing")
    with lock:
        tries_before = len(seen)

    # the requeue
    st, _, out = retry({"failed_since": since, "reason_prefix": "gave up"})
    t.eq(st, 200, "requeue: %r" % (out,))
    t.eq((out.get("matched"), out.get("requeued"), out.get("dry_run")), (2, 2, False),
         "2 requeued")
    t.eq(out.get("ids"), sorted([message("k-1").get("id"), message("k-2").get("id")]),
         "their ids")
    t.wait_for(lambda: message("k-1").get("status") == "sent", "k-1's notice sent")
    t.wait_for(lambda: message("k-2").get("status") == "skipped", "k-2's notice skipped")
    t.eq(message("k-2").get("reason"), "consent_withdrawn_before_send",
         "the hand-over's checks hold for a requeued message")
    t.eq((message("k-3").get("status"), message("k-3").get("reason")), ("skipped", skipped_reason),
         "a skipped message is not requeued")
    with lock:
        k1 = [s for s in seen if s["to"] == "+4915100000001"]
        k2_after = [s for s in seen[tries_before:] if s["to"] == "+4915100000002"]
    t.eq(len(k1), 3, "k-1: two tries and the one after the requeue")
    t.eq(len({s["key"] for s in k1}), 1, "under one idempotency token")
    t.eq(k2_after, [], "nothing went to k-2")
    st, _, out = retry({"failed_since": since})
    t.eq((st, out.get("matched")), (200, 0), "a second retry finds nothing")

    st, _, metrics = d.request("GET", "/metrics")
    t.check("consonance_messages_requeued_total 2" in metrics, "the metric counts 2")
    t.check("messages retry: 2 failed messages requeued" in d.read_log(), "a log line says it")

    # from the command line: another outage, one customer's notice
    state["down"] = True
    since2 = iso(time.time() - 1)
    st, _, _ = d.post_events([csbb.order_event("o-4", "4", customer="k-1", at=iso(time.time()))])
    t.wait_for(lambda: message("k-1").get("status") == "failed", "the new notice gives up")
    state["down"] = False
    p = cli("--since", since2, "--customer", "k-1")
    t.eq(p.returncode, 0, "CLI retry: %s" % p.stderr)
    got = json.loads(p.stdout or "{}")
    t.eq((got.get("matched"), got.get("requeued")), (1, 1), "CLI requeued 1")
    t.wait_for(lambda: message("k-1").get("status") == "sent", "sent after the CLI's requeue")
finally:
    d.stop()
    d.cleanup()
    srv.shutdown()
t.done()
