"""Shared test helpers: the repository root, and render runs into tmp folders."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"


def run_render(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """render.py as a user runs it, with no AWS credentials or endpoint leaking in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean["AWS_EC2_METADATA_DISABLED"] = "true"
    clean.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "render.py"), *args], capture_output=True, text=True, env=clean, cwd=ROOT, timeout=60)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """dev and prod rendered once for the session: env -> (out dir, manifest)."""
    from tooling import rendering

    result = {}
    for env, region in (("dev", "us-east-1"), ("prod", "eu-west-1")):
        out = tmp_path_factory.mktemp(f"render-{env}")
        result[env] = (out, rendering.render_environment(env, ACCOUNT, region, out))
    return result


def load_template(out: Path, manifest: dict, key: str) -> dict:
    from tooling import cfn_yaml

    stack = next(s for s in manifest["stacks"] if s["key"] == key)
    return cfn_yaml.load((out / stack["template"]).read_text())
