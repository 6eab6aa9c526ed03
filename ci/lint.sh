#!/usr/bin/env bash
# The lint and security gates over every rendered template of every environment:
#   cfn-lint (.cfnlintrc: informational checks on, the project's rules in lint/rules)
#   checkov, offline; a skipped check needs a reason in the resource's metadata
#   taskcat lint over .taskcat.yml
# Renders each environment for a fixed example account into build/lint/<env>.
# Zero findings pass; anything else fails. Run ci/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
LINT_ACCOUNT=123456789012
OUT=build/lint
rm -rf "$OUT"
envs=$(ls environments/*.toml | xargs -n1 basename | sed 's/\.toml$//')
for env in $envs; do
  .venv/bin/python render.py --env "$env" --account-id "$LINT_ACCOUNT" --out "$OUT/$env" -q
done
templates=$(find "$OUT" -name '*.yaml' | sort)
count=$(echo "$templates" | wc -l)

echo "lint: cfn-lint over $count templates ($(echo $envs))"
.tools/cfn-lint/bin/cfn-lint $templates
echo "lint: cfn-lint: 0 findings"

echo "lint: checkov over $count templates"
summary=$(.tools/checkov/bin/checkov --skip-download --quiet --compact --framework cloudformation -d "$OUT" 2>&1) || {
  echo "$summary"; echo "lint: checkov failed" >&2; exit 1; }
echo "lint: checkov: $(echo "$summary" | grep -m1 -o 'Passed checks: .*')"

echo "lint: taskcat lint (.taskcat.yml over build/taskcat, rendered from dev)"
rm -rf build/taskcat && cp -r "$OUT/dev" build/taskcat
# taskcat imports pkg_resources and says so on every start: keep its output to what it found.
PYTHONWARNINGS=ignore::UserWarning .tools/taskcat/bin/taskcat -q lint
