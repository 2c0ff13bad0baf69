#!/usr/bin/env python3
"""PostgreSQL scale-out benchmark (issue 5): ingest and timer firing with 1,
2 and 3 nodes on one PostgreSQL, against a raw COPY of the same rows and
against pg-boss on the same database server, in the same run.

    bench/pg_bench.py BUILD_DIR OUT_FILE DURATION_S N_TIMERS

One throwaway cluster with PostgreSQL's durable defaults (fsync on,
synchronous_commit on) in a temporary folder.

- Ingest: k daemons (`consonance serve`, k = 1, 2, 3) on one fresh database;
  one wrk per node posting NDJSON batches of 100 events of the realistic
  mix (bench/http/events.lua) for DURATION_S, all at once. Events/s is the
  sum of what the nodes acknowledged (each acknowledged durably).
- COPY baseline: every row the 1-node run stored (events, state tables),
  written out with COPY ... TO and loaded into a fresh database with the
  same schema by COPY ... FROM in one transaction: the rate of a raw bulk
  load of the same rows with the same durability, as events/s.
- Timers: bench_timers (the journey issue's workload: N orders, each a run
  waiting one day on a durable timer, then all due at one instant) with k
  firing nodes; pg-boss (bench/peers/timers.mjs) with the same N on a
  database of the same server.

Writes key=value lines to OUT_FILE. Needs wrk, PostgreSQL and node with
bench/peers installed (scripts/install-deps.sh --bench).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
import csbb  # noqa: E402

BUILD, OUT, DUR, N_TIMERS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
BIN = os.path.join(BUILD, "consonance")
NODES = (1, 2, 3)
CONNS = 32  # per node
out = {}


def psql(pg, db, sql, single=False):
    return pg.psql(sql, db=db, single=single)


def start_nodes(pg, db, k, tmp):
    nodes = []
    for i in range(k):
        ndir = os.path.join(tmp, "%s-n%d" % (db, i + 1))
        os.makedirs(ndir)
        d = csbb.Daemon(BIN, workdir=ndir, store=pg.url(db),
                        extra_env={"CONSONANCE_NODE_ID": "n%d" % (i + 1),
                                   "CONSONANCE_LOG_LEVEL": "warn"})
        nodes.append(d.start())
    return nodes


def ingest(pg, k, tmp):
    db = "ingest%d" % k
    psql(pg, "postgres", "CREATE DATABASE %s" % db)
    nodes = start_nodes(pg, db, k, tmp)
    procs = []
    for i, d in enumerate(nodes):
        env = dict(os.environ, CS_BATCH="100", CS_KEY=d.key, CS_NONCE="k%dn%d" % (k, i))
        procs.append(subprocess.Popen(
            ["wrk", "-t1", "-c%d" % CONNS, "-d%ds" % DUR, "--timeout", "20s", "-s",
             os.path.join(HERE, "http", "events.lua"), "http://127.0.0.1:%d" % d.port],
            env=env, stdout=subprocess.PIPE, text=True))
    reqs = errs = 0
    secs = 0.0
    p99 = 0
    for p in procs:
        text = p.communicate()[0]
        m = re.search(r"CS_RESULT requests=(\d+) duration_us=(\d+) errors_status=(\d+) "
                      r"p50_us=(\d+) p99_us=(\d+)", text)
        if not m:
            raise SystemExit("pg_bench: wrk gave no result:\n" + text)
        reqs += int(m.group(1))
        secs = max(secs, int(m.group(2)) / 1e6)
        errs += int(m.group(3))
        p99 = max(p99, int(m.group(5)))
    for d in nodes:
        d.stop()
    stored = int(psql(pg, db, "SELECT count(*) FROM events").strip())
    out["pg_ingest_n%d_events_per_s" % k] = round((reqs - errs) * 100 / secs)
    out["pg_ingest_n%d_requests" % k] = reqs
    out["pg_ingest_n%d_non2xx" % k] = errs
    out["pg_ingest_n%d_p99_ms" % k] = round(p99 / 1000, 1)
    out["pg_ingest_n%d_events_stored" % k] = stored
    return db


def copy_baseline(pg, src, tmp):
    """Every row src holds, loaded raw by COPY into a fresh database."""
    tables = [t for t in psql(pg, src, "SELECT tablename FROM pg_tables WHERE schemaname = "
                                       "'public' ORDER BY 1").split() if t != "consonance_schema"]
    dump = os.path.join(tmp, "copy")
    os.makedirs(dump)
    os.chmod(tmp, 0o755)
    os.chmod(dump, 0o777)
    rows = 0
    for t in tables:
        n = int(psql(pg, src, "SELECT count(*) FROM %s" % t).strip())
        rows += n
        psql(pg, src, "\\copy %s TO '%s/%s.tsv'" % (t, dump, t))
    events = int(psql(pg, src, "SELECT count(*) FROM events").strip())
    psql(pg, "postgres", "CREATE DATABASE copytarget")
    schema = subprocess.run([BIN, "schema", "postgresql"], check=True, capture_output=True,
                            text=True).stdout
    psql(pg, "copytarget", schema, single=True)
    load = "".join("\\copy %s FROM '%s/%s.tsv'\n" % (t, dump, t) for t in tables)
    t0 = time.monotonic()
    psql(pg, "copytarget", load, single=True)  # one transaction, committed durably
    secs = time.monotonic() - t0
    out["pg_copy_rows"] = rows
    out["pg_copy_events"] = events
    out["pg_copy_s"] = round(secs, 3)
    out["pg_copy_rows_per_s"] = round(rows / secs)
    out["pg_copy_events_per_s"] = round(events / secs)


def timers(pg, k, tmp):
    db = "timers%d" % k
    psql(pg, "postgres", "CREATE DATABASE %s" % db)
    d = os.path.join(tmp, db)
    os.makedirs(d)
    r = subprocess.run([os.path.join(BUILD, "bench", "bench_timers"), d, str(N_TIMERS),
                        pg.url(db), str(k)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("pg_bench: bench_timers failed:\n" + r.stderr[-2000:])
    for line in r.stdout.split():
        key, _, val = line.partition("=")
        if key.startswith("timers_") and val:
            out["pg_%s_n%d" % (key, k)] = val


def pgboss(pg):
    psql(pg, "postgres", "CREATE DATABASE boss")
    r = subprocess.run(["node", os.path.join(HERE, "peers", "timers.mjs"), "pgboss", str(N_TIMERS),
                        pg.url("boss")], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("pg_bench: pg-boss failed:\n" + r.stderr[-2000:])
    for line in r.stdout.split():
        key, _, val = line.partition("=")
        if key.startswith("pgboss_") and val:
            out["pg_" + key] = val
    v = subprocess.run(["node", "-p", "require('%s/peers/node_modules/pg-boss/package.json').version"
                        % HERE], capture_output=True, text=True).stdout.strip()
    out["pg_pgboss_version"] = v or "?"


def main():
    pg = csbb.PgCluster()
    if not pg.bin:
        raise SystemExit("pg_bench: PostgreSQL is not installed (scripts/install-deps.sh --bench)")
    tmp = tempfile.mkdtemp(prefix="cs-pgbench-")
    pg.start(durable=True)
    try:
        out["pg_version"] = psql(pg, "postgres", "SHOW server_version").strip()
        out["pg_duration_s"] = DUR
        out["pg_timers_n"] = N_TIMERS
        first = None
        for k in NODES:
            print("-- ingest, %d node(s)" % k, flush=True)
            db = ingest(pg, k, tmp)
            first = first or db
        print("-- raw COPY of the same rows", flush=True)
        copy_baseline(pg, first, tmp)
        for k in NODES:
            print("-- timers, %d node(s)" % k, flush=True)
            timers(pg, k, tmp)
        print("-- pg-boss", flush=True)
        pgboss(pg)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    with open(OUT, "w") as f:
        for k, v in out.items():
            f.write("%s=%s\n" % (k, v))
    for k, v in out.items():
        print("%s=%s" % (k, v))


if __name__ == "__main__":
    main()
