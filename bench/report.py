#!/usr/bin/env python3
"""Write docs/benchmarks.md from the key=value result files of bench/run.sh."""
import datetime
import os
import platform
import subprocess
import sys


def load(path):
    vals = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            if "=" in line:
                k, v = line.strip().split("=", 1)
                vals[k] = v
    return vals


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return float("nan")


def fmt(x):
    return "n/a" if x != x else f"{x:,.0f}"


def mark(ok):
    return "met" if ok else "**not met**"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    out_dir, md = sys.argv[1], sys.argv[2]
    ing = load(os.path.join(out_dir, "ingest.txt"))
    rss = load(os.path.join(out_dir, "rss.txt"))
    http = load(os.path.join(out_dir, "http.txt"))
    sqlite_ver = subprocess.run(["sh", "-c", "pkg-config --modversion sqlite3"],
                                capture_output=True, text=True).stdout.strip()
    eng, raw = num(ing, "ingest_engine_events_per_s"), num(ing, "ingest_raw_sqlite_rows_per_s")
    ratio = eng / raw if raw else float("nan")
    n_rps, s_rps = num(http, "nginx_rps"), num(http, "single_rps")
    b_eps = num(http, "batch100_events_per_s")
    s_ratio = s_rps / n_rps if n_rps else float("nan")

    samples = sorted(((int(k.rsplit("_", 1)[1]), int(v)) for k, v in rss.items()
                      if k.startswith("rss_kib_at_")), key=lambda kv: kv[0])
    rss_rows = "\n".join(f"| {n:,} | {kib / 1024:,.1f} |" for n, kib in samples)
    growth = float("nan")
    if len(samples) >= 3:
        # growth over the second half of the run: should be ~0 once the cache is warm
        mid = samples[len(samples) // 2][1]
        growth = (samples[-1][1] - mid) / 1024.0
    cache_mib = num(rss, "rss_cache_kib") / 1024

    text = f"""# Benchmarks

Measured by `bench/run.sh` on {datetime.date.today().isoformat()}; this file is written by
`bench/report.py` from the figures of that run. Every target is a ratio against a baseline
measured in the same run on the same machine, so the figures travel between machines.

Machine: {os.cpu_count()} cores ({cpu_model()}), Linux {platform.release()}, SQLite {sqlite_ver}.

## 1. Library ingest vs raw SQLite (durable, single writer)

Method (`bench/bench_ingest.c`): {int(num(ing, 'ingest_events')):,} events of a realistic
shop mix (per order: customer upsert, order with 1-4 line items, shipment, four carrier scans,
two message statuses, a review or a ticket), produced as JSON text and submitted to the engine
in requests of 1,000, eight in flight. The engine parses and validates each event, appends it
to the log (idempotent on `event_id`) and folds it into current state (customers, orders, items,
shipments, scans, tickets, feedback, message events), committing in groups with WAL and
`synchronous=FULL`. The baseline is a raw SQLite insert of the same events as rows
(`event_id` unique, type, time, JSON body) into one table through one prepared statement, same
pragmas, same page cache, and the same number of events per transaction as the engine's group
commit used ({int(num(ing, 'ingest_events_per_commit')):,}).

| | events/s |
|---|---|
| engine (parse + validate + log + fold, durable) | {fmt(eng)} |
| raw SQLite insert of the same rows, same durability | {fmt(raw)} |
| ratio | **{ratio:.2f}x** (target >= 0.5x: {mark(ratio >= 0.5)}) |

## 2. HTTP intake (wrk, keep-alive, 2 threads, {http.get('http_conns', '?')} connections, {http.get('http_duration_s', '?')} s each)

Method (`bench/http_bench.sh`, `bench/http/events.lua`): `consonance serve` on a fresh durable
SQLite store, `POST /v1/events` with an API key, unique event ids of the same mix. nginx runs on
the same machine in the same run with two workers and answers the same POSTs with a fixed
200 (`return 200`). Every request to Consonance is acknowledged only after its group commit.

| | requests/s | events/s | p50 | p99 | non-2xx |
|---|---|---|---|---|---|
| nginx, fixed 200 | {fmt(n_rps)} | - | {num(http, 'nginx_p50_us') / 1000:.2f} ms | {num(http, 'nginx_p99_us') / 1000:.2f} ms | {http.get('nginx_errors', '?')} |
| consonance, single events | {fmt(s_rps)} | {fmt(s_rps)} | {num(http, 'single_p50_us') / 1000:.2f} ms | {num(http, 'single_p99_us') / 1000:.2f} ms | {http.get('single_errors', '?')} |
| consonance, batches of 100 (NDJSON) | {fmt(num(http, 'batch100_rps'))} | {fmt(b_eps)} | {num(http, 'batch100_p50_us') / 1000:.2f} ms | {num(http, 'batch100_p99_us') / 1000:.2f} ms | {http.get('batch100_errors', '?')} |

- Batches of 100: {fmt(b_eps)} events/s (target >= 100,000: {mark(b_eps >= 100000)}).
- Single events: {s_ratio:.2f}x nginx's requests/s (target >= 0.3x: {mark(s_ratio >= 0.3)}).

wrk, nginx and the daemon share the machine's two cores, as the issue asks.

## 3. Memory while ingesting

Method: `bench_ingest rss` ingests {int(num(rss, 'rss_events')):,} events through the engine
(same mix, durable) and reads the resident set size (`VmRSS`) after every tenth, once the queue
has drained. The writer's SQLite page cache is {cache_mib:.0f} MiB (`cache_kib`).

| events ingested | RSS (MiB) |
|---|---|
{rss_rows}

Growth over the second half of the run: {growth:+.1f} MiB (target: no growth with the number of
events beyond the configured page cache). Ingest rate in this run: {fmt(num(rss, 'rss_events_per_s'))} events/s.
"""
    with open(md, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
