#!/usr/bin/env bash
# Installs every environment this repository uses, each isolated and pinned:
#   .venv                  the project's own code (render.py, deploy.py, tests)
#   .tools/<tool>          one per tool whose pins conflict with the others:
#                          sam, checkov, cfripper, taskcat, cfn-lint, ministack, microburst, playwright,
#                          awscli (the tests run the AWS CLI commands deploy.py prints, as printed)
#   /usr/bin/chromium      Debian's chromium, driven by Playwright in the browser test
#                          (apt-get, only when it is missing; no browser is downloaded)
# Lock files live in ci/requirements/<env>.txt (compiled from <env>.in with uv).
# Idempotent: an environment is rebuilt only when its lock file changed, so a
# second run takes well under a second.
# Every environment is installed with its bytecode compiled: tools start in a third
# to a half of the time (cfn-lint 0.55 s instead of 2.6 s, checkov 2.0 s instead of
# 4.7 s, deploy.py 0.7 s instead of 1.3 s for a no-change apply) even where Python
# is told not to write bytecode itself (PYTHONDONTWRITEBYTECODE, as in many CI images).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$ROOT/.tools"
REQ="$ROOT/ci/requirements"
UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "setup: Python 3.11 or newer is required ($PYTHON is $("$PYTHON" --version 2>&1))" >&2; exit 2; }

# uv itself lives in a tiny venv of its own: fast installs without touching the system.
UV="$TOOLS/uv/bin/uv"
if [ ! -x "$UV" ] || [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "setup: installing uv $UV_VERSION"
  rm -rf "$TOOLS/uv"
  "$PYTHON" -m venv "$TOOLS/uv"
  "$TOOLS/uv/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
export UV_NO_PROGRESS=1 UV_LINK_MODE=copy

sync_env() {  # sync_env <dir> <lock file>
  local dir=$1 lock=$2 stamp="$1/.lock.sha256" want
  want="$(sha256sum "$lock" | cut -d' ' -f1) bytecode"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "setup: syncing $(basename "$dir") from ci/requirements/$(basename "$lock")"
  [ -x "$dir/bin/python" ] || "$UV" venv -q --python "$PYTHON" "$dir"
  "$UV" pip sync -q --compile-bytecode --python "$dir/bin/python" "$lock"
  echo "$want" > "$stamp"
}

only=${1:-all}
if [ "$only" = all ] || [ "$only" = project ]; then
  sync_env "$ROOT/.venv" "$REQ/project.txt"
  # The project's own modules too (deploy.py starts many times in the tests); only
  # files newer than their bytecode are compiled, so this is quick on a second run.
  # Not fatal (a read-only checkout): the code runs the same, only slower to start.
  "$ROOT/.venv/bin/python" -m compileall -q -j 0 "$ROOT/tooling" >/dev/null 2>&1 ||
    echo "setup: could not compile tooling/ to bytecode; it runs, only slower to start" >&2
fi
for tool in cfn-lint checkov cfripper taskcat sam ministack microburst playwright awscli; do
  if [ "$only" = all ] || [ "$only" = "$tool" ]; then
    sync_env "$TOOLS/$tool" "$REQ/$tool.txt"
  fi
done
if [ "$only" = all ] || [ "$only" = cfn-guard ]; then "$ROOT/ci/setup-guard.sh"; fi   # cfn-guard + Control Tower rules (npm)

# The browser of the browser test: Debian's package (Playwright's own browser download
# cannot be used). Skipped at once when it is there.
if { [ "$only" = all ] || [ "$only" = chromium ]; } && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    # Not fatal: only the end-to-end browser test needs it (./ci/test.sh --unit, as the
    # backend pipeline's build on CodeBuild runs it, does not), and that test says so.
    echo "setup: /usr/bin/chromium is missing and cannot be installed here (as root on Debian: apt-get install chromium);" \
         "the browser test will fail without it" >&2
  else
    echo "setup: installing chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
exit 0
