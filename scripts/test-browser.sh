#!/usr/bin/env bash
# The command centre in a real browser: headless Chromium driven over the DevTools protocol
# (scripts/browser-test.py) against a real `doorstep serve`: sign in, drill down province ->
# district -> commune -> officer, switch language, download the daily XLSX, a commune lead
# refused another commune. Screenshots go to target/browser-artefacts/.
# Installs Debian's chromium and the websocket-client Python package if missing.
# Closing line: `browser: N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."

ART="${CARGO_TARGET_DIR:-target}/browser-artefacts"
rm -rf "$ART"
mkdir -p "$ART"

CHROME="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$CHROME" ]; then
  echo "installing chromium (apt-get)" >&2
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
    CHROME="$(command -v chromium)"
  else
    echo "chromium could not be installed: browser test skipped" >&2
    echo "browser: 0 passed, 0 failed, 1 skipped"
    exit 0
  fi
fi
python3 -c 'import websocket' 2>/dev/null || python3 -m pip install -q websocket-client

cargo build --locked -q -p doorstep-server --bin doorstep
BIN="${CARGO_TARGET_DIR:-target}/debug/doorstep"
WORK="$(mktemp -d)"
SERVER_PID=""
CHROME_PID=""
cleanup() {
  if [ -n "$CHROME_PID" ]; then kill "$CHROME_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  # Chromium's helper processes can still be writing its profile for a moment after the main
  # process exits: retry, and never let cleanup turn a passing run into a failure.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    rm -rf "$WORK" 2>/dev/null && break
    sleep 0.5
  done
  return 0
}
trap cleanup EXIT

export DOORSTEP_DB="$WORK/doorstep.db"
d() { "$BIN" "$@"; }
d units import data/ninh-thuan-2023-units.csv >/dev/null
for v in 22738-01 22738-02 22741-01; do
  d units add --code "$v" --parent "${v%-*}" --level village --kind "khu phố" --name "Khu phố ${v#*-}" >/dev/null
done
CAMPAIGN="$(d campaign add --name '80 ngày đêm' --start 2023-06-27 --end 2023-09-15 --target 264720 --unit 58)"
{
  echo "household_code,village_code,full_name,birth_date,account,agency"
  for i in $(seq 1 40); do
    case $((i % 4)) in 0) acc=level2_activated ;; 1) acc=level1_activated ;; *) acc=none ;; esac
    v=22738-0$((i % 2 + 1)); [ "$i" -gt 32 ] && v=22741-01
    echo "H$((i / 3)),$v,Nguyễn Văn $i,1980,$acc,"
  done
} >"$WORK/roster.csv"
d roster import --campaign "$CAMPAIGN" "$WORK/roster.csv" >/dev/null 2>&1
OFFICER="$(d officer add --name 'Cán bộ <b>Một</b>' --role field --unit 22738)"
d assign --officer "$OFFICER" --village 22738-01 >/dev/null
d quota set --campaign "$CAMPAIGN" --unit 22738 --metric level2_activated --target 30 >/dev/null
echo 'browser-pass-1234' | d user add --name prov --role province --unit 58 >/dev/null 2>&1
echo 'browser-pass-1234' | d user add --name lead --role commune_lead --unit 22741 >/dev/null 2>&1

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
CDP="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health')" 2>/dev/null && break
  sleep 0.1
done
"$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-dev-shm-usage --no-first-run --user-data-dir="$WORK/chrome" \
  --remote-debugging-port="$CDP" about:blank >"$WORK/chrome.log" 2>&1 &
CHROME_PID=$!

set +e
LEAD_USER=lead python3 scripts/browser-test.py "http://127.0.0.1:$PORT" "$CDP" "$ART" \
  prov browser-pass-1234 582 22738 22738
rc=$?
set -e
echo "screenshots: $ART" >&2
exit $rc
