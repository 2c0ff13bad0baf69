#!/usr/bin/env bash
# Set up and run the main job: install dependencies, build, load a German demo
# shop into the embedded SQLite store (first run only), and run the daemon.
#
#   ./scripts/run-demo.sh                 serve on http://127.0.0.1:8080
#   PORT=9000 ./scripts/run-demo.sh       another port
#   CS_DEMO_CUSTOMERS=2000 ./scripts/run-demo.sh   a bigger shop (first run)
#
# State lives in var/demo/ (delete it to start over). The API key with all
# scopes is written to var/demo/api-key on the first start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

./scripts/install-deps.sh
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j "$(nproc 2>/dev/null || echo 2)" --target consonance

BIN="$ROOT/build/consonance"
DATA="$ROOT/var/demo"
mkdir -p "$DATA"
export CONSONANCE_STORE="sqlite:$DATA/consonance.db"
export CONSONANCE_BOOTSTRAP_KEY_FILE="$DATA/api-key"
export CONSONANCE_PORT="${PORT:-8080}"

if [ ! -f "$DATA/consonance.db" ]; then
  echo "run-demo: generating the demo shop (first run)"
  "$BIN" demo --config "$ROOT/etc/consonance.conf" --customers "${CS_DEMO_CUSTOMERS:-500}" --months 6
fi

cat <<MSG
run-demo: starting the daemon on http://127.0.0.1:$CONSONANCE_PORT (Ctrl-C stops it)
run-demo: API key (all scopes) in $DATA/api-key once started; try
  curl -H "Authorization: Bearer \$(cat $DATA/api-key)" 'http://127.0.0.1:$CONSONANCE_PORT/v1/events?limit=5'
MSG
exec "$BIN" serve --config "$ROOT/etc/consonance.conf"
