#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need, then
# formatting, lints and the whole test suite. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "toolchain"
# SQLite (SQLite3 Multiple Ciphers, ADR 0008), zstd and ring are compiled from C.
if ! command -v cc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq gcc libc6-dev >/dev/null
  else
    echo "a C compiler (cc) is needed to build SQLite, zstd and ring: install one" >&2
    exit 1
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "cargo not found: install Rust stable (https://rustup.rs) and run again" >&2
    exit 1
  fi
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
fi
cargo --version
# A clean clone builds everything once: incremental caches only cost disk there.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- PostgreSQL (issue #6): a throwaway cluster for the PostgreSQL variants of the tests. ---
step "postgresql"
scripts/pg.sh stop # a cluster left by an interrupted run
if scripts/pg.sh start; then
  trap 'scripts/pg.sh stop' EXIT
  DOORSTEP_TEST_DATABASE_URL=$(scripts/pg.sh url)
  # The CA of the cluster's TLS certificate (server/tests/pg_tls.rs).
  DOORSTEP_TEST_PG_CA=$(scripts/pg.sh ca)
  export DOORSTEP_TEST_DATABASE_URL DOORSTEP_TEST_PG_CA
elif [ -n "${CI:-}" ]; then
  echo "PostgreSQL could not be started under CI: its tests must run" >&2
  exit 1
else
  echo "PostgreSQL could not be started: its test variants are skipped" >&2
fi
# --- end PostgreSQL ---

step "tests"
cargo test --workspace --locked 2>&1 | tee target/test-output.txt

# --- PostgreSQL (issue #6): the end-to-end suite again, every server on PostgreSQL. ---
if [ -n "${DOORSTEP_TEST_DATABASE_URL:-}" ]; then
  step "end-to-end tests on PostgreSQL"
  DOORSTEP_TEST_BACKEND=postgres cargo test -p doorstep-tests --locked 2>&1 | tee -a target/test-output.txt
fi
# --- end PostgreSQL ---

step "disk after the Rust tests"
df -h . | tail -1
du -sh target 2>/dev/null || true

step "kotlin bindings on the JVM"
scripts/test-kotlin.sh 2>&1 | tee target/test-kotlin.txt

step "android demo on the JVM"
scripts/test-android.sh 2>&1 | tee target/test-android.txt

step "the Kotlin quick start (docs/examples/kotlin-quickstart) against a real server"
scripts/test-quickstart.sh 2>&1 | tee target/test-quickstart.txt

step "README: build and run the server by hand"
scripts/test-readme-console.sh 2>&1 | tee target/test-readme.txt

step "command centre in a browser"
scripts/test-browser.sh 2>&1 | tee target/test-browser.txt

step "python bindings"
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest
scripts/bindings.sh --debug
python3 -m pytest -q ffi/tests/python 2>&1 | tee target/test-python.txt

step "the wire contract: the Python example client against a real server"
scripts/test-python-client.sh 2>&1 | tee target/test-contract.txt

# One closing line for the whole run, counted from cargo's per-binary results, the Kotlin,
# Android, browser and contract summary lines and pytest's.
{
  awk '/^test result:/ { p += $4; f += $6; i += $8 } END { print p, f, i }' target/test-output.txt
  awk '/^kotlin: / { print $2, $4, $6 }' target/test-kotlin.txt
  awk '/^android: / { print $2, $4, $6 }' target/test-android.txt
  awk '/^quickstart: / { print $2, $4, $6 }' target/test-quickstart.txt
  awk '/^readme: / { print $2, $4, $6 }' target/test-readme.txt
  awk '/^browser: / { print $2, $4, $6 }' target/test-browser.txt
  awk '/^contract: / { print $2, $4, $6 }' target/test-contract.txt
  awk '/ in [0-9.]+s/ { p = 0; f = 0; s = 0
         for (k = 1; k <= NF; k++) { if ($k ~ /^passed/) p = $(k-1); if ($k ~ /^failed/) f = $(k-1); if ($k ~ /^skipped/) s = $(k-1) }
         print p + 0, f + 0, s + 0 }' target/test-python.txt
} | awk '{ p += $1; f += $2; i += $3 } END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, i }'
