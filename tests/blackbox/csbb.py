"""csbb -- helpers for black-box tests: start the real `consonance serve` on an
ephemeral port with a throwaway store, talk HTTP to it, stop or kill it.

Standard library only. Each test script is run as `python3 FILE --bin PATH`;
exit 0 = pass, 1 = fail, 77 = skipped.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True, help="path to the consonance binary")
    return p.parse_args()


def pg_empty(url):
    """Empty a PostgreSQL database (its public schema)."""
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                    "SET client_min_messages=warning; DROP SCHEMA public CASCADE; "
                    "CREATE SCHEMA public"], check=True, capture_output=True)


def store_sql(store, sql):
    """Run SQL on a store target (sqlite:PATH or a PostgreSQL URI) with its
    own command-line client; returns rows as 'a|b' lines."""
    if store.startswith("sqlite:"):
        cmd = ["sqlite3", store[len("sqlite:"):], sql]
    else:
        cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "|", store]
        for stmt in sql.split(";"):  # one -c each: psql -c shows only the last result
            if stmt.strip():
                cmd += ["-c", stmt]
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def store_customer_zone(store, customer_id, zone, tries=50):
    """Give a stored customer a time zone straight in the store, as one
    accepted before the intake checked zones (or gone from the time zone
    database since) would have: the intake refuses one it does not know.
    Tried again while the daemon's writer holds the store; True once it
    reads back."""
    for _ in range(tries):
        store_sql(store, "UPDATE customers SET timezone='%s' WHERE id='%s'" % (zone, customer_id))
        got = store_sql(store, "SELECT timezone FROM customers WHERE id='%s'" % customer_id)
        if got.strip() == zone:
            return True
        time.sleep(0.1)
    return False


class Daemon:
    """A running `consonance serve` in its own temporary folder."""

    def __init__(self, binary, workdir=None, store=None, extra_env=None, config=None):
        self.binary = binary
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="cs-bb-")
        self.store = store or "sqlite:" + os.path.join(self.dir, "store.db")
        if not store and os.environ.get("CS_TEST_PG"):
            # the *.postgresql variants: the cluster with_pg.py started,
            # emptied for a daemon in a new folder
            self.store = os.environ["CS_TEST_PG"]
            if self.own_dir:
                pg_empty(self.store)
        self.key_file = os.path.join(self.dir, "api-key")
        self.extra_env = extra_env or {}
        self.config = config
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.key = None

    def start(self, timeout=60):
        env = dict(os.environ)
        env.update({
            "CONSONANCE_STORE": self.store,
            "CONSONANCE_PORT": "0",
            "CONSONANCE_HOST": "127.0.0.1",
            "CONSONANCE_BOOTSTRAP_KEY_FILE": self.key_file,
            "CONSONANCE_LOG_LEVEL": "info",
        })
        env.update(self.extra_env)
        cmd = [self.binary, "serve"]
        if self.config:
            cmd += ["--config", self.config]
        self.port = None
        log_start = len(self.read_log())
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
            for line in self.read_log()[log_start:].splitlines():
                if "listening on http://" in line:
                    self.port = int(line.rsplit(":", 1)[1])
            if self.port and os.path.exists(self.key_file):
                with open(self.key_file) as f:
                    self.key = f.read().strip()
                return self
            time.sleep(0.05)
        raise RuntimeError("daemon did not start:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, key=True, conn=None):
        """Returns (status, headers dict, parsed JSON or text)."""
        h = dict(headers or {})
        if key is True and self.key:
            h.setdefault("Authorization", "Bearer " + self.key)
        elif isinstance(key, str):
            h["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c = conn or self.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            if conn is None:
                c.close()
        ctype = hdrs.get("content-type", "")
        if ctype.startswith("application/json"):
            return r.status, hdrs, json.loads(data)
        return r.status, hdrs, data.decode("utf-8", "replace")

    def metrics(self):
        """The /metrics page's samples without labels, as {name: float}."""
        st, _, text = self.request("GET", "/metrics", key=False)
        out = {}
        for line in (text.splitlines() if st == 200 else []):
            if line and not line.startswith("#") and "{" not in line:
                name, _, value = line.partition(" ")
                out[name] = float(value)
        return out

    def settle(self, timeout=60):
        """Wait until the promise model, the order watch and the journeys
        have read the whole log (consonance_promise_seq, _watch_seq and
        _journeys_seq at consonance_log_seq, twice in a row with the log's
        end unchanged: what a pass appends, a signal, is read too).
        Whatever the events posted so far make the engine do, short of
        timers yet to come and the sender's hand-over, is done then: a check
        that nothing more happens proves it, however slow the machine. True
        when settled."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            m = self.metrics()
            end = m.get("consonance_log_seq")
            read = [m[k] for k in ("consonance_promise_seq", "consonance_watch_seq",
                                   "consonance_journeys_seq") if k in m]
            if end is not None and read and all(r >= end for r in read):
                if last == end:
                    return True
                last = end
            else:
                last = None
            time.sleep(0.05)
        print("settle: not settled in %ss: %r" % (timeout, {k: v for k, v in m.items()
                                                           if k.endswith("_seq")}), flush=True)
        return False

    def post_events(self, events, ndjson=False, conn=None, key=True):
        if ndjson:
            body = "\n".join(json.dumps(e) for e in events)
            return self.request("POST", "/v1/events", body, {"Content-Type": "application/x-ndjson"},
                                conn=conn, key=key)
        return self.request("POST", "/v1/events", events, conn=conn, key=key)

    def all_event_ids(self):
        ids, after = set(), 0
        while True:
            st, _, page = self.request("GET", "/v1/events?limit=1000&after_seq=%d" % after)
            if st != 200:
                raise RuntimeError("GET /v1/events: %s %s" % (st, page))
            for e in page["events"]:
                ids.add(e["event_id"])
            if page["next_after_seq"] is None:
                return ids
            after = page["next_after_seq"]

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("daemon did not stop within %ss" % timeout)
        code = self.proc.returncode if self.proc else None
        self.proc = None
        self.port = None
        if getattr(self, "log", None):
            self.log.close()
        if code and sig != signal.SIGKILL:
            # a sanitizer's report or a crash: show it in the test's output
            sys.stderr.write("daemon exited with %s; its log ends:\n%s\n"
                             % (code, self.read_log()[-6000:]))
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        if self.proc:
            self.kill()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def easter(y):
    """Easter Sunday of year y (the Gregorian computus), as a datetime.date."""
    import datetime
    a, b, c = y % 19, y // 100, y % 100
    h = (19 * a + b - b // 4 - (b - (b + 8) // 25 + 1) // 3 + 15) % 30
    k = (32 + 2 * (b % 4) + 2 * (c // 4) - h - c % 4) % 7
    m = (a + 11 * h + 22 * k) // 451
    return datetime.date(y, (h + k - 7 * m + 114) // 31, (h + k - 7 * m + 114) % 31 + 1)


def de_holiday(day):
    """Is the date a German national holiday? A shop in Europe/Berlin counts
    no working day on it (holidays=auto; tracking/calendar.h): the tests
    that count working days from the clock count as it does."""
    return ((day.month, day.day) in ((1, 1), (5, 1), (10, 3), (12, 25), (12, 26)) or
            (day - easter(day.year)).days in (-2, 1, 39, 50))


def reply_json(handler, code, obj):
    """A fake provider's answer: obj as JSON with the given status."""
    data = json.dumps(obj).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def wa_accepted(handler, to, wamid):
    """A fake WhatsApp Cloud API's 200 for a message it took: the
    recipient's contact and the message's id (wamid)."""
    reply_json(handler, 200, {"messaging_product": "whatsapp",
                              "contacts": [{"input": to, "wa_id": to}],
                              "messages": [{"id": wamid}]})


