"""Black-box: `consonance copy-store` moves a shop from its embedded SQLite
store to PostgreSQL (issue 5). A demo shop is generated into SQLite and read
through the daemon; after the copy a daemon on PostgreSQL gives the same
views byte for byte, new events continue the log's numbering, and a second
copy into the now non-empty database is refused with nothing changed, as is
a copy into a database a node has run on (its API key there)."""
import json
import os
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
pg = csbb.require_pg()

tmp = tempfile.mkdtemp(prefix="cs-copy-")
lite = "sqlite:" + os.path.join(tmp, "shop.db")


def views(d, ids, upto):
    """The views of ids, and the log up to seq `upto` (a running daemon's
    order watch may append signals of its own after it)."""
    out = {}
    for kind, i in ids:
        st, _, body = d.request("GET", "/v1/%s/%s" % (kind, i))
        out[(kind, i)] = (st, json.dumps(body, sort_keys=True))
    st, _, body = d.request("GET", "/v1/events?limit=1000")
    out["events"] = (st, json.dumps([e for e in body["events"] if e["seq"] <= upto],
                                    sort_keys=True))
    return out


pg.start()
try:
    r = subprocess.run([a.bin, "demo", "--store", lite, "--customers", "300", "--months", "3"],
                       capture_output=True, text=True)
    t.eq(r.returncode, 0, "demo shop generated: " + r.stderr[-200:])
    d = csbb.Daemon(a.bin, workdir=tmp, store=lite).start()
    st, _, page = d.request("GET", "/v1/events?limit=1000&order=desc")
    ids = set()
    for e in page["events"]:
        if e.get("order_id"):
            ids.add(("orders", e["order_id"]))
        if e.get("customer_id"):
            ids.add(("customers", e["customer_id"]))
    ids = sorted(ids)[:60]
    d.stop()
    last_seq = int(csbb.store_sql(lite, "SELECT max(seq) FROM events").strip())
    d = csbb.Daemon(a.bin, workdir=tmp, store=lite).start()
    before = views(d, ids, 1000)
    d.stop()
    t.check(len(ids) >= 40, "orders and customers to compare: %d" % len(ids))

    # a database a node has already run on holds no events, but its API
    # key and journey bookkeeping: refused, naming a table that is not empty
    pg.psql("CREATE DATABASE used", single=False)
    dused = csbb.Daemon(a.bin, store=pg.url("used"))
    dused.start()
    dused.cleanup()
    r = subprocess.run([a.bin, "copy-store", lite, pg.url("used")], capture_output=True,
                       text=True)
    t.eq(r.returncode, 1, "a copy into a database a node has run on is refused")
    t.check("already holds" in r.stderr and "apikeys" in r.stderr,
            "because its apikeys table is not empty: " + r.stderr.strip()[:300])
    t.eq(pg.psql("SELECT count(*) FROM events", db="used").strip(), "0",
         "nothing was copied into it")

    r = subprocess.run([a.bin, "copy-store", lite, pg.url()], capture_output=True, text=True)
    t.eq(r.returncode, 0, "copy-store succeeds: " + r.stderr[-300:])
    t.check("events" in r.stdout and "done:" in r.stdout, "it reports the tables it copied")

    # its own folder inside tmp (removed with it): its key and log
    d2dir = os.path.join(tmp, "pg-daemon")
    os.mkdir(d2dir)
    d2 = csbb.Daemon(a.bin, workdir=d2dir, store=pg.url())
    d2.start()
    after = views(d2, ids, 1000)
    same = sum(1 for k in before if before[k] == after.get(k))
    t.eq(same, len(before), "every view is the same on PostgreSQL")
    # what the views do not show: when each customer field was stated
    # (customers.field_at), which decides what a late update may change
    # (sorted here: the two databases may collate ids differently)
    q = "SELECT id, field_at FROM customers WHERE field_at IS NOT NULL"
    lite_times = sorted(csbb.store_sql(lite, q).splitlines())
    t.check(len(lite_times) >= 100, "the demo's customers have field times: %d" % len(lite_times))
    t.eq(sorted(csbb.store_sql(pg.url(), q).splitlines()), lite_times,
         "every customer's field times are copied")
    st, _, body = d2.request("POST", "/v1/events", {
        "event_id": "after-copy-1", "type": "customer.upserted",
        "occurred_at": "2026-11-20T10:00:00Z", "data": {"id": "new-after-copy"}})
    t.eq(st, 201, "a new event on the copied store")
    t.check(body.get("seq", 0) > last_seq,
            "the log's numbering continues after the copy (%s > %d)" % (body.get("seq"), last_seq))
    d2.stop()

    r = subprocess.run([a.bin, "copy-store", lite, pg.url()], capture_output=True, text=True)
    t.eq(r.returncode, 1, "a second copy is refused")
    t.check("already holds" in r.stderr, "because the target is not empty: " + r.stderr.strip()[:200])
    r = subprocess.run([a.bin, "copy-store", "sqlite::memory:", pg.url()], capture_output=True,
                       text=True)
    t.check(r.returncode != 0 and "sqlite:PATH" in r.stderr, "an in-memory source is refused")
finally:
    pg.stop()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
