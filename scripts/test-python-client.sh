#!/usr/bin/env bash
# The wire contract as a third party meets it: docs/examples/python_client.py (standard library
# only, written from docs/) against a real `doorstep serve` on a fresh database, set up with
# the console commands: units, two field officers of one village, a campaign, two enrolment
# codes. The client validates every body against docs/api/wire.schema.json (jsonschema is
# installed here if missing). Exits non-zero if any check fails.
# Usage: scripts/test-python-client.sh   (from scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/contract-world.sh
source scripts/contract-world.sh

if ! python3 docs/examples/python_client.py --server "http://127.0.0.1:$PORT" \
  --code "$CODE_A" --code-b "$CODE_B" --village "$VILLAGE"; then
  echo "-- server log" >&2
  tail -n 30 "$WORK/server.log" >&2
  exit 1
fi