def serve(handler_cls):
    """A fake provider (an http.server handler class) on a free local port,
    served from a daemon thread: (server, its base URL)."""
    import http.server
    import threading
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


def meta_post(d, statuses, secret, field="messages", value=None):
    """POST statuses to daemon d's WhatsApp Cloud API callback as Meta
    sends them, signed with the app secret; or, given, another change's
    field and value (user_preferences)."""
    import hashlib
    import hmac
    if value is None:
        value = {"messaging_product": "whatsapp", "statuses": statuses}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": field, "value": value}]}]})
    sig = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return d.request("POST", "/v1/callbacks/whatsapp", body=body.encode(),
                     headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
                     key=False)


def out_for_delivery(cid, phone, consents, n, at):
    """A German customer (cid, Berlin) whose order o-CID's parcel (DHL,
    tracking number Tn) is out for delivery: its four events."""
    oid = "o-" + cid
    return [
        {"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": at,
         "data": {"id": cid, "name": "Kim " + cid, "phone": phone, "locale": "de",
                  "timezone": "Europe/Berlin", "consents": consents}},
        order_event("e-o-" + cid, oid, customer=cid, at=at),
        {"event_id": "e-s-" + cid, "type": "shipment.created", "occurred_at": at,
         "data": {"id": "s-" + cid, "order_id": oid, "carrier": "dhl", "tracking_number": "T%d" % n}},
        {"event_id": "e-t-" + cid, "type": "tracking.event", "occurred_at": at,
         "data": {"shipment_id": "s-" + cid, "carrier": "dhl", "tracking_number": "T%d" % n,
                  "status": "out_for_delivery"}},
    ]


