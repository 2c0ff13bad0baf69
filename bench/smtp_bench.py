#!/usr/bin/env python3
"""SMTP benchmark: messages per second from Consonance's sender to a local
SMTP sink, against a minimal client in the same run.

    bench/smtp_bench.py BUILD_DIR OUT_FILE N

The sink is aiosmtpd (Debian's python3-aiosmtpd) in its own process,
accepting and counting messages (no TLS, no AUTH, nothing written).

- baseline: Python's smtplib sends N ready-made messages of the same size
  over one connection (connection reuse), as fast as the sink takes them;
- consonance: the real daemon with one journey (order.placed -> a
  transactional order confirmation by email) gets N orders; its sender
  claims each message from the outbox, renders the templates (German,
  HTML and text), builds the MIME message, hands it over on a reused SMTP
  connection (libcurl) and records the outcome durably. Messages/s is
  counted at the sink, from the first message received to the last.

"""
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
import csbb  # noqa: E402

SINK = r'''
import socket, sys, time
from aiosmtpd.controller import Controller
class H:
    n = 0
    first = last = 0.0
    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        if H.n == 0:
            H.first = now
        H.n += 1
        H.last = now
        return "250 OK"
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
c = Controller(H(), hostname="127.0.0.1", port=port, ready_timeout=10)
c.start()
print("port %d" % port, flush=True)
for line in sys.stdin:
    if line.strip() == "stats":
        print("%d %.6f %.6f" % (H.n, H.first, H.last), flush=True)
    elif line.strip() == "reset":
        H.n = 0
        print("ok", flush=True)
c.stop()
'''


def python_with_aiosmtpd():
    for cand in ("/usr/bin/python3", sys.executable):
        if subprocess.run([cand, "-c", "import aiosmtpd"], capture_output=True).returncode == 0:
            return cand
    return None


class Sink:
    def __init__(self, py):
        self.p = subprocess.Popen([py, "-c", SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        self.port = int(self.p.stdout.readline().split()[1])

    def ask(self, what):
        self.p.stdin.write(what + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().split()

    def stats(self):
        n, first, last = self.ask("stats")
        return int(n), float(first), float(last)

    def wait(self, n, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got, first, last = self.stats()
            if got >= n:
                return got, first, last
            time.sleep(0.2)
        return self.stats()

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def main():
    build, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    py = python_with_aiosmtpd()
    if not py:
        print("smtp bench: aiosmtpd missing (scripts/install-deps.sh installs it)")
        return 1
    sink = Sink(py)
    res = {"smtp_n": n}
    try:
        # a message of the size Consonance sends (measured on the first one below)
        body = ("Hallo Kim,\r\n\r\nvielen Dank f\u00fcr Ihre Bestellung.\r\n" * 40).encode()
        msg = (b"From: shop@example.de\r\nTo: k@example.de\r\nSubject: Ihre Bestellung\r\n"
               b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body)
        t0 = time.time()
        with smtplib.SMTP("127.0.0.1", sink.port) as s:
            for i in range(n):
                s.sendmail("shop@example.de", ["k%d@example.de" % i], msg)
        res["smtp_baseline_per_s"] = round(n / (time.time() - t0))
        sink.ask("reset")

        jdir = tempfile.mkdtemp(prefix="cs-smtp-bench-")
        with open(os.path.join(jdir, "confirm.yaml"), "w") as f:
            f.write("journey: order_confirmation\ntrigger: {event: order.placed}\nsteps:\n"
                    "  - send: {channel: email, template: order_confirmation, class: transactional}\n")
        d = csbb.Daemon(os.path.join(build, "consonance"), extra_env={
            "CONSONANCE_JOURNEYS": jdir,
            "CONSONANCE_TEMPLATES": os.path.join(ROOT, "etc", "templates"),
            "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:%d" % sink.port,
            "CONSONANCE_SMTP_TLS": "off",
            "CONSONANCE_SMTP_FROM": "Kaffeer\u00f6sterei <service@shop.example>",
            "CONSONANCE_QUIET_HOURS": "off",
            "CONSONANCE_LOG_LEVEL": "warn",
        })
        try:
            d.start()
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            conn = d.conn()
            for i in range(0, n, 500):
                evs = []
                for k in range(i, min(n, i + 500)):
                    evs.append({"event_id": "c%d" % k, "type": "customer.upserted", "occurred_at": now,
                                "data": {"id": "k%d" % k, "email": "k%d@example.de" % k,
                                         "name": "Kim Beispiel", "locale": "de",
                                         "timezone": "Europe/Berlin"}})
                    evs.append(csbb.order_event("o%d" % k, "%d" % (100000 + k), customer="k%d" % k,
                                                at=now, price="24.90", qty=2))
                st, _, _ = d.post_events(evs, conn=conn)
                if st != 200:
                    raise RuntimeError("ingest answered %d" % st)
            got, first, last = sink.wait(n, timeout=max(120, n / 50))
            res["smtp_consonance_sent"] = got
            res["smtp_consonance_per_s"] = round((got - 1) / (last - first)) if got > 1 and last > first else 0
            st, _, m = d.request("GET", "/v1/customers/k0/messages")
            res["smtp_message_status"] = m["messages"][0]["status"] if st == 200 and m.get("messages") else "?"
        finally:
            d.cleanup()
            shutil.rmtree(jdir, ignore_errors=True)
    finally:
        sink.close()
    res["smtp_ratio"] = round(res["smtp_consonance_per_s"] / res["smtp_baseline_per_s"], 2)
    with open(out, "w") as f:
        for k, v in res.items():
            f.write("%s=%s\n" % (k, v))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
