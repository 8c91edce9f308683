#!/usr/bin/env bash
# README.md's "Build and run the server by hand", replayed as written so that the README cannot
# drift: the two shell blocks that follow the `scripts/test-readme-console.sh runs the next
# block` markers are taken from README.md. The build block runs from the repository's root in
# debug (`--release` dropped, target/release read as target/debug); the console block runs line
# by line in the same shell (its first line makes a fresh scratch directory), on a fresh
# database; its `doorstep serve` line is started in the background on a free loopback port
# (DOORSTEP_LISTEN). Then /health must answer and the example phone must enrol with the printed
# code and sync. Ends with `readme: N passed, M failed, 0 skipped`; exits non-zero on a failure.
# Usage: scripts/test-readme-console.sh
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
# The console commands must use the SQLite file of the scratch directory, whatever the caller's
# environment says.
unset DOORSTEP_DB DOORSTEP_DATABASE_URL DOORSTEP_VIEW DOORSTEP_VIEW_CACHE DOORSTEP_LISTEN

passed=0
failed=0
LOG=$(mktemp)
ALL=$(mktemp)
SERVER=
SCRATCH=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ -n "$SCRATCH" ] && [ "$SCRATCH" != / ]; then rm -rf "$SCRATCH"; fi
  rm -f "$LOG" "$LOG.server" "$ALL"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL - $1"
  sed 's/^/    /' "$LOG" | head -n 20
}
finish() {
  echo "readme: $passed passed, $failed failed, 0 skipped"
  [ "$failed" -eq 0 ]
  exit
}

# The shell block after the n-th marker (1: build, 2: console), continuation lines joined.
block() {
  awk -v n="$1" '
    /<!-- scripts\/test-readme-console.sh runs the next block/ { m++; next }
    m == n && !inside && /^```sh$/ { inside = 1; next }
    m == n && inside && /^```$/ { exit }
    m == n && inside { print }
  ' README.md | sed -e ':a' -e '/\\$/N; s/\\\n//; ta'
}
BUILD=$(block 1)
CONSOLE=$(block 2)
if [ -z "$BUILD" ] || [ -z "$CONSOLE" ]; then
  echo "README.md: the blocks after the scripts/test-readme-console.sh markers are missing" >&2
  failed=1
  finish
fi

# Runs one README line in this shell (so that `cd`, `export` and variables carry over).
run() {
  if eval "$1" </dev/null >"$LOG" 2>&1; then
    cat "$LOG" >>"$ALL"
    pass "$1"
    sed 's/^/    /' "$LOG" | tail -n 5
  else
    fail "$1"
    return 1
  fi
}

# 1. Build, in debug.
while IFS= read -r line <&3; do
  [ -n "$line" ] || continue
  line=${line//' --release'/}
  line=${line//target\/release/target\/debug}
  line=${line//'}/release'/'}/debug'}
  run "$line" || finish
done 3<<<"$BUILD"

# 2. The console, on a fresh database; the server in the background.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DOORSTEP_LISTEN="127.0.0.1:$PORT"
START=$PWD
while IFS= read -r line <&3; do
  [ -n "$line" ] || continue
  case "$line" in
  "doorstep serve"*)
    eval "exec $line" </dev/null >"$LOG.server" 2>&1 &
    SERVER=$!
    pass "$line (started, on $DOORSTEP_LISTEN)"
    ;;
  *)
    run "$line" || finish
    ;;
  esac
  if [ -z "$SCRATCH" ] && [ "$PWD" != "$START" ]; then SCRATCH=$PWD; fi
done 3<<<"$CONSOLE"
if [ "$PWD" = "$START" ] || [ -z "$SERVER" ]; then
  echo "FAIL - the console block should enter a scratch directory and end with doorstep serve"
  failed=$((failed + 1))
  finish
fi
# The imports rejected no row.
if grep -q '^[0-9]* rows read, 0 rejected$' "$ALL" && grep -q '^[0-9]* rows: .*, 0 rejected$' "$ALL"; then
  pass "the sample units and roster import with no rejected row"
else
  cp "$ALL" "$LOG"
  fail "the sample units and roster import with no rejected row"
fi

# 3. The server answers, and a phone enrols with the printed code and syncs.
up=
for _ in $(seq 1 100); do
  if python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
    "http://$DOORSTEP_LISTEN/health" >"$LOG" 2>&1; then
    up=1
    break
  fi
  kill -0 "$SERVER" 2>/dev/null || break
  sleep 0.2
done
if [ -n "$up" ]; then pass "GET /health answers"; else
  cp "$LOG.server" "$LOG"
  fail "GET /health answers"
fi
if field_day --server "http://$DOORSTEP_LISTEN" --code "${CODE:-}" --store phone.db >"$LOG" 2>&1 &&
  grep -q '^sync: [1-9][0-9]* pushed, 0 rejected' "$LOG"; then
  pass "field_day enrols with the code, works and syncs"
  grep -E '^(enrolled|sync):' "$LOG" | sed 's/^/    /'
else
  fail "field_day enrols with the code, works and syncs"
fi
finish