def browser_missing(root):
    """(node, None) when the headless Chromium tests can run (node, the
    npm packages in tests/browser, Debian's chromium), else (None, why)."""
    import shutil
    node = shutil.which("node")
    pw = os.path.join(root, "tests", "browser", "node_modules", "playwright-core")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if node and os.path.isdir(pw) and os.path.exists(chromium):
        return node, None
    return None, "headless Chromium test needs node, tests/browser/node_modules (npm ci) and %s" % chromium


def order_event(eid, order_id, customer="c-1", at="2026-03-01T10:00:00Z", price="8.90", qty=1):
    return {"event_id": eid, "type": "order.placed", "occurred_at": at,
            "data": {"id": order_id, "customer_id": customer, "currency": "EUR",
                     "items": [{"sku": "KAF", "name": "Kaffee", "unit_price": price, "quantity": qty}]}}


class Checker:
    """Collects failures so one run reports all of them."""

    def __init__(self):
        self.failures = []

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
            print("FAIL:", what, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, "%s: expected %r, got %r" % (what, want, got))

    def wait_for(self, fn, what, timeout=20, step=0.1):
        """fn()'s first true value within timeout; a failure (and None) if none."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(step)
        self.check(False, "timed out waiting for " + what)
        return None

    def done(self):
        if self.failures:
            print("%d check(s) failed" % len(self.failures))
            sys.exit(1)
        print("ok")
        sys.exit(0)


class SmtpSink:
    """tests/blackbox/smtp_sink.py (aiosmtpd, STARTTLS and AUTH required)
    in a temporary folder; .mails() reads what it received. .py is None
    when aiosmtpd is missing (the caller skips)."""

    def __init__(self, user="shop", password="s3cret", options=()):
        """options: smtp_sink.py's "dedupe", "flaky=P"."""
        self.options = list(options)
        self.py = None
        for cand in ("/usr/bin/python3", sys.executable):
            if os.path.exists(cand) and subprocess.run([cand, "-c", "import aiosmtpd"],
                                                       capture_output=True).returncode == 0:
                self.py = cand
                break
        self.user, self.password = user, password
        self.tmp = tempfile.mkdtemp(prefix="cs-smtp-")
        self.dir = os.path.join(self.tmp, "mail")
        os.makedirs(self.dir)
        self.proc = None
        self.port = None

    def start(self):
        here = os.path.dirname(os.path.abspath(__file__))
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                        "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        self.proc = subprocess.Popen([self.py, os.path.join(here, "smtp_sink.py"), self.dir, cert, key,
                                      self.user, self.password] + self.options,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[1])
        return self

    def env(self):
        """The daemon settings that send through this sink."""
        return {"CONSONANCE_SMTP_URL": "smtp://127.0.0.1:%d" % self.port,
                "CONSONANCE_SMTP_USER": self.user, "CONSONANCE_SMTP_PASSWORD": self.password,
                "CONSONANCE_SMTP_TLS": "require", "CONSONANCE_SMTP_TLS_VERIFY": "no"}

    def mails(self):
        """[(email.message.EmailMessage, envelope dict)] in arrival order."""
        import email
        import email.policy
        import glob
        out = []
        for p in sorted(glob.glob(os.path.join(self.dir, "*.eml"))):
            with open(p, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            with open(p[:-4] + ".json") as f:
                out.append((msg, json.load(f)))
        return out

    def stop(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def require_pg(real_clock=False):
    """A PgCluster (not started; real_clock as there), or exit: skipped
    without PostgreSQL, failed under CI (where the install script must have
    installed it)."""
    pg = PgCluster(real_clock=real_clock)
    if not pg.bin:
        msg = "PostgreSQL is not installed (scripts/install-deps.sh installs it)"
        if os.environ.get("CI"):
            print("FAIL: " + msg)
            sys.exit(1)
        print("SKIP: " + msg)
        sys.exit(SKIP)
    return pg


class OrderStream:
    """Orders for the kill tests, numbered across threads: each with its
    customer (mailable, transactional consent) inline."""

    def __init__(self):
        import threading
        self.lock = threading.Lock()
        self.n = 0

    def batch(self, k):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        evs = []
        for _ in range(k):
            with self.lock:
                self.n += 1
                n = self.n
            cid = "k%05d" % n
            e = order_event("ord-%05d" % n, "o%05d" % n, customer=cid, at=now)
            e["data"]["customer"] = {"id": cid, "email": "%s@example.de" % cid, "locale": "de",
                                     "consents": {"email": {"transactional": True}}}
            evs.append(e)
        return evs


class PgCluster:
    """A throwaway PostgreSQL cluster (Debian's binaries) in a temporary
    folder, on a free port, trust authentication for the user `consonance`.
    .bin is None when PostgreSQL is not installed (the caller skips, or
    fails under CI)."""

    def __init__(self, real_clock=False):
        """real_clock: the server runs on the real clock even where the
        tests run on a moved one (scripts/clock-sweep.sh preloads
        libfaketime into every process). Its timeouts need it: a signal
        handler that reads the clock while its thread waits in poll or
        epoll_wait is given the real time by libfaketime, so the server's
        SIGALRM handler finds a timeout set on the moved clock not yet due
        and sets the alarm again for the clock's offset; lock_timeout,
        statement_timeout and idle_in_transaction_session_timeout never
        fire (on a clock moved back, at once). The store reads no time from
        the server (its SQL has no now()), so only these timers differ."""
        import glob as _glob
        bins = sorted(_glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
        self.bin = bins[-1] if bins and os.path.exists(os.path.join(bins[-1], "initdb")) else None
        self.dir = None
        self.port = None
        self.runas = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        self.env = None  # the server's environment: this process's
        if real_clock:
            self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
            pre = [x for x in re.split(r"[: ]", self.env.pop("LD_PRELOAD", ""))
                   if x and "faketime" not in x]
            if pre:
                self.env["LD_PRELOAD"] = ":".join(pre)

    def start(self, durable=False):
        """durable: fsync as PostgreSQL's defaults have it (benchmarks);
        tests run without."""
        import socket
        self.durable = durable
        self.dir = tempfile.mkdtemp(prefix="cs-pg-")
        data = os.path.join(self.dir, "data")
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
        # initdb failed once in a CI run on a busy machine, its output
        # not kept: said now, and tried once more in an empty folder
        for attempt in (1, 2):
            r = subprocess.run(self.runas + [os.path.join(self.bin, "initdb"), "-D", data, "-A",
                                             "trust", "-U", "consonance", "-E", "UTF8"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                break
            print("PgCluster: initdb failed (exit %d, attempt %d):\n%s%s" %
                  (r.returncode, attempt, r.stdout, r.stderr), flush=True)
            if attempt == 2:
                raise RuntimeError("initdb failed twice")
            shutil.rmtree(data, ignore_errors=True)
        # The port is free when asked, not when the server binds it: a
        # daemon of a test running beside this one (port 0) may take it in
        # between. The server then fails to start; try another port.
        log_path = os.path.join(self.dir, "log")
        for _ in range(5):
            try:
                seen = os.path.getsize(log_path)
            except OSError:
                seen = 0
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
            s.close()
            r = subprocess.run(self.runas + [os.path.join(self.bin, "pg_ctl"), "-D", data, "-l",
                                             log_path, "-w", "-t", "120", "-o",
                                             "-p %d -k %s -c listen_addresses=127.0.0.1%s"
                                             % (self.port, self.dir, "" if durable else " -c fsync=off"),
                                             "start"],
                               capture_output=True, text=True, env=self.env)
            if r.returncode == 0:
                return self
            try:
                with open(log_path, errors="replace") as f:
                    log = f.read()[seen:]
            except OSError:
                log = ""
            if "could not bind" not in log and "already in use" not in log:
                break
        raise RuntimeError("PostgreSQL did not start on port %d: %s%s\n%s"
                           % (self.port, r.stdout, r.stderr, log[-3000:]))

    def url(self, db="postgres"):
        return "postgresql://consonance@127.0.0.1:%d/%s" % (self.port, db)

    def psql(self, sql, db="postgres", single=True):
        """Run SQL (stops at the first error; in one transaction unless
        single is False); returns stdout."""
        r = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t"] + (["-1"] if single else []) + [
                            "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "consonance", "-d", db, "-f", "-"],
                           input=sql, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql: " + r.stderr)
        return r.stdout

    def _ctl(self, *args):
        return subprocess.run(self.runas + [os.path.join(self.bin, "pg_ctl"), "-D",
                                            os.path.join(self.dir, "data")] + list(args),
                              capture_output=True, env=self.env)

    def pause(self):
        """Stop the server, keeping its data (a database that went away)."""
        self._ctl("-m", "fast", "-w", "stop")

    def resume(self):
        """Start it again on the same port."""
        self._ctl("-l", os.path.join(self.dir, "log"), "-w", "-o",
                  "-p %d -k %s -c listen_addresses=127.0.0.1%s"
                  % (self.port, self.dir, "" if self.durable else " -c fsync=off"), "start")

    def stop(self):
        if self.dir:
            subprocess.run(self.runas + [os.path.join(self.bin, "pg_ctl"), "-D",
                                         os.path.join(self.dir, "data"), "-m", "immediate", "stop"],
                           capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
