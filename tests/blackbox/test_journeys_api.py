"""Black-box: the daemon with the shipped playbook. Events start journeys on
the writer after their commit; the messages (queued, or skipped with the
policy's reason) and runs are visible per customer; journeys are listed and
switched by an admin key; a restart keeps everything; a broken journey file
stops the start with file, line and field."""
import calendar
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
playbook = os.path.join(root, "etc", "journeys")
# email on, towards a port where nothing listens: messages are queued and
# their sending is retried much later
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": playbook,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:9",
    "CONSONANCE_SMTP_FROM": "shop@example.de",
    "CONSONANCE_RETRY_BASE": "1d",
    "CONSONANCE_ADDRESS_WAIT": "0s",  # no wait for an address: ben's skip is seen at once
})



def messages(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    t.eq(st, 200, "GET messages")
    return [(m["template"], "queued" if m["status"] == "sending" else m["status"],
             m.get("reason") if m["status"] == "skipped" else None)
            for m in reversed(body["messages"])]


def runs(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/journeys" % cust)
    t.eq(st, 200, "GET journeys of a customer")
    return sorted((r["journey"], r["status"]) for r in body["journeys"])


try:
    d.start()
    st, _, body = d.request("GET", "/v1/journeys")
    t.eq(st, 200, "GET /v1/journeys")
    ids = [j["id"] for j in body["journeys"]]
    t.eq(len(ids), 13, "the shipped playbook has 13 journeys")
    t.check("review_request" in ids and "order_confirmation" in ids, "playbook journeys listed")
    t.check(all(j["enabled"] for j in body["journeys"]), "all on by default")

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cust = {"event_id": "c-anna", "type": "customer.upserted", "occurred_at": now,
            "data": {"id": "anna", "email": "anna@example.de", "locale": "de",
                     "timezone": "UTC",
                     "consents": {"email": {"transactional": True, "marketing": True}}}}
    order = csbb.order_event("o-1", "o1", customer="anna", at=now, price="20.00")
    st, _, _ = d.post_events([cust, order])
    t.eq(st, 200, "events accepted")
    got = t.wait_for(lambda: [m for m in messages("anna") if m[0] == "order_confirmation_first"],
                     "the order confirmation", timeout=30, step=0.05)
    t.eq(got, [("order_confirmation_first", "queued", None)], "first purchase confirmation queued")
    r = runs("anna")
    t.check(("review_request", "active") in r and ("order_confirmation", "done") in r,
            "runs visible: %r" % (r,))
    # a run in a wait says when it wakes (win-back: 120 days after the order)
    st, _, body = d.request("GET", "/v1/customers/anna/journeys")
    byj = {x["journey"]: x for x in body["journeys"]}
    wb = byj.get("win_back", {})
    t.eq((wb.get("status"), wb.get("waiting_for"), wb.get("held_since"), wb.get("held_for", "-")),
         ("active", None, None, None), "win-back waits, for no event, nothing held")
    wakes = wb.get("wakes_at")
    t.check(isinstance(wakes, str), "win-back's wakes_at is a time: %r" % (wakes,))
    if isinstance(wakes, str):
        due = calendar.timegm(time.strptime(wakes[:19], "%Y-%m-%dT%H:%M:%S"))
        t.eq(round((due - calendar.timegm(time.strptime(now, "%Y-%m-%dT%H:%M:%SZ"))) / 86400),
             120, "win-back wakes 120 days after the order")
    oc = byj.get("order_confirmation", {})
    t.eq((oc.get("status"), oc.get("wakes_at"), oc.get("held_since")), ("done", None, None),
         "a run that is over wakes at no time")

    # a second customer without an address gets a skipped message with the reason
    order2 = csbb.order_event("o-2", "o2", customer="ben", at=now)
    d.post_events([order2])
    got = t.wait_for(lambda: messages("ben"), "ben's message", timeout=30, step=0.05)
    t.eq(got, [("order_confirmation_first", "skipped", "no_address")], "skipped with reason")

    # switching: read keys may not, admin keys may
    out = __import__("subprocess").run(
        [a.bin, "apikey", "create", "--store", d.store, "--name", "reader", "--scopes", "read"],
        capture_output=True, text=True)
    reader = [w for w in out.stdout.split() if w.startswith("cs_live_")][0]
    st, _, body = d.request("POST", "/v1/journeys/order_confirmation/disable", key=reader)
    t.eq(st, 403, "a read key cannot switch journeys")
    t.eq(body["error"]["message"], "this API key lacks the admin scope",
         "the refusal names the scope the route needs")
    st, _, body = d.request("POST", "/v1/journeys/nope/disable")
    t.eq(st, 404, "unknown journey")
    # named as the other 404s of an id are, with where the loaded ones are listed
    t.eq((body["error"].get("field"), body["error"]["message"]),
         ("id", 'id: no journey "nope" is loaded (GET /v1/journeys lists them)'),
         "the unknown journey's 404 names id")
    st, _, body = d.request("GET", "/v1/journeys/order_confirmation/disable")
    t.eq(st, 405, "GET on a switch")
    st, _, body = d.request("POST", "/v1/journeys/order_confirmation/disable")
    t.eq((st, body.get("enabled")), (200, False), "switched off")
    order3 = csbb.order_event("o-3", "o3", customer="anna", at=now)
    d.post_events([order3])
    t.wait_for(lambda: ("win_back", "exited") in runs("anna"), "ordered_again ends win-back",
               timeout=30, step=0.05)
    t.check(not [m for m in messages("anna") if m[0] == "order_confirmation"],
            "no confirmation while switched off")
    st, _, body = d.request("GET", "/v1/journeys")
    t.eq([j["enabled"] for j in body["journeys"] if j["id"] == "order_confirmation"], [False],
         "the list shows the switch")

    # a restart keeps runs, messages and switches
    d.stop()
    d.start()
    t.eq(messages("anna")[0], ("order_confirmation_first", "queued", None), "messages kept")
    st, _, body = d.request("GET", "/v1/journeys")
    t.eq([j["enabled"] for j in body["journeys"] if j["id"] == "order_confirmation"], [False],
         "switch kept over a restart")
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % ("x" * 300))
    t.eq(st, 400, "an over-long customer id")
    d.stop()

    # a broken journey file stops the start and names file, line and field
    bad_dir = os.path.join(d.dir, "bad-journeys")
    os.makedirs(bad_dir)
    with open(os.path.join(bad_dir, "x.yaml"), "w") as f:
        f.write("journey: x\ntrigger: {event: order.placed}\nsteps:\n  - wait: soon\n")
    proc = __import__("subprocess").run(
        [a.bin, "serve"], capture_output=True, text=True, timeout=30,
        env=dict(os.environ, CONSONANCE_STORE=d.store, CONSONANCE_PORT="0",
                 CONSONANCE_JOURNEYS=bad_dir))
    t.check(proc.returncode != 0, "serve refuses a broken journey")
    t.check("x.yaml:4: steps[0].wait: expected a duration" in proc.stderr,
            "error names file, line and field: %r" % proc.stderr[-300:])

    # `journeys check` makes serve's checks: a webhook journey needs the secret
    hook_dir = os.path.join(d.dir, "hook-journeys")
    os.makedirs(hook_dir)
    with open(os.path.join(hook_dir, "vip.yaml"), "w") as f:
        f.write("journey: vip\ntrigger: {event: order.placed}\nsteps:\n"
                "  - webhook: {url: \"https://crm.example/h\", event: vip}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSONANCE_")}
    proc = __import__("subprocess").run(
        [a.bin, "journeys", "check", hook_dir], capture_output=True, text=True, timeout=30,
        env=env)
    t.check(proc.returncode != 0 and "vip.yaml: a webhook step signs its requests: set "
            "webhook_secret" in proc.stderr,
            "check refuses a webhook journey without webhook_secret: %r" % proc.stderr[-300:])
    proc = __import__("subprocess").run(
        [a.bin, "journeys", "check", hook_dir], capture_output=True, text=True, timeout=30,
        env=dict(env, CONSONANCE_WEBHOOK_SECRET="a-secret-of-some-length"))
    t.check(proc.returncode == 0 and "1 journeys ok" in proc.stdout,
            "check passes it with the secret: %r" % (proc.stdout + proc.stderr)[-300:])

    # with a templates folder configured, it renders the templates the
    # journeys send, as serve does at start-up: a missing one is named
    with open(os.path.join(hook_dir, "thanks.yaml"), "w") as f:
        f.write("journey: thanks\ntrigger: {event: order.placed}\nsteps:\n"
                "  - send: {channel: [sms, email], template: thanks, class: transactional}\n")
    tpl_dir = os.path.join(d.dir, "templates")
    os.makedirs(tpl_dir)
    for lang in ("de", "en"):
        for part, text in (("subject", "Danke {{customer.first_name}}"),
                           ("txt", "Bestellung {{order.id}}: {{order.total}}")):
            with open(os.path.join(tpl_dir, "thanks.%s.%s" % (lang, part)), "w") as f:
                f.write(text)
    tenv = dict(env, CONSONANCE_WEBHOOK_SECRET="a-secret-of-some-length",
                CONSONANCE_TEMPLATES=tpl_dir)
    proc = __import__("subprocess").run(
        [a.bin, "journeys", "check", hook_dir], capture_output=True, text=True, timeout=30,
        env=tenv)
    t.check(proc.returncode == 0 and "templates ok" in proc.stdout,
            "check renders the journeys' templates: %r" % (proc.stdout + proc.stderr)[-300:])
    with open(os.path.join(tpl_dir, "thanks.en.txt"), "w") as f:
        f.write("Order {{order.idd}}")
    proc = __import__("subprocess").run(
        [a.bin, "journeys", "check", hook_dir], capture_output=True, text=True, timeout=30,
        env=tenv)
    t.check(proc.returncode != 0 and "thanks.yaml" in proc.stderr and "thanks.en.txt" in proc.stderr,
            "check names a template that does not render: %r" % proc.stderr[-300:])
    os.remove(os.path.join(tpl_dir, "thanks.en.txt"))
    proc = __import__("subprocess").run(
        [a.bin, "journeys", "check", hook_dir], capture_output=True, text=True, timeout=30,
        env=tenv)
    t.check(proc.returncode != 0 and "thanks.en.txt is missing" in proc.stderr,
            "check names a missing template: %r" % proc.stderr[-300:])
finally:
    d.cleanup()
t.done()
