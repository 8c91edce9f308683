#!/usr/bin/env bash
# The main job: the sync server and command centre on the embedded SQLite, holding Ninh Thuận's
# campaign as a synthetic demo data set — the real 2023 units (65 communes), 319,284 accounts of
# which 58,866 activated at the start, officers, quotas, and weeks of field activity — with its
# dashboard open at http://127.0.0.1:$PORT/ (demo mode: signed in as province command, with a
# banner saying so).
#
# Usage: scripts/demo.sh [--check]
#   (default) build, load or reuse the demo data set, print the province's figures, and keep
#             serving until Ctrl-C.
#   --check   the same, then stop the server and exit (a smoke run of the main job).
# Environment: DOORSTEP_DEMO_PORT (default 8080), DOORSTEP_DEMO_DIR (default target/demo; the
# data set is built there once, about a minute or two, and reused by the next run).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-}
case "$MODE" in "" | --check) ;; *) echo "usage: scripts/demo.sh [--check]" >&2; exit 2 ;; esac
PORT=${DOORSTEP_DEMO_PORT:-8080}
WORK=${DOORSTEP_DEMO_DIR:-target/demo}
mkdir -p "$WORK"
DB="$WORK/demo.db"

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
echo "== building (release)"
cargo build --release --locked -p doorstep-server --bin doorstep
BIN=target/release/doorstep

echo "== serving the demo on 127.0.0.1:$PORT (database $DB; first run builds it)"
"$BIN" --db "$DB" serve --demo --listen "127.0.0.1:$PORT" 2> >(tee "$WORK/server.log" >&2) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT

get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())' "$1"; }
# Building the data set takes a minute or two on a small machine; the server listens after.
for _ in $(seq 1 1200); do
  get "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "the server stopped; see $WORK/server.log" >&2; exit 1; }
  sleep 0.5
done
get "http://127.0.0.1:$PORT/health" >/dev/null

echo "== the province as the dashboard shows it"
python3 - "http://127.0.0.1:$PORT/api/v1/report?unit=58" <<'PY'
import json, sys, urllib.request
r = json.load(urllib.request.urlopen(sys.argv[1], timeout=60))
t, c = r["totals"], r["campaign"]
pct = t.get("percent_of_target")
print(f"campaign   {c['name']} ({c['start']} to {c['end']}), day shown {r['date']}")
print(f"accounts   {t['accounts']:,}")
print(f"activated  {t['activated']:,} (level 1: {t['level1_activated']:,}, level 2: {t['level2_activated']:,})")
target = f"{t['target']:,}" if t.get("target") is not None else "-"
print(f"target     {target}" + (f" ({pct:.1f} % reached)" if pct is not None else ""))
print("districts  " + ", ".join(f"{x['name']} {x['activated']:,}" for x in r["children"]))
PY
echo
echo "dashboard: http://127.0.0.1:$PORT/   (English: http://127.0.0.1:$PORT/?lang=en)"
echo "daily report: http://127.0.0.1:$PORT/reports/daily.xlsx?unit=58"
if [ "$MODE" = "--check" ]; then
  exit 0
fi
echo "serving until Ctrl-C"
wait $SERVER
