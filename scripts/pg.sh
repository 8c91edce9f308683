#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks.
#
#   scripts/pg.sh start    initdb + pg_ctl start on a free loopback port; prints the URL
#   scripts/pg.sh url      the URL of the running cluster
#   scripts/pg.sh down     stop the server, keep its data (a restart test brings it back)
#   scripts/pg.sh up       start it again on the same port and data
#   scripts/pg.sh stop     stop it and remove its data
#   scripts/pg.sh ca       the PEM file of the certificate authority its TLS certificate is from
#
# The cluster lives in a fresh directory under /tmp, owned by an unprivileged user
# (PostgreSQL refuses to run as root): `postgres` if it exists, else `doorstep-pg`, created.
# Its state (directory, port, binaries, user) is kept in $DOORSTEP_PG_STATE (default
# target/pg.env), so several clusters can run side by side. Installs PostgreSQL (apt) if no
# binaries are found. Authentication is `trust` on 127.0.0.1 only: a test cluster, no password.
# `fsync` is off unless DOORSTEP_PG_FSYNC=on (the benchmarks turn it on). TLS is on, with a
# certificate for 127.0.0.1 and localhost from a CA made for the cluster (openssl): clients
# connect without TLS by default, or with `sslmode=verify-full&sslrootcert=$(scripts/pg.sh ca)`.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${DOORSTEP_PG_STATE:-$PWD/target/pg.env}"

find_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ] && command -v pg_config >/dev/null 2>&1; then d=$(pg_config --bindir); fi
  echo "$d"
}

as_user() {
  # Run a command as the cluster's owner (root cannot run PostgreSQL).
  if [ "$(id -u)" = 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi
}

load() {
  [ -f "$STATE" ] || { echo "pg.sh: no cluster (no $STATE); run scripts/pg.sh start" >&2; exit 1; }
  # shellcheck disable=SC1090
  . "$STATE"
}

start() {
  if [ -f "$STATE" ]; then
    echo "pg.sh: a cluster is already recorded in $STATE; scripts/pg.sh stop first" >&2
    exit 1
  fi
  PGBIN=$(find_bin)
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "pg.sh: installing PostgreSQL" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      PGBIN=$(find_bin)
    fi
    [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || { echo "pg.sh: PostgreSQL binaries not found" >&2; exit 1; }
  fi
  PGUSER_OS=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then
      PGUSER_OS=postgres
    else
      id doorstep-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin doorstep-pg
      PGUSER_OS=doorstep-pg
    fi
  fi
  PGDIR=$(mktemp -d /tmp/doorstep-pg.XXXXXX)
  chmod 700 "$PGDIR"
  [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$PGDIR"
  PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$(dirname "$STATE")"
  printf 'PGBIN=%q\nPGDIR=%q\nPGPORT=%q\nPGUSER_OS=%q\n' "$PGBIN" "$PGDIR" "$PGPORT" "$PGUSER_OS" > "$STATE"
  as_user "$PGBIN/initdb" -D "$PGDIR/data" -U doorstep --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log" >&2; rm -rf "$PGDIR" "$STATE"; exit 1; }
  make_tls || { rm -rf "$PGDIR" "$STATE"; exit 1; }
  up
  url
}

# A CA and a server certificate signed by it (P-256, two days), in $PGDIR/tls.
make_tls() {
  if ! command -v openssl >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "pg.sh: installing openssl" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
    fi
    command -v openssl >/dev/null 2>&1 || { echo "pg.sh: openssl not found (needed for the cluster's TLS certificate)" >&2; return 1; }
  fi
  local t="$PGDIR/tls"
  mkdir -p "$t"
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=Doorstep test cluster CA" -keyout "$t/ca.key" -out "$t/ca.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
      -keyout "$t/server.key" -out "$t/server.csr" &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$t/server.ext" &&
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
      -days 2 -extfile "$t/server.ext" -out "$t/server.crt"
  } >"$PGDIR/tls.log" 2>&1 || { cat "$PGDIR/tls.log" >&2; return 1; }
  chmod 600 "$t/server.key" "$t/ca.key"
  chmod 644 "$t/ca.crt"
  [ "$(id -u)" = 0 ] && chown -R "$PGUSER_OS" "$t"
  chmod 755 "$t"
}

up() {
  load
  local tls=""
  if [ -f "$PGDIR/tls/server.crt" ]; then
    tls="-c ssl=on -c ssl_cert_file=$PGDIR/tls/server.crt -c ssl_key_file=$PGDIR/tls/server.key"
  fi
  # fsync off by default: a test cluster; the restart test stops it cleanly (-m fast), not by
  # power loss.
  local fsync="${DOORSTEP_PG_FSYNC:-off}"
  as_user "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=300 $tls" \
    start >/dev/null || { tail -n 30 "$PGDIR/server.log" >&2; exit 1; }
}

down() {
  load
  as_user "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null
}

stop() {
  [ -f "$STATE" ] || exit 0
  load
  if [ -f "$PGDIR/data/postmaster.pid" ]; then
    as_user "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  case "$PGDIR" in /tmp/doorstep-pg.*) rm -rf "$PGDIR" ;; esac
  rm -f "$STATE"
}

url() {
  load
  echo "postgresql://doorstep@127.0.0.1:$PGPORT/postgres"
}

ca() {
  load
  [ -f "$PGDIR/tls/ca.crt" ] || { echo "pg.sh: this cluster has no TLS certificate" >&2; exit 1; }
  echo "$PGDIR/tls/ca.crt"
}

case "${1:-}" in
  start) start ;;
  url) url ;;
  up) up ;;
  down) down ;;
  stop) stop ;;
  ca) ca ;;
  *) echo "usage: scripts/pg.sh start|url|up|down|stop|ca" >&2; exit 2 ;;
esac
