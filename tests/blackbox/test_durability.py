"""Black-box: acknowledged means durable.

1. Several clients post batches (JSON arrays and NDJSON) and single events as
   fast as they can; the daemon is killed with SIGKILL in the middle; after a
   restart on the same store every acknowledged event is present and the
   store accepts more. Repeated three times on the same store.
2. The same load, stopped with SIGTERM: exit code 0, every acknowledged
   event present, and requests in flight were answered, not dropped.
"""
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()


def load(d, run, acked, stop, errors):
    """Client threads: record event ids of every 2xx answer."""
    def client(n):
        rng = random.Random(n)
        i = 0
        conn = None
        while not stop.is_set():
            size = rng.choice([1, 1, 10, 50, 100])
            evs = [csbb.order_event("r%d-c%d-%d" % (run, n, i + k), "o-r%d-c%d-%d" % (run, n, i + k),
                                    customer="c%d" % (i % 50)) for k in range(size)]
            i += size
            try:
                conn = conn or d.conn()
                if size == 1:
                    st, _, body = d.post_events(evs[0], conn=conn)
                else:
                    st, _, body = d.post_events(evs, ndjson=bool(i % 2), conn=conn)
            except Exception:  # the daemon went away: nothing acknowledged
                conn = None
                if stop.is_set():
                    return
                time.sleep(0.01)
                continue
            if st in (200, 201):
                if size == 1:
                    acked.add(evs[0]["event_id"])
                else:
                    for r in body["results"]:
                        if r["status"] in ("accepted", "duplicate"):
                            acked.add(r["event_id"])
            elif st != 503:
                errors.append((st, body))
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(6)]
    for th in threads:
        th.start()
    return threads


d = csbb.Daemon(a.bin)
try:
    all_acked = set()
    for run in range(3):
        d.start()
        acked, stop, errors = set(), threading.Event(), []
        threads = load(d, run, acked, stop, errors)
        time.sleep(1.5 + random.random())
        d.kill()                      # SIGKILL mid-ingest
        stop.set()
        for th in threads:
            th.join(10)
        t.eq(errors[:3], [], "run %d: no unexpected statuses" % run)
        t.check(len(acked) > 100, "run %d: load was acknowledged (%d events)" % (run, len(acked)))
        all_acked |= acked
        d.start()                     # recovery
        present = d.all_event_ids()
        lost = all_acked - present
        t.eq(len(lost), 0, "run %d: acknowledged events lost after SIGKILL (of %d): %s"
             % (run, len(all_acked), sorted(lost)[:5]))
        st, _, body = d.post_events(csbb.order_event("after-%d" % run, "after-%d" % run))
        t.eq(st, 201, "run %d: accepts events after recovery" % run)
        d.stop()

    # graceful stop under load
    d.start()
    acked, stop, errors = set(), threading.Event(), []
    threads = load(d, 9, acked, stop, errors)
    time.sleep(1.5)
    d.proc.send_signal(signal.SIGTERM)
    code = d.proc.wait(30)
    stop.set()
    for th in threads:
        th.join(10)
    t.eq(code, 0, "SIGTERM under load exits 0")
    t.check("stopped cleanly" in d.read_log(), "clean stop logged")
    d.proc = None
    d.log.close()
    d.start()
    present = d.all_event_ids()
    t.eq(len(acked - present), 0, "SIGTERM: every acknowledged event present")
    t.eq(errors[:3], [], "SIGTERM: no unexpected statuses")
    d.stop()
finally:
    d.cleanup()
t.done()
