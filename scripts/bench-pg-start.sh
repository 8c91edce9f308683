#!/usr/bin/env bash
# How long a new PostgreSQL instance takes to serve at province scale (issue #15): runs
# server/benches/pg_start.rs against a throwaway cluster (scripts/pg.sh) and writes
# docs/bench/pg-start.md. Needs the dashboard benchmark's province store in
# target/bench-dashboard (`cargo bench -p doorstep-server --bench dashboard` builds it once).
# About ten minutes, most of it filing 2.8 million operations into PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/pg.sh start >/dev/null 2>&1 || true
DOORSTEP_BENCH_DATABASE_URL=$(scripts/pg.sh url)
export DOORSTEP_BENCH_DATABASE_URL
out=docs/bench/pg-start.md
tmp=$(mktemp)
# The source measured: as it stands when the build starts.
source="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' plus uncommitted changes')"
cargo bench -p doorstep-server --bench pg_start --locked > "$tmp"
rows="${out%.md}.rows"
sed -n 's/^ROW| /| /p' "$tmp" > "$rows"
{
  grep -v '^ROW| ' "$tmp"
  echo
  echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC'), source at $source."
} > "$out"
rm -f "$tmp"
echo "wrote $out"
