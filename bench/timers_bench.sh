#!/usr/bin/env bash
# Timer benchmark: Consonance's durable timers against the job queues a Node
# shop would use -- BullMQ on Redis and pg-boss on PostgreSQL -- with the same
# workload in the same run: schedule N delayed messages that all come due at
# one instant, then fire them.
#
#   bench/timers_bench.sh BUILD_DIR OUT_FILE N
#
# Redis runs with its defaults (RDB snapshots, no append-only file: not
# durable per job); PostgreSQL with its defaults (fsync, synchronous_commit:
# durable); Consonance on SQLite with WAL and synchronous=FULL (durable).
# Needs redis-server, PostgreSQL and node with bench/peers installed
# (scripts/install-deps.sh --bench).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
OUT=$2
N=$3
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/cs-timers-XXXXXX")
chmod 755 "$TMP" # PostgreSQL runs as its own user
REDIS_PID=""
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PGDATA="$TMP/pg/data"
RUNAS=()
[ "$(id -u)" = 0 ] && RUNAS=(runuser -u postgres --)
cleanup() {
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
  [ -d "$PGDATA" ] && "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

: > "$OUT"
echo "timers_n=$N" >> "$OUT"

echo "-- consonance"
mkdir -p "$TMP/cs"
"$BUILD/bench/bench_timers" "$TMP/cs" "$N" 2>/dev/null | tee -a "$OUT"
rm -rf "$TMP/cs"

echo "-- bullmq on redis"
RPORT=$(free_port)
mkdir -p "$TMP/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$TMP/redis" --daemonize no \
  --maxmemory 0 --loglevel warning > "$TMP/redis/log" 2>&1 &
REDIS_PID=$!
sleep 1
node "$HERE/peers/timers.mjs" bullmq "$N" "$RPORT" | tee -a "$OUT"
echo "redis_version=$(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/')" >> "$OUT"
kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=""

echo "-- pg-boss on postgresql"
PPORT=$(free_port)
mkdir -p "$TMP/pg"
[ "$(id -u)" = 0 ] && chown postgres "$TMP/pg"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDATA" -A trust -U bench >/dev/null
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/pg/log" -w \
  -o "-p $PPORT -k $TMP/pg -c listen_addresses=127.0.0.1" start >/dev/null
"$PGBIN/psql" -h 127.0.0.1 -p "$PPORT" -U bench -d postgres -qc "CREATE DATABASE bench"
node "$HERE/peers/timers.mjs" pgboss "$N" "postgres://bench@127.0.0.1:$PPORT/bench" | tee -a "$OUT"
echo "postgres_version=$("$PGBIN/postgres" --version | awk '{print $3}')" >> "$OUT"
echo "bullmq_version=$(node -p "require('$HERE/peers/node_modules/bullmq/package.json').version")" >> "$OUT"
echo "pgboss_version=$(node -p "require('$HERE/peers/node_modules/pg-boss/package.json').version")" >> "$OUT"
