#!/usr/bin/env bash
# The Kotlin quick start (docs/examples/kotlin-quickstart) run end to end, as a developer new to
# the project would: builds the library and the Kotlin bindings (debug) and the `doorstep`
# server, prepares a fresh server database with the console commands (Ninh Thuận's units, a
# village, a campaign, a field officer with the village assigned and a day quota, the example's
# roster.csv, an enrolment code), serves it on a free loopback port (HTTPS with a CA made by
# openssl, handed to the quick start as its pin; plain HTTP if openssl is missing), builds and
# runs the quick start with Maven (its pom.xml; JNA finds the library through
# -Djna.library.path), checks what it printed, checks on the server's side that its work arrived
# (`device list`, `report daily --format json`), then revokes the device and checks that a
# second run is told to enrol again.
# Needs a JDK (17+) and Maven; the first run downloads the Kotlin compiler, JNA,
# kotlinx-coroutines and exec-maven-plugin from Maven Central.
# Usage: scripts/test-quickstart.sh   (installs a JDK and Maven with apt-get if missing and root)
# Last line: `quickstart: N passed, M failed, 0 skipped`; exits non-zero if a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/jvm-env.sh
. scripts/jvm-env.sh
EXAMPLE=$ROOT/docs/examples/kotlin-quickstart

scripts/bindings.sh --debug
cargo build --locked -p doorstep-server --bin doorstep
BIN=$TARGET_DIR/debug/doorstep

WORK=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "quickstart: $*" >&2; exit 1; }
DB=$WORK/server.db
doorstep() { "$BIN" --db "$DB" "$@" 2>>"$WORK/console.err" || die "doorstep $* failed: $(tail -n 5 "$WORK/console.err")"; }

# --- The station's side: units, a village, a campaign, an officer and their area, a roster. ---
VILLAGE=22738-01 # a quarter of Phường Đô Vinh (22738), as in the example's roster.csv
doorstep units import data/ninh-thuan-2023-units.csv >/dev/null
doorstep units add --code "$VILLAGE" --parent 22738 --level village --kind "khu phố" --name "Khu phố 1" >/dev/null
CAMPAIGN=$(doorstep campaign add --name "Cao điểm 80 ngày đêm" --start "$(date -u -d '-10 days' +%F)" \
  --end "$(date -u -d '+70 days' +%F)" --target 264720 --unit 58)
OFFICER=$(doorstep officer add --name "CSKV Trần Văn Bình" --role field --unit 22738)
doorstep assign --officer "$OFFICER" --village "$VILLAGE" >/dev/null
doorstep roster import --campaign "$CAMPAIGN" "$EXAMPLE/roster.csv" >"$WORK/roster.out"
TODAY=$(date -u -d "+7 hours" +%F) # Vietnam: UTC+7, no summer time
doorstep quota set --campaign "$CAMPAIGN" --officer "$OFFICER" --period "$TODAY" --metric visits --target 10 >/dev/null
CODE=$(doorstep enrol-code --officer "$OFFICER")
[ -n "$CODE" ] || die "no enrolment code"

# --- HTTPS with the station's own certificate authority, as a deployment off loopback needs:
# a CA and a server certificate for 127.0.0.1, made with openssl; the quick start gets the CA
# (the "pin" handed out with the enrolment code). Without openssl: plain HTTP on loopback. ---
TLS=()
SCHEME=http
CA_PEM=
if command -v openssl >/dev/null 2>&1; then
  cat >"$WORK/tls.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Doorstep quick start CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
authorityKeyIdentifier = keyid
CNF
  (
    cd "$WORK"
    openssl req -x509 -config tls.cnf -extensions ca -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
      -nodes -days 2 -keyout ca.key -out ca.pem
    openssl req -new -config tls.cnf -subj "/CN=127.0.0.1" -newkey ec \
      -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile tls.cnf -extensions leaf -out server.pem
  ) >"$WORK/openssl.log" 2>&1 || die "openssl could not make the certificates: $(tail -n 5 "$WORK/openssl.log")"
  TLS=(--tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key")
  SCHEME=https
  CA_PEM=$WORK/ca.pem
fi

# --- `doorstep serve` on a free loopback port (another one if that port is taken meanwhile). ---
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
for attempt in 1 2 3 4 5; do
  PORT=$(shuf -i 20000-60000 -n 1)
  if listening; then continue; fi # taken
  "$BIN" --db "$DB" serve --listen "127.0.0.1:$PORT" "${TLS[@]}" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 150); do
    if listening || ! kill -0 "$SERVER" 2>/dev/null; then break; fi
    sleep 0.2
  done
  if kill -0 "$SERVER" 2>/dev/null && listening; then break; fi
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=
  echo "quickstart: the server did not start on port $PORT (attempt $attempt):" >&2
  tail -n 5 "$WORK/server.log" >&2
done
[ -n "$SERVER" ] || die "the server could not be started"
URL=$SCHEME://127.0.0.1:$PORT
echo "server $URL (database $DB), officer $OFFICER, campaign $CAMPAIGN"

