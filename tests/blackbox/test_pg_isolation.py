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
        # (node b's environment names another client encoding: libpq's
        # PGCLIENTENCODING, as a host's profile may set it)
        env = {"CONSONANCE_NODE_ID": name}
        if name == "b":
            env["PGCLIENTENCODING"] = "LATIN1"
        d = csbb.Daemon(a.bin, store=url, extra_env=env)
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
    # text is stored as it is, whatever client encoding the node's
    # environment names: UTF-8 on this UTF8 database, not each byte taken
    # for a Latin-1 character ("MÃ¼ller")
    name = "Jürgen Müller, 5 € Rabatt"
    st, _, _ = nodes[1].post_events([{"event_id": "enc-1", "type": "customer.upserted",
                                      "occurred_at": "2026-03-01T10:00:00Z",
                                      "data": {"id": "enc", "name": name}}])
    t.eq(st, 200, "a name with umlauts and a euro sign on node b")
    got = csbb.store_sql(url, "SELECT encode(convert_to(name, 'UTF8'), 'hex') FROM customers "
                              "WHERE id = 'enc'").strip()
    t.eq(got, name.encode().hex(), "stored as UTF-8 in the database")
    st, _, cu = nodes[1].request("GET", "/v1/customers/enc")
    t.eq((st, cu.get("name")), (200, name), "and read back as sent")
finally:
    for d in nodes:
        d.kill()
        d.cleanup()
    pg.stop()
t.done()
