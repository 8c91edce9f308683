# Sourced by scripts/test-python-client.sh and scripts/schemathesis.sh: builds `doorstep`, makes a
# fresh database with the console commands (Ninh Thuận's official units, village 22738-01 of
# commune 22738, two field officers assigned to it, a campaign around today, an enrolment code
# for each officer: CODE_A, CODE_B; the first admin's token: ADMIN_TOKEN) and serves it on 127.0.0.1:$PORT (pid $SERVER, log
# $WORK/server.log) until the sourcing script exits.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
python3 -c 'import jsonschema' 2>/dev/null || python3 -m pip install -q jsonschema
cargo build --locked -q -p doorstep-server --bin doorstep
BIN=$PWD/target/debug/doorstep

WORK=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
DB="$WORK/server.db"
doorstep() { "$BIN" --db "$DB" "$@"; }

# Ninh Thuận's official units, a village of commune 22738, two field officers assigned to it,
# and a campaign around today.
doorstep units import data/ninh-thuan-2023-units.csv >/dev/null
VILLAGE=22738-01
doorstep units add --code "$VILLAGE" --parent 22738 --level village --kind "khu phố" --name "Khu phố 1" >/dev/null
A=$(doorstep officer add --name "Cán bộ A" --role field --unit 22738)
B=$(doorstep officer add --name "Cán bộ B" --role field --unit 22738)
doorstep assign --officer "$A" --village "$VILLAGE" >/dev/null
doorstep assign --officer "$B" --village "$VILLAGE" >/dev/null
doorstep campaign add --name "Cao điểm" --start "$(date -u -d '-30 days' +%F)" \
  --end "$(date -u -d '+60 days' +%F)" --target 1000 --unit 58 >/dev/null
# The first admin (its token for the admin routes of the sync API: ADMIN_TOKEN).
ADMIN_TOKEN=$(doorstep admin bootstrap --name admin | sed -n 's/^token (shown once, keep it safe): //p')
CODE_A=$(doorstep enrol-code --officer "$A" 2>/dev/null)
CODE_B=$(doorstep enrol-code --officer "$B" 2>/dev/null)

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --db "$DB" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$PORT/health" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "the server stopped" >&2; exit 1; }
  sleep 0.2
done

