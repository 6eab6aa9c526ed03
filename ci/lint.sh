#!/usr/bin/env bash
# The lint and security gates over every rendered template of every environment:
#   cfn-lint (.cfnlintrc: informational checks on, the project's rules in lint/rules)
#   checkov, offline; a skipped check needs a reason in the resource's metadata
#   AWS Control Tower's proactive controls (cfn-guard, lint/guard.py); a control this
#     design cannot meet needs its reason in lint/guard-exceptions.toml
#   cfripper (IAM and resource policies, lint/cfripper_gate.py) on the SAM-expanded
#     templates; an accepted finding needs its reason in lint/cfripper-exceptions.toml
#   taskcat lint over .taskcat.yml
# Renders each environment for a fixed example account, in us-east-1 (where what is bound
# to CloudFront lives) and in eu-west-1 (any other region), into build/lint/<env>-<region>.
# Zero findings pass; anything else fails. Run ci/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
LINT_ACCOUNT=123456789012
LINT_REGIONS="us-east-1 eu-west-1"
OUT=build/lint
rm -rf "$OUT"
envs=$(ls environments/*.toml | xargs -n1 basename | sed 's/\.toml$//')
renders=()
for env in $envs; do
  for region in $LINT_REGIONS; do
    .venv/bin/python render.py --env "$env" --account-id "$LINT_ACCOUNT" --region "$region" --out "$OUT/$env-$region" -q
    renders+=("$OUT/$env-$region")
  done
done
count=$(find "$OUT" -name '*.yaml' | wc -l)

# The gates are independent: they run side by side (about half the time on 2 cores),
# each into a log of its own, printed in this order once all have ended.
LOGS=build/lint-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
gates=()
gate() {  # gate NAME COMMAND...: run in the background, output and status kept
  local name=$1; shift
  gates+=("$name")
  ( set +e; "$@" >"$LOGS/$name.log" 2>&1; echo $? >"$LOGS/$name.status" ) &
}

cfn_lint() {
  echo "lint: cfn-lint over $count templates ($(echo $envs); $LINT_REGIONS)"
  for region in $LINT_REGIONS; do
    .tools/cfn-lint/bin/cfn-lint --regions "$region" -- $(find "$OUT" -path "*-$region/*" -name '*.yaml' | sort) || return 1
  done
  echo "lint: cfn-lint: 0 findings"
}
checkov() {
  echo "lint: checkov over $count templates"
  local summary
  summary=$(.tools/checkov/bin/checkov --skip-download --quiet --compact --framework cloudformation -d "$OUT" 2>&1) || {
    echo "$summary"; echo "lint: checkov failed"; return 1; }
  echo "lint: checkov: $(echo "$summary" | grep -m1 -o 'Passed checks: .*')"
}
guard() {
  echo "lint: AWS Control Tower's proactive controls (cfn-guard) over $count templates"
  .venv/bin/python lint/guard.py "${renders[@]}"
}
cfripper() {
  echo "lint: cfripper over $count templates (SAM expanded)"
  .venv/bin/python lint/cfripper_gate.py "${renders[@]}"
}
taskcat_lint() {
  echo "lint: taskcat lint (.taskcat.yml over build/taskcat, rendered from dev)"
  rm -rf build/taskcat && cp -r "$OUT/dev-us-east-1" build/taskcat
  # taskcat imports pkg_resources and says so on every start: keep its output to what it found.
  PYTHONWARNINGS=ignore::UserWarning .tools/taskcat/bin/taskcat -q lint
}

gate cfn-lint cfn_lint
gate checkov checkov
gate cfn-guard guard
gate cfripper cfripper
gate taskcat taskcat_lint
wait
failed=()
for name in "${gates[@]}"; do
  cat "$LOGS/$name.log"
  [ "$(cat "$LOGS/$name.status" 2>/dev/null)" = 0 ] || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: failed: ${failed[*]} (logs in $LOGS)" >&2
  exit 1
fi
