#!/usr/bin/env bash
# taskcat end to end, in taskcat's own environment (environments/taskcat.toml):
#   ./ci/taskcat.sh --local --env taskcat    the embedded local AWS (AWS_ENDPOINT_URL, or one started here)
#   ./ci/taskcat.sh --env taskcat            the account of your credentials
# Deploys the environment's storage stack, runs `taskcat test run` for every test of
# .taskcat.yml (report: taskcat_outputs/index.html), then deletes the storage stack and
# what it retained, so that nothing is left. Other options go to `taskcat test run`.
# Exit 0 only when every test passed and nothing was left behind. See docs/taskcat.md.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" --env "*) ;;
  *) echo "usage: ./ci/taskcat.sh [--local] --env ENV [taskcat test run options]" >&2; exit 2 ;;
esac
./ci/setup.sh
exec .venv/bin/python ci/taskcat_run.py "$@"
