#!/usr/bin/env bash
# taskcat end-to-end tests in a REAL AWS account (never the local emulator).
#   ./ci/taskcat.sh --env dev [--test-names storage|frontend,backend,...]
# 1. renders the environment for the caller's account into build/taskcat/
# 2. packages the SAM stacks' code with `sam package` into the storage stack's
#    backend artifacts bucket, so taskcat needs no Lambda packaging (no Docker)
# 3. writes .taskcat_overrides.yml with the environment's stack names, which the
#    stateless tests import from (taskcat tests do not chain)
# 4. runs `taskcat test run` with any remaining arguments
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: ./ci/taskcat.sh --env ENV [taskcat test run options]" >&2; exit 2; }
[ "${1:-}" = "--env" ] && [ -n "${2:-}" ] || usage
env_name=$2; shift 2
[ -f "environments/$env_name.toml" ] || { echo "taskcat: environment '$env_name': unknown" >&2; exit 2; }
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  echo "taskcat: AWS_ENDPOINT_URL is set ($AWS_ENDPOINT_URL): taskcat runs against a real account only" >&2; exit 2
fi
./ci/setup.sh
.venv/bin/python render.py --env "$env_name" --out build/taskcat
manifest=build/taskcat/manifest.json
bucket=$(.venv/bin/python -c "import json;print(json.load(open('$manifest'))['physical_names']['buckets']['backend_artifacts'])")
region=$(.venv/bin/python -c "import json;print(json.load(open('$manifest'))['region'])")
# The SAM stacks' code goes into the storage stack's artifacts bucket; before storage is
# deployed (the storage test alone) there is nothing to package into, nor any need to.
if .venv/bin/python -c "import boto3,sys; boto3.client('s3', region_name='$region').head_bucket(Bucket='$bucket')" 2>/dev/null; then
  for key in backend webhook; do
    SAM_CLI_TELEMETRY=0 .tools/sam/bin/sam package --template-file "build/taskcat/stateless/$key.yaml" \
      --s3-bucket "$bucket" --s3-prefix "taskcat/$key" --region "$region" \
      --output-template-file "build/taskcat/stateless/$key.yaml"
  done
else
  echo "taskcat: $bucket does not exist yet: backend and webhook not packaged (only the storage test can run)" >&2
fi
.venv/bin/python - "$manifest" > .taskcat_overrides.yml <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1]))
names = {s["key"]: s["name"] for s in manifest["stacks"]}
print("# written by ci/taskcat.sh for environment", manifest["env"])
for parameter, key in (("StorageStackName", "storage"), ("FrontendStackName", "frontend"),
                       ("BackendStackName", "backend"), ("WebhookStackName", "webhook"),
                       ("BackendPipelineStackName", "backend-pipeline"), ("FrontendPipelineStackName", "frontend-pipeline")):
    print(f"{parameter}: {names[key]}")
PY
PYTHONWARNINGS=ignore::UserWarning exec .tools/taskcat/bin/taskcat test run --regions "$region" "$@"
