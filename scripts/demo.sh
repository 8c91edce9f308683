#!/usr/bin/env bash
# The main job (until the command centre's dashboard exists): a sync server holding Ninh Thuận's
# real units, a commune's roster and an officer; a phone enrols, pulls its area, works a
# morning of visits offline, then syncs. Usage: scripts/demo.sh [--keep]
#   --keep: leave the server running afterwards (http://127.0.0.1:$DOORSTEP_DEMO_PORT).
# Environment: DOORSTEP_DEMO_PORT (default 8080), DOORSTEP_DEMO_DIR (default a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=${1:-}
PORT=${DOORSTEP_DEMO_PORT:-8080}
WORK=${DOORSTEP_DEMO_DIR:-$(mktemp -d)}
DB="$WORK/doorstep.db"
COMMUNE=22852 # Xã Phương Hải, Huyện Ninh Hải

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
echo "== building (release)"
cargo build --release --locked -p doorstep-server --bin doorstep
cargo build --release --locked -p doorstep-core --example field_day
BIN=target/release/doorstep
PHONE=target/release/examples/field_day
d() { "$BIN" --db "$DB" "$@"; }

echo "== commune station: reference data, roster, officer ($WORK)"
d units import data/ninh-thuan-2023-units.csv
for v in 1 2 3 4 5 6; do
  d units add --code "$COMMUNE-0$v" --parent "$COMMUNE" --level village --kind thôn --name "Thôn $v" >/dev/null
done
CAMPAIGN=$(d campaign add --name "Cao điểm 80 ngày đêm — VNeID" --start "$(date +%F)" \
  --end "$(date -d '+80 days' +%F)" --target 264720 --unit 58)
"$PHONE" --write-roster "$WORK/roster.csv" >/dev/null
d roster import --campaign "$CAMPAIGN" "$WORK/roster.csv" | head -4
OFFICER=$(d officer add --name "CSKV Trần Văn Bình" --role field --unit "$COMMUNE")
d assign --officer "$OFFICER" --village "$COMMUNE-01" >/dev/null
d assign --officer "$OFFICER" --village "$COMMUNE-02" >/dev/null
CODE=$(d enrol-code --officer "$OFFICER" 2>/dev/null)

echo "== server on 127.0.0.1:$PORT"
d serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap '[ -z "$KEEP" ] && kill $SERVER 2>/dev/null || true' EXIT
get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
for _ in $(seq 1 50); do
  get "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
get "http://127.0.0.1:$PORT/health" >/dev/null

echo "== phone: enrol, pull, work offline, sync"
"$PHONE" --server "http://127.0.0.1:$PORT" --code "$CODE" --store "$WORK/phone.db"

echo "== server metrics"
get "http://127.0.0.1:$PORT/metrics" | grep -E '^doorstep_(ops|devices|requests)' | head -12 || true
if [ -n "$KEEP" ]; then
  echo "server still running (pid $SERVER) on http://127.0.0.1:$PORT; database $DB"
  trap - EXIT
fi
