"""Black-box: two nodes on a PostgreSQL database whose default isolation is
REPEATABLE READ (an operator's ALTER DATABASE ... SET
default_transaction_isolation). The nodes' writer transactions take turns
on the store's write lock and must read what the node before committed:
under concurrent batches on both nodes every request is acknowledged (no
503 from a seq given twice or a serialization failure), and every event is
stored once."""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
pg = csbb.require_pg()
pg.start()
nodes = []
try:
    url = pg.url()
    subprocess.run(["psql", "-X", "-q", url, "-c",
                    "ALTER DATABASE postgres SET default_transaction_isolation='repeatable read'"],
                   check=True)
    for name in ("a", "b"):
        d = csbb.Daemon(a.bin, store=url, extra_env={"CONSONANCE_NODE_ID": name})
        d.start()
        nodes.append(d)
    statuses, lock = {}, threading.Lock()

    def client(d, n):
        conn = d.conn()
        for i in range(100):
            evs = [csbb.order_event("iso-%d-%d-%d" % (n, i, k), "o-%d-%d-%d" % (n, i, k),
                                    customer="c-%d" % (i % 7)) for k in range(5)]
            st, _, _ = d.post_events(evs, conn=conn)
            with lock:
                statuses[st] = statuses.get(st, 0) + 1

    threads = [threading.Thread(target=client, args=(nodes[n % 2], n)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    t.eq(statuses, {200: 400}, "every batch on either node acknowledged")
    ids = nodes[0].all_event_ids()
    t.eq(len([i for i in ids if i.startswith("iso-")]), 2000, "every event stored")
    seqs = csbb.store_sql(url, "SELECT count(*), count(DISTINCT seq) FROM events").strip()
    t.eq(seqs, "2000|2000", "one seq per event")
finally:
    for d in nodes:
        d.kill()
        d.cleanup()
    pg.stop()
t.done()
