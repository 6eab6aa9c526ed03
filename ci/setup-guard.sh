#!/usr/bin/env bash
# Installs AWS CloudFormation Guard (cfn-guard) and AWS Control Tower's proactive-control rules
# into .tools/cfn-guard, both from one pinned npm package, @cdklabs/cdk-validator-cfnguard:
#   .tools/cfn-guard/bin/cfn-guard        the cfn-guard binary for this machine
#   .tools/cfn-guard/rules/control-tower  the controls' rules (cfn-guard/<service>/ct-*.guard)
# `npm pack` only downloads the package's tarball (checked against the integrity below);
# nothing is installed into a node_modules and no Node code runs.
# Idempotent: a second run with the same pin returns at once. Called by ci/setup.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/.tools/cfn-guard"
PACKAGE=@cdklabs/cdk-validator-cfnguard
VERSION=0.0.62
INTEGRITY=sha512-Sg2k8067B0AIJ82QFSLhHTUIqxOYTKABvVrTHiyc6j0rE2NHli2diIYqf+w+DkuDKCYYgMIOga3OrYMOHUw0mQ==
GUARD_VERSION=3.1.1
PYTHON=${PYTHON:-python3}
want="$PACKAGE@$VERSION $INTEGRITY"

if [ -x "$DEST/bin/cfn-guard" ] && [ "$(cat "$DEST/.installed" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
command -v npm >/dev/null || {
  echo "setup: npm is missing: cfn-guard and the Control Tower rules come from the npm package $PACKAGE (install npm)" >&2; exit 2; }
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) platform=ubuntu/x86_64 ;;
  Linux/aarch64 | Linux/arm64) platform=ubuntu/aarch64 ;;
  Darwin/x86_64) platform=macos/x86_64 ;;
  Darwin/arm64) platform=macos/aarch64 ;;
  *) echo "setup: $PACKAGE has no cfn-guard binary for $(uname -s)/$(uname -m)" >&2; exit 2 ;;
esac

echo "setup: installing cfn-guard $GUARD_VERSION and the Control Tower rules ($PACKAGE@$VERSION)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent --no-fund --no-audit "$PACKAGE@$VERSION" | tail -n1)
got=$("$PYTHON" -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$work/$tarball")
if [ "$got" != "$INTEGRITY" ]; then
  echo "setup: $PACKAGE@$VERSION: the downloaded tarball's integrity is $got, not the pinned $INTEGRITY" >&2; exit 2
fi
tar -xzf "$work/$tarball" -C "$work" package/LICENSE package/guard-version.json package/rules "package/bin/$platform/cfn-guard"

rm -rf "$DEST"
mkdir -p "$DEST/bin"
mv "$work/package/rules" "$DEST/rules"
mv "$work/package/bin/$platform/cfn-guard" "$DEST/bin/cfn-guard"
mv "$work/package/LICENSE" "$work/package/guard-version.json" "$DEST/"
chmod +x "$DEST/bin/cfn-guard"
found=$("$DEST/bin/cfn-guard" --version | cut -d' ' -f2)
if [ "$found" != "$GUARD_VERSION" ]; then
  echo "setup: $PACKAGE@$VERSION carries cfn-guard $found, not $GUARD_VERSION" >&2; exit 2
fi
echo "$want" > "$DEST/.installed"
