#!/usr/bin/env bash
# Issue #14's measures (tests/benches/relay.rs): a day's sync after a server restore against a
# normal day's sync, two phones exchanging a day's work each, bytes per operation of a relayed
# push against an own push; real `doorstep serve` processes on loopback, medians of 7 rounds.
# Writes the fragment docs/bench/relay.md and its rows docs/bench/relay.rows, which
# scripts/bench.sh folds into docs/benchmarks.md (run `scripts/bench.sh --page-only` after).
# Usage: scripts/bench-relay.sh [--quick]   (--quick: 2 rounds, prints only, writes nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo bench --locked -p doorstep-tests --bench relay -- "$@"