# --- The quick start, built and run with Maven. ---
PHONE=$WORK/phone.db
# The phone store's key (64 hex digits): a phone takes it from its platform key store.
STORE_KEY=$(printf '5a%.0s' $(seq 32))
quickstart() { # quickstart OUT GOALS...: run the quick start's Maven goals, its output in OUT
  local out=$1
  shift
  (
    cd "$EXAMPLE"
    DOORSTEP_SERVER=$URL DOORSTEP_CODE=$CODE DOORSTEP_STORE=$PHONE DOORSTEP_STORE_KEY=$STORE_KEY DOORSTEP_CA_PEM=$CA_PEM \
      mvn -q -B "$@" \
      -Ddoorstep.root="$ROOT" \
      -Ddoorstep.bindings="$TARGET_DIR/bindings/kotlin" \
      -Ddoorstep.lib="$TARGET_DIR/bindings/lib"
  ) >"$out" 2>&1
  local status=$?
  # The program's output, and Maven's words, without the stack trace Maven adds to a
  # non-zero exit.
  grep -v -E '^[[:space:]]+at |^org\.apache\.commons\.exec\.' "$out" || true
  return "$status"
}
started=$(date +%s)
STATUS=0
quickstart "$WORK/day.out" compile exec:exec || STATUS=$?
echo
echo "quick start (Maven build and run): $(($(date +%s) - started)) s, exit code $STATUS"

# --- Checks. ---
PASSED=0
FAILED=0
check() { # check "what" command...
  local what=$1
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
    echo "ok   $what"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $what"
  fi
}
LINE=$(grep '^QUICKSTART ' "$WORK/day.out" | tail -n 1 || true)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$LINE"; }
is() { [ "$(field "$1")" = "$2" ]; }
has_handled() { case ",$(field handled)," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

check "the quick start exits with 0" test "$STATUS" = 0
check "it prints its summary line" test -n "$LINE"
check "it lists the officer's 3 households" is households 3
check "it records 3 visits" is visits 3
check "it records 4 assistance steps" is assists 4
check "it edits 1 phone number" is edits 1
check "its first sync pulls the area" test "$(field pulled)" -gt 0 2>/dev/null
check "8 operations wait to be sent before the second sync" is unsent_before 8
check "its sync with no coverage is cancelled" is cancelled true
check "its second sync pushes the 8 operations" is pushed 8
check "the server refuses none" is refused 0
check "nothing waits to be sent after it" is unsent_after 0
KINDS="Storage WrongKey Network CodeRefused NotFound InvalidInput Closed"
[ -n "$CA_PEM" ] && KINDS="$KINDS UntrustedServer"
for kind in $KINDS; do
  check "it meets and handles DoorstepException.$kind" has_handled "$kind"
done

# The server's side: the device's 8 operations acknowledged, and the officer's daily report (the
# dashboard's numbers) counting the day's work.
console() { "$BIN" --db "$DB" "$@" 2>>"$WORK/console.err"; }
console device list >"$WORK/devices.tsv" || true
device_of_officer() { awk -F'\t' -v o="$OFFICER" -v c="$1" 'NR > 1 && $2 == o { print $c }' "$WORK/devices.tsv"; }
check "the server holds the quick start's device, its 8 operations acknowledged" test "$(device_of_officer 5)" = 8
console report daily --officer "$OFFICER" --campaign "$CAMPAIGN" --date "$TODAY" \
  --format json --out "$WORK/report.json" || true
figure() { # figure OBJECT KEY: a number of the report's first "OBJECT":{...}
  grep -o "\"$1\":{[^{}]*}" "$WORK/report.json" 2>/dev/null | head -n 1 | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}
check "the server's report counts today's 3 visits" test "$(figure today visits)" = 3
check "the server's report counts 1 level-1 activation today" test "$(figure today level1_activated)" = 1
check "the server's report counts 1 level-2 application today" test "$(figure today level2_received)" = 1
check "the server's report shows the OTP blocker" test "$(figure blockers otp_not_received)" = 1

# The station revokes the phone; the quick start, run again with its saved token, syncs once
# more: the server's signed wipe order makes the store push what it still may, then erase its
# residents (SyncReport.wiped); the quick start says so and asks to enrol again (exit code 3).
# (DoorstepException.ReEnrol is for a token the server does not know at all.)
DEVICE=$(device_of_officer 1)
STATUS=0
if [ -n "$DEVICE" ] && console device revoke "$DEVICE" >/dev/null; then
  quickstart "$WORK/revoked.out" exec:exec || STATUS=$?
fi
LINE=$(grep '^QUICKSTART ' "$WORK/revoked.out" 2>/dev/null | tail -n 1 || true)
# (Maven turns the program's exit code 3 into its own 1, saying "Exit value: 3".)
asks_to_enrol() {
  [ "$STATUS" != 0 ] && grep -q '^QUICKSTART stopped=enrol-again' "$WORK/revoked.out" &&
    grep -q 'Exit value: 3' "$WORK/revoked.out"
}
check "once revoked, a second run stops and asks to enrol again (exit code 3)" asks_to_enrol
check "the revoked phone's sync reports its store wiped" grep -q '^QUICKSTART stopped=enrol-again wiped=true' "$WORK/revoked.out"

kill "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
SERVER=

if [ "$FAILED" -gt 0 ]; then
  echo "-- server log" >&2
  tail -n 30 "$WORK/server.log" >&2 || true
  echo "-- report" >&2
  head -c 3000 "$WORK/report.json" >&2 2>/dev/null || true
fi
echo "quickstart: $PASSED passed, $FAILED failed, 0 skipped"
[ "$FAILED" = 0 ]
