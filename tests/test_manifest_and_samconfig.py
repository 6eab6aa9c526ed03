"""manifest.json and samconfig.toml as the tools that read them need them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ACCOUNT, ROOT
from tooling.render import samconfig

REQUIRED_STACK_KEYS = {"key", "name", "template", "stateful", "termination_protection", "exports", "imports", "depends_on"}


def test_manifest_shape(rendered):
    for env in ("dev", "prod"):
        out, manifest = rendered[env]
        assert json.loads((out / "manifest.json").read_text()) == manifest
        assert {"env", "account_id", "region", "stacks", "waves"} <= set(manifest)
        keys = [s["key"] for s in manifest["stacks"]]
        assert keys == ["storage", "frontend", "backend", "webhook", "backend-pipeline", "frontend-pipeline", "operations", "edge"]
        for stack in manifest["stacks"]:
            assert REQUIRED_STACK_KEYS <= set(stack)
            assert (out / stack["template"]).is_file()
            assert stack["stateful"] is stack["termination_protection"] is (stack["key"] == "storage")
            assert stack["name"] == f"ai-social-media-{env}-{stack['key']}"


def test_samconfig_has_one_config_env_per_stack(rendered):
    out, manifest = rendered["dev"]
    config = tomllib.loads((out / "samconfig.toml").read_text())
    assert sorted(k for k in config if k != "version") == sorted(s["key"] for s in manifest["stacks"])
    for stack in manifest["stacks"]:
        params = config[stack["key"]]["deploy"]["parameters"]
        assert params["stack_name"] == stack["name"]
        assert params["template_file"] == str(out / stack["template"])
        assert params["region"] == stack["region"] == ("us-east-1" if stack["key"] == "edge" else manifest["region"])
        assert params["confirm_changeset"] is False
        assert "resolve_s3" not in params  # never a SAM-managed bucket outside the storage stack
        if stack["region"] == manifest["region"] and not stack["stateful"]:
            # code and large templates go to the storage stack's bucket (operations is over TemplateBody's limit)
            assert params["s3_bucket"] == f"ai-social-media-dev-be-artifacts-{ACCOUNT}"
        else:
            assert "s3_bucket" not in params  # storage creates that bucket; edge is in another region
            assert len((out / stack["template"]).read_text().encode()) < 51_200
    edge = next(s for s in manifest["stacks"] if s["key"] == "edge")
    assert len((out / edge["template"]).read_text().encode()) < 51_200

    # in another region, edge takes no bucket of the environment's region
    _, prod = rendered["prod"]
    prod_edge = next(s for s in prod["stacks"] if s["key"] == "edge")
    assert "s3_bucket" not in samconfig.deploy_parameters({**prod, "region": "eu-west-1"}, prod_edge, out)


@pytest.fixture
def repo_copy(tmp_path):
    """A copy of what render.py needs, so default-path runs never touch this checkout's build/."""
    for name in ("render.py", "tooling", "templates", "environments", "lint"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, tmp_path / name)
    return tmp_path


def render_in(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([sys.executable, str(repo / "render.py"), *args], capture_output=True, text=True, cwd=repo, env=env, timeout=60)


def test_default_render_refreshes_the_root_samconfig(repo_copy):
    result = render_in(repo_copy, "--env", "prod", "--account-id", ACCOUNT, "-q")
    assert result.returncode == 0, result.stderr
    config = tomllib.loads((repo_copy / "samconfig.toml").read_text())
    assert config["storage"]["deploy"]["parameters"]["stack_name"] == "ai-social-media-prod-storage"
    assert config["storage"]["deploy"]["parameters"]["template_file"] == "build/prod/storage.yaml"
    assert (repo_copy / "build" / "prod" / "storage.yaml").is_file()
    # a render elsewhere (--out) leaves the root samconfig on the environment rendered by default
    other = repo_copy / "elsewhere"
    assert render_in(repo_copy, "--env", "dev", "--account-id", ACCOUNT, "--out", str(other), "-q").returncode == 0
    assert "ai-social-media-prod-storage" in (repo_copy / "samconfig.toml").read_text()


def test_a_hand_written_root_samconfig_is_left_alone(repo_copy):
    (repo_copy / "samconfig.toml").write_text("version = 0.1\n# mine\n")
    result = render_in(repo_copy, "--env", "dev", "--account-id", ACCOUNT, "-q")
    assert result.returncode == 0
    assert (repo_copy / "samconfig.toml").read_text() == "version = 0.1\n# mine\n"
    assert "left samconfig.toml alone" in result.stderr
