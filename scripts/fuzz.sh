#!/usr/bin/env bash
# Fuzzes every target of fuzz/ (docs/fuzzing.md) for SECONDS each (default 60), with
# libFuzzer through cargo-fuzz on nightly, installing cargo-fuzz (crates.io) if it is missing.
# New inputs that reach new code are merged into fuzz/corpus/<target>/ (commit the few worth
# keeping); a crash stops the run and leaves its input in fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [SECONDS]    (FUZZ_TARGETS="cursor roster" to fuzz only some)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-60}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
cargo +nightly fuzz build
for t in $targets; do
  printf '\n== %s (%ss, %s)\n' "$t" "$secs" "$(date +%T)"
  mkdir -p "corpus/$t" "scratch/$t"
  # New inputs go to scratch/ (the first directory); the committed corpus is read as seeds.
  cargo +nightly fuzz run "$t" "scratch/$t" "corpus/$t" -- \
    -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
  # Keep only the inputs that reach code the committed corpus does not.
  cargo +nightly fuzz run "$t" "corpus/$t" "scratch/$t" -- -merge=1 -max_len=16384
  rm -rf "scratch/$t"
done
du -sh corpus
