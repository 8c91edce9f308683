#!/usr/bin/env bash
# What a campaign's retention purge costs at province scale (issue #13): runs
# server/benches/purge.rs on a copy of the dashboard benchmark's province store (built once by
# `cargo bench -p doorstep-server --bench dashboard`, cached in target/bench-dashboard) and
# writes docs/bench/purge.md. A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/bench/purge.md
tmp=$(mktemp)
# The source measured: as it stands when the build starts.
source="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' plus uncommitted changes')"
cargo bench -p doorstep-server --bench purge --locked > "$tmp"
rows="${out%.md}.rows"
sed -n 's/^ROW| /| /p' "$tmp" > "$rows"
{
  grep -v '^ROW| ' "$tmp"
  echo
  echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC'), source at $source."
} > "$out"
rm -f "$tmp"
echo "wrote $out"
