#!/usr/bin/env bash
# Benchmark of render and deploy on the embedded local AWS; prints a table.
#   ./ci/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/setup.sh
exec .venv/bin/python ci/bench.py "$@"
