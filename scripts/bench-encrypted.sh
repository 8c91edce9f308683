#!/usr/bin/env bash
# The encrypted store's benchmark (core/benches/encrypted.rs): encrypted against unencrypted in
# the same run. Writes the fragment docs/bench/encrypted-store.md and its summary rows
# docs/bench/encrypted-store.rows, which scripts/bench.sh puts into docs/benchmarks.md.
# Usage: scripts/bench-encrypted.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$TARGET_DIR" docs/bench
RAW="$TARGET_DIR/bench-encrypted.txt"
cargo bench --locked -p doorstep-core --bench encrypted -- "$@" >"$RAW"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit plus uncommitted changes"
{
  echo "## Encrypted store (SQLite3 Multiple Ciphers, AEGIS-256)"
  echo
  echo "Measured $(date -u '+%Y-%m-%d') on $(uname -m), commit $commit, by"
  echo "\`scripts/bench-encrypted.sh $*\` (\`core/benches/encrypted.rs\`; ADR 0008)."
  echo
  grep -v -P '^SUMMARY\t' "$RAW" | sed 's/^## /### /'
} >docs/bench/encrypted-store.md
grep -P '^SUMMARY\t' "$RAW" |
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }' >docs/bench/encrypted-store.rows
cat docs/bench/encrypted-store.md docs/bench/encrypted-store.rows
