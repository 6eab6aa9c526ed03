#!/usr/bin/env bash
# The main job, on a fresh machine with only Python: install the tools, start the
# embedded local AWS, render dev, deploy every stack it can hold, smoke-check the
# running system over HTTP, print the outputs and what was skipped, stop.
#   ./ci/local-deploy.sh [--keep]     (--keep leaves the local AWS running)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== setup"
./ci/setup.sh
exec .venv/bin/python ci/local_deploy.py "$@"
