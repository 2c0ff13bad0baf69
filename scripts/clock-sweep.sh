#!/usr/bin/env bash
# Run the test suite (on SQLite and on PostgreSQL, whose throwaway server
# runs on the moved clock too, but test_pg_outage's, whose lock timeout
# fires only on the real clock: tests/blackbox/csbb.py, PgCluster; not
# fuzzing or benchmarks) with the
# clock moved ahead to the days where dates go wrong: a holiday weekend, a
# change of summer time, Christmas Eve at midnight in Berlin, a Monday
# after a weekend. The tests compute their times from the clock, as the
# daemon does, so a test that holds only on some days of the week or the
# year fails here instead of on the day CI happens to run (libfaketime:
# every process of the run, daemon, Python, Chromium, sees the same moved
# clock, which then runs on at its normal pace).
#
#   scripts/clock-sweep.sh [BUILD_DIR] [--first | "YYYY-MM-DD HH:MM" ...]
#
# BUILD_DIR defaults to build (a release build; a sanitizer build cannot
# take libfaketime's preload). Without times, every one of the list below,
# each the next one from today (UTC); --first, the first of it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ $# -gt 0 ] && shift

LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1 || true)
if [ -z "$LIB" ]; then
  echo "clock-sweep: libfaketime not found (apt-get install faketime; scripts/install-deps.sh does)" >&2
  exit 2
fi

# the times (UTC): each the next one after two days from now
next_times() {
  python3 - <<'EOF'
import datetime as dt
import sys
sys.path.insert(0, "tests/blackbox")
from csbb import easter  # the tests' own, as they count holidays
now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
def last_sunday(y, month):
    d = dt.date(y, month, 31)
    return d - dt.timedelta(days=(d.weekday() + 1) % 7)
def first(make):  # the first of this year's and next year's still ahead
    for y in (now.year, now.year + 1):
        t = make(y)
        if t > now:
            return t
at = lambda d, hh, mm: dt.datetime(d.year, d.month, d.day, hh, mm, tzinfo=dt.timezone.utc)
monday = (now + dt.timedelta(days=(7 - now.weekday()) % 7)).date()
times = [
    # Easter Saturday 23:30 UTC: past midnight in Berlin, Good Friday behind, Easter Monday ahead
    first(lambda y: at(easter(y) - dt.timedelta(days=1), 23, 30)),
    # summer time starts at 01:00 UTC on March's last Sunday; ends on October's
    first(lambda y: at(last_sunday(y, 3), 0, 40)),
    first(lambda y: at(last_sunday(y, 10), 0, 45)),
    # Christmas Eve just before midnight in Berlin, the holidays ahead
    first(lambda y: at(dt.date(y, 12, 24), 22, 45)),
    # Ascension Thursday, with Whit Monday eleven days on
    first(lambda y: at(easter(y) + dt.timedelta(days=39), 10, 0)),
    # a Monday afternoon: the weekend's orders are due for hand-over
    at(monday, 12, 5),
]
for t in times:
    print(t.strftime("%Y-%m-%d %H:%M"))
EOF
}

if [ $# -eq 0 ] || [ "$1" = "--first" ]; then
  mapfile -t WHEN < <(next_times)
  [ "${1:-}" = "--first" ] && WHEN=("${WHEN[0]}")
else
  WHEN=("$@")
fi

JOBS=$(nproc 2>/dev/null || echo 2)
status=0
for when in "${WHEN[@]}"; do
  target=$(date -u -d "$when UTC" +%s)
  off=$(( target - $(date -u +%s) ))
  shift_by="+${off}s"
  [ "$off" -lt 0 ] && shift_by="-$(( -off ))s"
  echo "== clock-sweep: the suite at $when UTC (clock moved by $shift_by)"
  (cd "$BUILD" && LD_PRELOAD="$LIB" FAKETIME="$shift_by" \
     ctest --output-on-failure -j "$JOBS" -E '^fuzz|^bench') || status=1
done
exit $status
