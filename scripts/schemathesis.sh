#!/usr/bin/env bash
# Property-based tests of the sync API from its OpenAPI document (docs/api/openapi.json) with
# schemathesis (PyPI, installed here if missing), against a real `doorstep serve` on a fresh
# database set up as for the Python example client (scripts/contract-world.sh). Requests carry
# an enrolled device's token (the admin routes: the first admin's token); the routes under
# /v1/, /health and /metrics are tried (the command centre's pages need a session). Not part
# of scripts/test.sh: it takes minutes and its inputs are random.
# Usage: scripts/schemathesis.sh [SECONDS]   (default 120; any further `st run` options after it)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_BUDGET=${1:-120}
shift || true

command -v st >/dev/null 2>&1 || python3 -m pip install -q schemathesis
# shellcheck source=scripts/contract-world.sh
source scripts/contract-world.sh

TOKEN=$(python3 - "http://127.0.0.1:$PORT" "$CODE_A" <<'PY'
import sys
sys.path.insert(0, "docs/examples")
from python_client import DoorstepClient
c = DoorstepClient(sys.argv[1])
c.enrol(sys.argv[2], "schemathesis")
print(c.token)
PY
)

# The device's routes with its token, then the admin routes with the admin's; the budget is
# shared between the two runs. Both run to the end; the script fails if either found a failure.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
status=0
st run docs/api/openapi.json --url "http://127.0.0.1:$PORT" \
  --header "Authorization: Bearer $TOKEN" \
  --exclude-path-regex '^/v1/admin/' --include-path-regex '^/(v1/|health|metrics)' \
  --max-time "$((SECONDS_BUDGET / 2))" --checks "$CHECKS" "$@" || status=1
st run docs/api/openapi.json --url "http://127.0.0.1:$PORT" \
  --header "Authorization: Bearer $ADMIN_TOKEN" \
  --include-path-regex '^/v1/admin/' \
  --max-time "$((SECONDS_BUDGET / 2))" --checks "$CHECKS" "$@" || status=1
exit $status
