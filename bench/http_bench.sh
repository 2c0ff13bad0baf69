#!/usr/bin/env bash
# HTTP intake benchmark: wrk against `consonance serve` and, in the same run
# on the same machine, against nginx answering the same POSTs with a fixed 200.
#
#   bench/http_bench.sh BUILD_DIR OUT_FILE [DURATION_S]
#
# Writes key=value lines to OUT_FILE. Needs wrk and nginx (scripts/install-deps.sh).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
OUT=$2
DUR=${3:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
LUA="$HERE/http/events.lua"
CONNS_LIST=${CS_BENCH_CONNS:-64 256}
ROUNDS=${CS_BENCH_ROUNDS:-3}
TMP=$(mktemp -d)
DAEMON_PID=""
NGINX_PID=""
cleanup() {
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_wrk() { # url batch -> "reqs_per_s p50_us p99_us errors"
  local url=$1 batch=$2
  local res
  res=$(CS_BATCH=$batch CS_KEY="${KEY:-}" wrk -t2 -c"$CONNS" -d"${DUR}s" --timeout 10s -s "$LUA" "$url" | grep CS_RESULT)
  local reqs dur p50 p99 errs
  reqs=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$res")
  dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$res")
  errs=$(sed -E 's/.*errors_status=([0-9]+).*/\1/' <<<"$res")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$res")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$res")
  python3 -c "print('%.0f %s %s %s' % ($reqs * 1e6 / $dur, $p50, $p99, $errs))"
}

# ---- nginx: the same POSTs answered with a fixed 200 ----
NPORT=$(free_port)
mkdir -p "$TMP/nginx/logs"
USERLINE=""
[ "$(id -u)" = 0 ] && USERLINE="user root;"
cat > "$TMP/nginx/nginx.conf" <<CONF
$USERLINE
worker_processes 2;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  client_max_body_size 16m;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NPORT backlog=4096;
    location /v1/events {
      default_type application/json;
      return 200 '{"status":"accepted"}';
    }
  }
}
CONF

# ---- consonance: durable store in a temp dir ----
start_daemon() {
  rm -rf "$TMP/d"; mkdir -p "$TMP/d"
  CONSONANCE_STORE="sqlite:$TMP/d/bench.db" CONSONANCE_PORT=0 \
  CONSONANCE_BOOTSTRAP_KEY_FILE="$TMP/d/key" CONSONANCE_LOG_LEVEL=info \
    "$BUILD/consonance" serve 2>"$TMP/d/log" &
  DAEMON_PID=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$TMP/d/log" 2>/dev/null && break
    sleep 0.1
  done
  URL=$(grep -o 'http://[0-9.:]*' "$TMP/d/log" | head -1)
  KEY=$(cat "$TMP/d/key")
}
stop_daemon() { kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=""; }

: > "$OUT"
echo "http_duration_s=$DUR" >> "$OUT"
echo "http_conns_list=${CONNS_LIST}" >> "$OUT"
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
sum() { printf '%s\n' "$@" | awk '{s+=$1} END {print s+0}'; }

# Each measurement is repeated ROUNDS times, interleaved (nginx, single,
# batch, nginx, ...) so drift on a shared machine hits all alike; the
# median is reported, the non-2xx answers are summed.
for CONNS in $CONNS_LIST; do
  declare -a NR NP5 NP9 NE SR SP5 SP9 SE BR BP5 BP9 BE
  NR=(); NP5=(); NP9=(); NE=(); SR=(); SP5=(); SP9=(); SE=(); BR=(); BP5=(); BP9=(); BE=()
  for _round in $(seq "$ROUNDS"); do
    nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
    NGINX_PID=$!
    sleep 1
    read -r a b c d < <(run_wrk "http://127.0.0.1:$NPORT" 1)
    NR+=("$a"); NP5+=("$b"); NP9+=("$c"); NE+=("$d")
    kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""

    start_daemon
    read -r a b c d < <(run_wrk "$URL" 1)
    SR+=("$a"); SP5+=("$b"); SP9+=("$c"); SE+=("$d")
    stop_daemon
    start_daemon
    read -r a b c d < <(run_wrk "$URL" 100)
    BR+=("$a"); BP5+=("$b"); BP9+=("$c"); BE+=("$d")
    stop_daemon
  done
  B_RPS=$(median "${BR[@]}")
  cat >> "$OUT" <<RES
c${CONNS}_rounds=$ROUNDS
c${CONNS}_nginx_rps=$(median "${NR[@]}")
c${CONNS}_nginx_rps_all=$(echo "${NR[@]}" | tr ' ' ,)
c${CONNS}_nginx_p50_us=$(median "${NP5[@]}")
c${CONNS}_nginx_p99_us=$(median "${NP9[@]}")
c${CONNS}_nginx_errors=$(sum "${NE[@]}")
c${CONNS}_single_rps=$(median "${SR[@]}")
c${CONNS}_single_rps_all=$(echo "${SR[@]}" | tr ' ' ,)
c${CONNS}_single_p50_us=$(median "${SP5[@]}")
c${CONNS}_single_p99_us=$(median "${SP9[@]}")
c${CONNS}_single_errors=$(sum "${SE[@]}")
c${CONNS}_batch100_rps=$B_RPS
c${CONNS}_batch100_rps_all=$(echo "${BR[@]}" | tr ' ' ,)
c${CONNS}_batch100_events_per_s=$((B_RPS * 100))
c${CONNS}_batch100_p50_us=$(median "${BP5[@]}")
c${CONNS}_batch100_p99_us=$(median "${BP9[@]}")
c${CONNS}_batch100_errors=$(sum "${BE[@]}")
RES
done
cat "$OUT"
