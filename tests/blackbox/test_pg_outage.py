"""Black-box: a PostgreSQL store that goes away and comes back, and one too
slow to take writes (issue 5, bad input). The daemon runs on a throwaway
cluster; while the database is down /healthz says unhealthy (503), writes
are refused with 503 store_unavailable (nothing is acknowledged that is not
stored), and when it is back the node recovers by itself: healthy again,
writes accepted, every acknowledged event present. While another session
holds the store's write lock (a database that cannot take writes), a write
waits for the lock timeout and is refused with 503 rather than hanging or
being acknowledged; once the lock is gone, writes go through again. Then the
database is restarted twice while clients stream batches: afterwards every
batch that was acknowledged is in the store, once. Last, a database that
reads but takes no writes (its sessions read-only, as a managed database
is put on a full disk) makes /healthz say unhealthy until it takes writes
again."""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
# the server on the real clock also when the test runs on a moved one
# (scripts/clock-sweep.sh): its lock timeout, which this test is about,
# does not fire under libfaketime (csbb.PgCluster says why)
pg = csbb.require_pg(real_clock=True)


def ev(n):
    return {"event_id": "out-%d" % n, "type": "customer.upserted",
            "occurred_at": "2026-03-01T10:00:00Z",
            "data": {"id": "c%d" % n, "email": "c%d@example.de" % n}}


