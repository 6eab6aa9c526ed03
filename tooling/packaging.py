"""The template CloudFormation would receive for a stack: the render itself, or,
for a SAM stack with local code, `sam package` output whose code is uploaded to
the storage stack's backend artifacts bucket (the same place `sam deploy` uses)."""
from __future__ import annotations

import subprocess

from . import apply as applying
from . import samconfig
from .errors import UserError
from .sam_runner import SAM
from .workspace import ROOT, Workspace


def deployable_template(ws: Workspace, key: str) -> str:
    copy = applying.deploy_copy(ws, key)
    if not ws.stacks[key].get("sam"):
        return copy.read_text()
    config = samconfig.deploy_parameters(ws.manifest, ws.stacks[key], ws.out_dir)
    packaged = ws.out_dir / "packaged" / f"{key}.yaml"
    packaged.parent.mkdir(parents=True, exist_ok=True)
    command = [str(SAM), "package", "--template-file", str(copy), "--s3-bucket", config["s3_bucket"],
               "--s3-prefix", config["s3_prefix"], "--output-template-file", str(packaged), "--region", ws.region]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=applying.sam_environment(), timeout=600)
    if result.returncode != 0:
        raise UserError(f"sam package {key}: {(result.stderr or result.stdout).strip().splitlines()[-1:]}", status=1)
    return packaged.read_text()
