#!/usr/bin/env bash
# All tests: setup (idempotent), the lint and security gates, then pytest.
#   ./ci/test.sh           everything, including the end-to-end tests against the
#                          embedded local AWS (started and stopped by the tests)
#   ./ci/test.sh --unit    gates + the tests that need no emulator (fast; the pipeline's build stage)
# Extra arguments after --unit/-- go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
pytest_args=()
if [ "${1:-}" = "--unit" ]; then
  shift; pytest_args+=(-m "not emulator")
fi
[ "${1:-}" = "--" ] && shift

echo "== setup"
./ci/setup.sh
echo "== lint and security gates"
./ci/lint.sh
echo "== pytest"
.venv/bin/python -m pytest "${pytest_args[@]}" "$@"
echo "== all tests passed in $(( $(date +%s) - started ))s"