pg.start()
d = csbb.Daemon(a.bin, store=pg.url())
acked = []
try:
    d.start()
    st, _, body = d.post_events([ev(1), ev(2)])
    t.eq(st, 200, "a batch while the database is up")
    acked += [1, 2]
    st, _, h = d.request("GET", "/healthz")
    t.eq(st, 200, "healthy while the database is up")
    st, _, _ = d.request("GET", "/v1/customers/c1")  # (the key is known for 2 s now)
    t.eq(st, 200, "a view while the database is up")

    pg.pause()
    # a delivery callback that cannot be looked up is refused, so that the
    # provider sends it again: it used to be answered 200, its status lost
    st, hd, body = d.request("POST", "/v1/callbacks/email",
                             {"message_id": "<m1@example.de>", "status": "bounced"})
    t.check(st == 503 and (body.get("error") or {}).get("code") == "store_unavailable" and
            (body.get("error") or {}).get("message", "ok") != "ok",
            "a callback is refused while the database is down: %d %r" % (st, body))
    st, hd, h = d.request("GET", "/healthz")
    t.eq(st, 503, "unhealthy while the database is down")
    t.eq(h.get("status"), "unhealthy", "healthz says unhealthy")
    st, hd, body = d.post_events([ev(3)])
    t.eq(st, 503, "a batch is refused while the database is down")
    t.eq(hd.get("retry-after"), "1", "with Retry-After")
    t.eq(body["results"][0]["error"]["code"], "store_unavailable", "the item says why")
    st, hd, body = d.request("POST", "/v1/events", ev(4))
    t.eq(st, 503, "a single event is refused while the database is down")
    t.eq(body["error"]["code"], "store_unavailable", "store_unavailable")
    t.check("\n" not in body["error"]["message"], "the message is one line")
    st, _, _ = d.request("GET", "/v1/customers/c1")
    t.check(st >= 500, "a view fails cleanly while the database is down (%d)" % st)

    pg.resume()
    deadline = time.time() + 30
    st = None
    while time.time() < deadline:
        st, _, h = d.request("GET", "/healthz")
        if st == 200:
            break
        time.sleep(0.2)
    t.eq(st, 200, "healthy again by itself once the database is back")
    st, _, body = d.post_events([ev(3), ev(4), ev(5)])
    t.eq(st, 200, "writes accepted again")
    t.eq(body.get("accepted"), 3, "all three new")
    acked += [3, 4, 5]

    # slow: a session holds the write lock (CS_PG_LOCK_WRITE, src/store/sql_int.h) for 8 s
    hold = subprocess.Popen(["psql", "-X", "-q", "-o", "/dev/null", pg.url(), "-c",
                             "SELECT pg_advisory_lock(%d); SELECT pg_sleep(8)" % 0x436f6e7302])

    def lock_held():  # (a bigint key is classid = its high half, objid = its low)
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", pg.url(), "-c",
                              "SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND "
                              "granted AND classid=%d AND objid=%d AND objsubid=1"
                              % (0x436f6e7302 >> 32, 0x436f6e7302 & 0xffffffff)],
                             capture_output=True, text=True)
        return out.stdout.strip() == "1"
    # (psql may take a while to start on a busy machine: the write below
    # must meet the lock held)
    t.wait_for(lock_held, "the write lock held by the other session", timeout=6)
    t0 = time.time()
    st, hd, body = d.request("POST", "/v1/events", ev(6))
    waited = time.time() - t0
    t.eq(st, 503, "a write the database cannot take in time is refused")
    t.eq(body["error"]["code"], "store_unavailable", "store_unavailable (lock timeout)")
    t.check(4 <= waited < 30, "after the lock timeout, not forever (%.1f s)" % waited)
    hold.wait(30)
    st, _, body = d.request("POST", "/v1/events", ev(6))
    t.eq(st, 201, "accepted once the database takes writes again")
    acked.append(6)
    for n in acked:
        st, _, c = d.request("GET", "/v1/customers/c%d" % n)
        t.eq(st, 200, "acknowledged customer c%d is there" % n)
    st, _, c = d.request("GET", "/v1/events?limit=100")
    t.eq(len(c["events"]), len(acked), "the log holds each acknowledged event once")

    # restarted during work: two clients stream batches while the database
    # restarts twice; a refused or unanswered batch is sent again
    streamed, refused = set(), [0]
    stop = threading.Event()
    lock = threading.Lock()

    def client(k):
        n = 0
        while not stop.is_set():
            batch = [ev(100000 * k + n + i) for i in range(20)]
            n += 20
            while True:
                try:
                    st, _, _ = d.post_events(batch)
                except Exception:
                    st = None
                if st == 200:
                    with lock:
                        streamed.update(e["event_id"] for e in batch)
                    break
                refused[0] += 1
                if stop.is_set():
                    break
                time.sleep(0.1)

    clients = [threading.Thread(target=client, args=(k,), daemon=True) for k in (1, 2)]
    for c_ in clients:
        c_.start()
    for _ in range(2):
        time.sleep(1.5)
        pg.pause()
        time.sleep(1.0)
        pg.resume()
    time.sleep(2.0)
    stop.set()
    for c_ in clients:
        c_.join(60)
    t.check(refused[0] > 0, "batches were refused while it restarted (%d)" % refused[0])
    t.check(len(streamed) > 100, "batches were acknowledged around the restarts (%d events)"
            % len(streamed))
    ids = set(csbb.store_sql(pg.url(), "SELECT event_id FROM events").split())
    print("restarts: %d events acknowledged, %d batches refused or unanswered, %d stored"
          % (len(streamed), refused[0], len(ids)))
    t.eq(len(streamed - ids), 0, "acknowledged events missing after the restarts")
    dup = csbb.store_sql(pg.url(), "SELECT count(*) - count(DISTINCT event_id) FROM events").strip()
    t.eq(dup, "0", "no event stored twice")
    st, _, h = d.request("GET", "/healthz")
    t.eq(st, 200, "healthy after the restarts")

    # read-only: the server's sessions default to read-only transactions
    # (what a managed database does on a full disk), so every write fails
    # while reads work; /healthz must not call the node healthy
    pg.psql("ALTER SYSTEM SET default_transaction_read_only=on; SELECT pg_reload_conf();",
            single=False)
    n = [1000]

    def write_refused():
        n[0] += 1
        st, _, _ = d.request("POST", "/v1/events", ev(n[0]))
        return st == 503
    t.wait_for(write_refused, "a write refused by the read-only database")
    st, _, h = d.request("GET", "/healthz")
    t.eq(st, 503, "unhealthy while the database takes no writes")
    t.check("read-only" in h.get("message", ""), "healthz says why: %s" % h.get("message"))
    pg.psql("SET default_transaction_read_only=off; ALTER SYSTEM RESET default_transaction_read_only;"
            " SELECT pg_reload_conf();", single=False)
    t.wait_for(lambda: d.request("GET", "/healthz")[0] == 200,
               "healthy again once the database takes writes")
    st, _, _ = d.request("POST", "/v1/events", ev(2000))
    t.eq(st, 201, "writes accepted again after read-only")
finally:
    d.cleanup()
    pg.stop()
t.done()
