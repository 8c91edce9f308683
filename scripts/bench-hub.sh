#!/usr/bin/env bash
# Issue #14's hub measure (tests/benches/hub.rs): the station hub relaying a commune's day (20
# phones, 190 field actions each, taken over TCP) to a real `doorstep serve` process on
# loopback, against the phones' own syncs in the same round; medians of 5 rounds.
# Writes the fragment docs/bench/hub.md and its row docs/bench/hub.rows, which scripts/bench.sh
# folds into docs/benchmarks.md (run `scripts/bench.sh --page-only` after).
# Usage: scripts/bench-hub.sh [--quick]   (--quick: 1 round, prints only, writes nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo bench --locked -p doorstep-tests --bench hub -- "$@"
