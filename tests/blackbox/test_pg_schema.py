"""Black-box: the store's migrations, written once (src/store/schema.c), apply
to a real PostgreSQL -- a throwaway cluster from Debian's packages started
here -- and give the same tables with the same columns as the embedded
SQLite store. The first piece of the PostgreSQL backend (issue 5)."""
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
pg = csbb.require_pg()


def schema(dialect, *extra):
    return subprocess.run([a.bin, "schema", dialect] + list(extra), check=True, capture_output=True,
                          text=True).stdout


lite = sqlite3.connect(":memory:")
lite.executescript(schema("sqlite"))
want = {}
for (name,) in lite.execute("SELECT name FROM sqlite_master WHERE type='table'"):
    want[name] = sorted(r[1] for r in lite.execute("PRAGMA table_info(%s)" % name))
t.check(len(want) >= 20, "the SQLite schema has its tables: %d" % len(want))

pg.start()
try:
    pg.psql("CREATE DATABASE cs", single=False)
    pg.psql(schema("postgresql"), db="cs")
    got = {}
    out = pg.psql("SELECT table_name || '|' || column_name FROM information_schema.columns "
                  "WHERE table_schema = 'public' ORDER BY 1", db="cs")
    for line in out.split():
        tbl, col = line.split("|")
        got.setdefault(tbl, []).append(col)
    got = {k: sorted(v) for k, v in got.items()}
    t.eq(sorted(got), sorted(want), "the same tables in PostgreSQL")
    for tbl in want:
        t.eq(got.get(tbl), want[tbl], "the columns of " + tbl)
    # 64-bit times and money, the log's own key
    out = pg.psql("SELECT data_type FROM information_schema.columns WHERE table_name = 'events' "
                  "AND column_name IN ('seq', 'occurred_at') ORDER BY column_name", db="cs")
    t.eq(out.split(), ["bigint", "bigint"], "64-bit integers")
    pg.psql("INSERT INTO events(event_id, type, occurred_at, received_at, body) "
            "VALUES ('e1', 2, 1772400000000, 1772400000001, '{}'), ('e2', 2, 1, 2, '{}')", db="cs")
    out = pg.psql("SELECT seq FROM events ORDER BY seq", db="cs")
    t.eq(out.split(), ["1", "2"], "the log numbers its events")
    # a partial index and a later migration's column
    out = pg.psql("SELECT indexname FROM pg_indexes WHERE tablename = 'promises' ORDER BY 1", db="cs")
    t.check("promises_check" in out.split(), "partial indexes: %r" % out)
    # applying from a version on: only what is missing
    t.check(schema("postgresql", "--from", "9").startswith("-- version 9\n"), "--from")
    r = subprocess.run([a.bin, "schema", "oracle"], capture_output=True, text=True)
    t.check(r.returncode == 2 and "expected sqlite or postgresql" in r.stderr, "a clear error for an unknown dialect")
finally:
    pg.stop()
t.done()
