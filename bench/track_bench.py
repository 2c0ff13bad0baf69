#!/usr/bin/env python3
"""Tracking benchmarks, each against a baseline measured in the same run.

1. The tracking page under load: wrk (keep-alive, 2 threads) fetches the
   signed pages of a realistic mix of orders (each with a shipment and 2-6
   scans, some late, some delivered, some at risk) from `consonance serve`,
   and the same pages saved as static files from nginx. Requests/s and
   p50/p99 latency of both; the target is at least 0.5x nginx.
2. Scan ingest with promise re-computation: batches of 100 scans for open
   orders posted with wrk; the scans/s until the order watch has
   recomputed every order they touched, against the same scans posted to a
   daemon with the watch off (the plain event intake).

    bench/track_bench.py BUILD_DIR OUT_FILE [DURATION_S] [ORDERS]

Writes key=value lines to OUT_FILE. Needs wrk and nginx.
"""
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1])
OUT = sys.argv[2]
DUR = int(sys.argv[3]) if len(sys.argv) > 3 else 10
ORDERS = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
CONNS = int(os.environ.get("CS_BENCH_PAGE_CONNS", "64"))
ROUNDS = int(os.environ.get("CS_BENCH_ROUNDS", "3"))
SECRET = "bench-link-secret-0123456789"
HERE = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp(prefix="cs-track-bench-")
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
rnd = random.Random(7)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def token(order_id):
    mac = hmac.new(SECRET.encode(), ("t:" + order_id).encode(), hashlib.sha256).hexdigest()
    return order_id.encode().hex() + "." + mac[:32]


# a shop logo of a realistic size (about 2 KB of SVG), served once as /t/logo
LOGO = os.path.join(TMP, "logo.svg")
with open(LOGO, "w") as f:
    f.write('<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40" viewBox="0 0 160 40">'
            '<rect width="160" height="40" rx="8" fill="#fff"/>' +
            "".join('<circle cx="%d" cy="%d" r="%d" fill="#1f4e79" opacity="0.%d"/>'
                    % (12 + 9 * i, 20 + (i % 3) * 3, 3 + i % 4, 3 + i % 6) for i in range(30)) +
            '<text x="48" y="26" font-family="sans-serif" font-size="16" fill="#1f4e79">'
            'Waldkauz</text></svg>')


