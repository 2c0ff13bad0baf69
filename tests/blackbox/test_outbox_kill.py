"""Black-box: exactly once under SIGKILL. Orders stream in while the daemon is
killed with SIGKILL and restarted again and again; each order starts a
journey that sends a confirmation at once and a second message two seconds
later (a durable timer). Afterwards every order's two messages have arrived
at a real SMTP server (none lost), none was recorded or delivered twice
(the server, like mail providers, keeps one message per Message-ID; a crash
inside a hand-over can repeat only that hand-over, with the same
Message-ID, so repeats <= kills), and no timer is left behind.

Counts go to stdout (and docs/benchmarks.md quotes them)."""
import email
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
LOAD_SECONDS = float(os.environ.get("CS_KILL_SECONDS", "40"))

py = None
for cand in ("/usr/bin/python3", sys.executable):
    if os.path.exists(cand) and subprocess.run([cand, "-c", "import aiosmtpd"],
                                               capture_output=True).returncode == 0:
        py = cand
        break
if not py:
    print("SKIP: aiosmtpd is not installed (scripts/install-deps.sh installs python3-aiosmtpd)")
    sys.exit(csbb.SKIP)

tmp = tempfile.mkdtemp(prefix="cs-kill-")
mail_dir = os.path.join(tmp, "mail")
os.makedirs(mail_dir)
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-days", "1", "-keyout", os.path.join(tmp, "key.pem"), "-out",
                os.path.join(tmp, "cert.pem")], check=True, capture_output=True)
sink = subprocess.Popen([py, os.path.join(here, "smtp_sink.py"), mail_dir, os.path.join(tmp, "cert.pem"),
                         os.path.join(tmp, "key.pem"), "shop", "pw", "dedupe"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
port = int(sink.stdout.readline().split()[1])
jdir = os.path.join(tmp, "journeys")
os.makedirs(jdir)
with open(os.path.join(jdir, "two.yaml"), "w") as f:
    f.write("journey: two_messages\ntrigger: {event: order.placed}\nsteps:\n"
            "  - send: {channel: email, template: order_confirmation, class: transactional}\n"
            "  - wait: 2s\n"
            "  - send: {channel: email, template: delivered_tips, class: reassurance}\n")
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:%d" % port,
    "CONSONANCE_SMTP_USER": "shop", "CONSONANCE_SMTP_PASSWORD": "pw",
    "CONSONANCE_SMTP_FROM": "shop@example.de", "CONSONANCE_SMTP_TLS": "require",
    "CONSONANCE_SMTP_TLS_VERIFY": "no", "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_RETRY_BASE": "1s", "CONSONANCE_LOG_LEVEL": "warn",
    # one name across restarts, as a deployment has (on PostgreSQL the
    # restarted node then takes back what it was sending when killed)
    "CONSONANCE_NODE_ID": "bb-node",
})

acked = set()
stop = threading.Event()
lock = threading.Lock()
orders = csbb.OrderStream()


def client():
    pending = []
    while not stop.is_set() or pending:
        if not pending:
            if stop.is_set():
                break
            pending = orders.batch(5)
        try:
            st, _, body = d.post_events(pending)
            if st == 200:
                with lock:
                    acked.update(e["data"]["id"] for e in pending)
                pending = []
                time.sleep(0.1)
                continue
        except Exception:
            pass
        time.sleep(0.05)  # the daemon is down: retry the same events (idempotent)
        if stop.is_set() and d.port is None:
            time.sleep(0.2)


kills = 0
try:
    d.start()
    th = threading.Thread(target=client, daemon=True)
    th.start()
    end = time.time() + LOAD_SECONDS
    while time.time() < end:
        time.sleep(random.uniform(1.0, 4.0))
        d.kill()
        kills += 1
        d.start()
    stop.set()
    th.join(60)
    t.check(not th.is_alive(), "the client finished")
    # after the storm: let everything due go out
    expected = len(acked)

    def delivered():
        got = {}
        for p in glob.glob(os.path.join(mail_dir, "*.json")):
            with open(p) as f:
                to = json.load(f)["to"][0]
            got[to] = got.get(to, 0) + 1
        return got

    # every message sent and none waiting: after that nothing more is
    # handed over, so the mails are counted then (a repeat could still come
    # after the count of mails alone was reached)
    def all_sent():
        out = csbb.store_sql(d.store, "SELECT count(*) FROM outbox WHERE status=3; "
                                 "SELECT count(*) FROM outbox WHERE status<>3").split()
        return len(out) == 2 and int(out[0]) >= 2 * expected and out[1] == "0"
    t.wait_for(all_sent, "every message sent", timeout=300, step=0.5)
    got = delivered()
    repeats = 0
    rp = os.path.join(mail_dir, "repeats.log")
    if os.path.exists(rp):
        repeats = len(open(rp).read().split())
    lost = sum(1 for i in acked if got.get("k%s@example.de" % i[1:], 0) < 2)
    twice = sum(1 for v in got.values() if v > 2)
    mids = {}
    for p in glob.glob(os.path.join(mail_dir, "*.eml")):
        with open(p, "rb") as f:
            m = email.message_from_binary_file(f)
        mids[m["Message-ID"]] = mids.get(m["Message-ID"], 0) + 1
    stored_twice = sum(1 for v in mids.values() if v > 1)
    st, _, health = d.request("GET", "/metrics")
    timers_left = None
    out = subprocess.run([a.bin, "journeys", "--store", d.store, "runs", "k00001"], capture_output=True,
                         text=True)
    print("counts: orders=%d acknowledged=%d kills=%d messages_expected=%d delivered=%d lost=%d "
          "stored_twice=%d customers_over_two=%d handovers_repeated=%d"
          % (orders.n, expected, kills, 2 * expected, sum(got.values()), lost, stored_twice, twice,
             repeats))
    t.check(expected > 100, "load was real (%d orders acknowledged)" % expected)
    t.check(kills >= 8, "killed repeatedly (%d)" % kills)
    t.eq(lost, 0, "messages lost")
    t.eq(stored_twice, 0, "messages delivered twice")
    t.eq(twice, 0, "customers with more than their two messages")
    t.check(repeats <= kills, "repeated hand-overs (%d) at most one per kill (%d)" % (repeats, kills))
    d.stop()
    # the outbox: every message sent, none left queued, no timer left
    out = csbb.store_sql(d.store, "SELECT status, count(*) FROM outbox GROUP BY status; "
                                  "SELECT 'timers', count(*) FROM timers; "
                                  "SELECT 'runs', status, count(*) FROM journey_runs "
                                  "GROUP BY status;")
    print(out.strip().replace("\n", "; "))
    rows = dict(tuple(l.split("|")[-2:]) for l in out.split() if l.count("|") == 1)
    t.eq(rows.get("3"), str(2 * expected), "outbox: every message sent, once")
    t.check("timers|0" in out, "no timer left behind")
finally:
    stop.set()
    d.cleanup()
    sink.stdin.close()
    sink.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
