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
#
# The shipped journeys and templates are loaded; a local mail sink (Debian's
# aiosmtpd) stands in for the shop's mail server, so the messages the
# journeys send land in var/demo/maildir/new/ as files.
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

# journeys, templates and a local mail sink
export CONSONANCE_JOURNEYS="$ROOT/etc/journeys"
export CONSONANCE_TEMPLATES="$ROOT/etc/templates"
export CONSONANCE_SHOP_NAME="Waldkauz Haus & Outdoor"
export CONSONANCE_SUPPORT_EMAIL="service@waldkauz.example"
export CONSONANCE_PUBLIC_URL="http://127.0.0.1:$CONSONANCE_PORT"
[ -f "$DATA/link-secret" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DATA/link-secret"
export CONSONANCE_LINK_SECRET="$(cat "$DATA/link-secret")"
# broken delivery promises are made good with a code, up to 250 EUR a day
export CONSONANCE_COMPENSATION_BUDGET="${CONSONANCE_COMPENSATION_BUDGET:-250}"
export CONSONANCE_BRAND_COLOR="${CONSONANCE_BRAND_COLOR:-#1f4e79}"
export CONSONANCE_REASSURANCE_DE="${CONSONANCE_REASSURANCE_DE:-Alle Pakete sind versichert. Rücksendungen sind 30 Tage lang kostenlos.}"
export CONSONANCE_REASSURANCE_EN="${CONSONANCE_REASSURANCE_EN:-Every parcel is insured. Returns are free for 30 days.}"
SINK_PID=""
SMTP_PORT=${SMTP_PORT:-2525}
if /usr/bin/python3 -c "import aiosmtpd" 2>/dev/null; then
  mkdir -p "$DATA/maildir/tmp" "$DATA/maildir/new" "$DATA/maildir/cur"
  /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$DATA/maildir" &
  SINK_PID=$!
  # the first messages go out at once: let the sink listen before the daemon starts
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break
    sleep 0.1
  done
  trap '[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true' EXIT
  export CONSONANCE_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
  export CONSONANCE_SMTP_TLS=off
  export CONSONANCE_SMTP_FROM="Waldkauz Haus & Outdoor <service@waldkauz.example>"
fi

cat <<MSG
run-demo: starting the daemon on http://127.0.0.1:$CONSONANCE_PORT (Ctrl-C stops it)
run-demo: API key (all scopes) in $DATA/api-key once started; try
  curl -H "Authorization: Bearer \$(cat $DATA/api-key)" 'http://127.0.0.1:$CONSONANCE_PORT/v1/events?limit=5'
run-demo: journeys from etc/journeys; emails they send land in $DATA/maildir/new/
run-demo: the demo shop's orders are its history: journeys start with the events sent once the
  daemon runs (the README's order.placed example), so the first mail arrives after that; each
  mail carries its order's signed tracking link, and customers also find their orders at
  http://127.0.0.1:$CONSONANCE_PORT/t (order number and postcode)
MSG
"$BIN" serve --config "$ROOT/etc/consonance.conf"