class Daemon:
    def __init__(self, name, env):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        e = dict(os.environ)
        e.update({"CONSONANCE_STORE": "sqlite:" + os.path.join(self.dir, "store.db"),
                  "CONSONANCE_PORT": "0", "CONSONANCE_BOOTSTRAP_KEY_FILE": os.path.join(self.dir, "key"),
                  "CONSONANCE_LOG_LEVEL": "warn", "CONSONANCE_LINK_SECRET": SECRET,
                  "CONSONANCE_PUBLIC_URL": "https://shop.example/c",
                  "CONSONANCE_SHOP_NAME": "Waldkauz Haus & Outdoor",
                  "CONSONANCE_RETURNS_URL": "https://shop.example/returns",
                  "CONSONANCE_SUPPORT_EMAIL": "hilfe@waldkauz.example",
                  "CONSONANCE_BRAND_LOGO": LOGO})
        e.update(env)
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen([os.path.join(BUILD, "consonance"), "serve"], env=e,
                                     stdout=self.log, stderr=self.log)
        for _ in range(200):
            txt = open(os.path.join(self.dir, "log")).read()
            m = re.search(r"listening on http://127.0.0.1:(\d+)", txt)
            if m and os.path.exists(os.path.join(self.dir, "key")):
                self.port = int(m.group(1))
                self.key = open(os.path.join(self.dir, "key")).read().strip()
                return
            time.sleep(0.05)
        raise RuntimeError("daemon did not start: " + open(os.path.join(self.dir, "log")).read())

    def request(self, method, path, body=None, ctype="application/x-ndjson"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Authorization": "Bearer " + self.key}
        if body is not None:
            h["Content-Type"] = ctype
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def post(self, events):
        for i in range(0, len(events), 1000):
            st, body = self.request("POST", "/v1/events", "\n".join(json.dumps(e) for e in events[i:i + 1000]))
            if st != 200:
                raise RuntimeError("intake: %s %s" % (st, body[:300]))

    def metric(self, name):
        st, body = self.request("GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log.close()


CITIES = ["Leipzig", "Kassel", "Hannover", "Nürnberg", "Köln", "Berlin", "Hamburg", "München"]
STEPS = ["info_received", "in_transit", "in_transit", "out_for_delivery", "delivered"]


def shop_events(n, prefix, open_only=False):
    """Customers, orders, shipments and scans: a realistic spread of states."""
    evs = []
    for i in range(n):
        oid = "%s%06d" % (prefix, i)
        cust = "c%05d" % (i % (n // 2 + 1))
        placed = now - dt.timedelta(hours=rnd.randint(2, 24 * 9))
        total = "%.2f" % rnd.uniform(15, 400)
        evs.append({"event_id": "cu-" + oid, "type": "customer.upserted", "occurred_at": iso(placed),
                    "data": {"id": cust, "email": cust + "@example.de", "locale": rnd.choice(["de", "de", "en"]),
                             "timezone": "Europe/Berlin"}})
        items = [{"sku": "SKU-%d" % rnd.randint(1, 300), "name": rnd.choice(
            ["Zelt Kauz 2", "Schlafsack Uhu", "Kaffeebohnen 250 g", "Becher Emaille", "Stirnlampe 300 lm"]),
            "unit_price": total, "quantity": 1}]
        order = {"id": oid, "customer_id": cust, "currency": "EUR", "placed_at": iso(placed),
                 "totals": {"shipping": "4.90", "total": total}, "items": items}
        if rnd.random() < 0.5:
            order["promised_delivery"] = {"earliest": iso(placed + dt.timedelta(days=2)),
                                          "latest": iso(placed + dt.timedelta(days=4))}
        evs.append({"event_id": "o-" + oid, "type": "order.placed", "occurred_at": iso(placed), "data": order})
        shipped = placed + dt.timedelta(hours=rnd.randint(2, 30))
        if shipped > now:
            continue
        carrier = rnd.choice(["dhl", "dhl", "dpd", "hermes", "gls"])
        evs.append({"event_id": "s-" + oid, "type": "shipment.created", "occurred_at": iso(shipped),
                    "data": {"id": "S" + oid, "order_id": oid, "carrier": carrier, "tracking_number": "T" + oid,
                             "origin": {"country": "DE", "region": "SN", "postal_code": "04109"},
                             "destination": {"country": "DE", "postal_code": "%05d" % rnd.randint(1067, 99998)}}})
        k = rnd.randint(1, 4 if open_only else 5)
        t = shipped
        for j in range(k):
            t = t + dt.timedelta(hours=rnd.randint(3, 20))
            if t > now:
                break
            st = STEPS[j]
            data = {"shipment_id": "S" + oid, "carrier": carrier, "tracking_number": "T" + oid, "status": st,
                    "location": {"city": rnd.choice(CITIES), "country": "DE"}}
            if st == "out_for_delivery" and rnd.random() < 0.15:
                data["status"] = "failed_attempt"
                data["reason"] = "recipient_absent"
            evs.append({"event_id": "sc-%s-%d" % (oid, j), "type": "tracking.event", "occurred_at": iso(t),
                        "data": data})
    return evs


def wait_watch(d, want, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if d.metric("consonance_promise_updates_total") >= want:
            return time.time()
        time.sleep(0.05)
    raise RuntimeError("the watch did not catch up")


def wrk(url, lua, conns, env=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % DUR, "--timeout", "10s", "-s", lua, url],
                       capture_output=True, text=True, env=e)
    m = re.search(r"CS_RESULT requests=(\d+) duration_us=(\d+) errors_status=(\d+) p50_us=(\d+) p99_us=(\d+)",
                  r.stdout)
    if not m:
        raise RuntimeError("wrk: " + r.stdout + r.stderr)
    req, dur, errs, p50, p99 = map(int, m.groups())
    return req * 1e6 / dur, p50, p99, errs, req


def median(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]


out = {}
try:
    # ---- 1. the tracking page vs nginx serving the same pages ----
    d = Daemon("page", {})
    evs = shop_events(ORDERS, "P")
    orders = sorted({e["data"]["id"] for e in evs if e["type"] == "order.placed"})
    d.post(evs)
    wait_watch(d, len(orders) * 0.99)
    static = os.path.join(TMP, "static", "t")
    os.makedirs(static)
    paths = []
    sizes = []
    for oid in orders:
        tok = token(oid)
        st, body = d.request("GET", "/t/" + tok)
        if st != 200:
            raise RuntimeError("page %s: %s" % (oid, st))
        with open(os.path.join(static, tok), "wb") as f:
            f.write(body)
        paths.append("/t/" + tok)
        sizes.append(len(body))
    paths_file = os.path.join(TMP, "paths.txt")
    with open(paths_file, "w") as f:
        f.write("\n".join(paths) + "\n")
    nport = free_port()
    ndir = os.path.join(TMP, "nginx")
    os.makedirs(os.path.join(ndir, "logs"))
    user = "user root;" if os.getuid() == 0 else ""
    with open(os.path.join(ndir, "nginx.conf"), "w") as f:
        f.write("""%s
worker_processes 2;
daemon off;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  open_file_cache max=20000 inactive=60s;
  server {
    listen 127.0.0.1:%d backlog=4096;
    root %s;
    location /t/ { default_type "text/html; charset=utf-8"; }
  }
}
""" % (user, ndir, ndir, nport, os.path.join(TMP, "static")))
    lua = os.path.join(HERE, "http", "pages.lua")
    env = {"CS_PATHS": paths_file}
    N, C = [], []
    for _ in range(ROUNDS):
        ng = subprocess.Popen(["nginx", "-p", ndir, "-c", os.path.join(ndir, "nginx.conf")])
        time.sleep(1)
        N.append(wrk("http://127.0.0.1:%d" % nport, lua, CONNS, env))
        ng.send_signal(signal.SIGQUIT)
        ng.wait(30)
        C.append(wrk("http://127.0.0.1:%d" % d.port, lua, CONNS, env))
    hits = d.metric('consonance_tracking_pages_total{cache="hit"}')
    misses = d.metric('consonance_tracking_pages_total{cache="miss"}')
    d.stop()
    n_rps, c_rps = median([x[0] for x in N]), median([x[0] for x in C])
    out["page_cache_hit_rate"] = "%.3f" % (hits / max(1.0, hits + misses))
    out.update({
        "page_orders": len(orders), "page_conns": CONNS, "page_rounds": ROUNDS, "page_duration_s": DUR,
        "page_bytes_median": median(sizes),
        "page_nginx_rps": round(n_rps), "page_nginx_rps_all": ",".join("%.0f" % x[0] for x in N),
        "page_nginx_p50_us": median([x[1] for x in N]), "page_nginx_p99_us": median([x[2] for x in N]),
        "page_nginx_errors": sum(x[3] for x in N),
        "page_rps": round(c_rps), "page_rps_all": ",".join("%.0f" % x[0] for x in C),
        "page_p50_us": median([x[1] for x in C]), "page_p99_us": median([x[2] for x in C]),
        "page_errors": sum(x[3] for x in C),
        "page_ratio": "%.2f" % (c_rps / n_rps),
    })
    print(json.dumps(out, indent=1), flush=True)

    if os.environ.get("CS_BENCH_ONLY") == "page":
        raise SystemExit(0)
    # ---- 2. scan ingest: with the watch, and the plain intake without ----
    lua = os.path.join(HERE, "http", "scans.lua")
    for mode, env in (("watch", {}), ("plain", {"CONSONANCE_ORDER_WATCH": "no"})):
        d = Daemon("scans-" + mode, env)
        base = shop_events(ORDERS * 10, "Q", open_only=True)
        d.post(base)
        n_orders = len({e["data"]["id"] for e in base if e["type"] == "order.placed"})
        if mode == "watch":
            wait_watch(d, n_orders * 0.99)
        ships = [e["data"] for e in base if e["type"] == "shipment.created"]
        ship_file = os.path.join(TMP, "ships-%s.txt" % mode)
        with open(ship_file, "w") as f:
            for s in ships:
                f.write("%s %s %s\n" % (s["id"], s["carrier"], s["tracking_number"]))
        before = d.metric("consonance_promise_updates_total")
        ev0 = d.metric('consonance_events_total{outcome="new"}')
        t0 = time.time()
        rps, p50, p99, errs, reqs = wrk("http://127.0.0.1:%d" % d.port, lua, 64,
                                       {"CS_SHIPS": ship_file, "CS_KEY": d.key, "CS_BATCH": "100",
                                        "CS_NOW": iso(now)})
        t1 = time.time()
        scans = d.metric('consonance_events_total{outcome="new"}') - ev0
        if mode == "watch":
            # every order the scans touched recomputed: the watch's queue is empty
            while True:
                a = d.metric("consonance_promise_updates_total")
                time.sleep(0.5)
                if d.metric("consonance_promise_updates_total") == a:
                    break
            t2 = time.time() - 0.5
            updates = d.metric("consonance_promise_updates_total") - before
            out.update({"scan_watch_scans": int(scans), "scan_watch_accept_per_s": round(scans / (t1 - t0)),
                        "scan_watch_done_per_s": round(scans / (t2 - t0)),
                        "scan_watch_catchup_s": "%.1f" % (t2 - t1), "scan_watch_updates": int(updates),
                        "scan_watch_p99_us": p99, "scan_watch_errors": errs})
        else:
            out.update({"scan_plain_scans": int(scans), "scan_plain_per_s": round(scans / (t1 - t0)),
                        "scan_plain_p99_us": p99, "scan_plain_errors": errs})
        d.stop()
    out["scan_ratio"] = "%.2f" % (out["scan_watch_done_per_s"] / out["scan_plain_per_s"])
    out["scan_batch"] = 100
    out["scan_orders"] = ORDERS * 10
finally:
    with open(OUT, "w") as f:
        for k, v in out.items():
            f.write("%s=%s\n" % (k, v))
    print(open(OUT).read())
    shutil.rmtree(TMP, ignore_errors=True)
