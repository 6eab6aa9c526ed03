"""Shared test helpers: the repository root, and render runs into tmp folders."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

pytest_plugins = ["aws_stubs"]  # the Stubber fixtures of the AWS-layer tests

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
    from tooling.render import rendering

    result = {}
    for env, region in (("dev", "us-east-1"), ("prod", "eu-west-1")):
        out = tmp_path_factory.mktemp(f"render-{env}")
        result[env] = (out, rendering.render_environment(env, ACCOUNT, region, out))
    return result


def load_template(out: Path, manifest: dict, key: str) -> dict:
    from tooling.render import cfn_yaml

    stack = next(s for s in manifest["stacks"] if s["key"] == key)
    return cfn_yaml.load((out / stack["template"]).read_text())


CFN_LINT = ROOT / ".tools" / "cfn-lint" / "bin" / "cfn-lint"


def cfn_lint_errors(paths, project_rules: bool = True) -> dict[str, list[dict]]:
    """cfn-lint's errors (level Error) per file, run as CI runs it (from the repository root,
    .cfnlintrc). The project's own rules (E9xxx) hold only the project's templates (those
    that declare Metadata.StackRole), and only with `project_rules`; otherwise a template is
    held to AWS's rules, what CloudFormation itself would refuse.

    Files of equal content are linted once (the end-to-end runs send the same template many
    times), and the files are shared between two cfn-lint processes (2 cores)."""
    import hashlib
    import json as _json

    if not CFN_LINT.exists():
        pytest.fail(f"{CFN_LINT.relative_to(ROOT)} is missing: run ci/setup.sh")
    paths = [str(p) for p in paths]
    first_of: dict[bytes, str] = {}  # content digest -> the file linted for it
    linted_for: dict[str, str] = {}  # every file -> the file linted for its content
    for path in paths:
        digest = hashlib.sha256(Path(path).read_bytes()).digest()
        linted_for[path] = first_of.setdefault(digest, path)
    unique = list(first_of.values())
    ours = [p for p in unique if project_rules and "StackRole" in Path(p).read_text(encoding="utf-8", errors="replace")]
    theirs = [p for p in unique if p not in ours]
    found: dict[str, list[dict]] = {p: [] for p in unique}
    runs = []
    for group, extra in ((ours, []), (theirs, ["--ignore-checks", "E9"])):
        for share in (group[0::2], group[1::2]):
            if share:
                runs.append(subprocess.Popen([str(CFN_LINT), "--format", "json", *extra, "--", *share], cwd=ROOT,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        for run in runs:
            stdout, stderr = run.communicate(timeout=600)
            assert "Traceback" not in stderr, stderr[-3000:]
            for match in _json.loads(stdout or "[]"):
                if match["Level"] == "Error":
                    found[match["Filename"]].append({"rule": match["Rule"]["Id"], "message": match["Message"],
                                                     "path": match["Location"]["Path"]})
    finally:  # a timeout or a failed assertion leaves no cfn-lint behind
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    return {path: found[linted_for[path]] for path in paths}


# --- end-to-end: one embedded local AWS (ministack) for the test session, bound to
# 127.0.0.1 on a free port, bounded in time, stopped by its process id.

LIFETIME_SECONDS = 1800  # the emulator exits by itself after this, whatever happens to the tests


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.emulator)


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory):
    yield from running_local_aws(tmp_path_factory)


def running_local_aws(tmp_path_factory):
    """An emulator of its own and the environment that reaches it; on the way out, stopped,
    and every template deploy.py sent to it linted."""
    from tooling.aws.emulator import Emulator

    emulator = Emulator.start(tmp_path_factory.mktemp("local-aws"), lifetime_seconds=LIFETIME_SECONDS)
    sent = tmp_path_factory.mktemp("templates-sent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": emulator.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "SAM_CLI_TELEMETRY": "0",
                "DEPLOY_POLL_SECONDS": "1", "DEPLOY_RECORD_TEMPLATES": str(sent)})
    yield env
    import boto3

    cfn = boto3.client("cloudformation", endpoint_url=emulator.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    stacks_made = bool(cfn.list_stacks()["StackSummaries"])
    emulator.stop()
    # Every template deploy.py sent to the local AWS, however it was built, is one AWS
    # accepts: the emulator takes templates AWS refuses, so it is linted here, by AWS's rules
    # (some scenarios deploy renders of deliberately edited templates that break the
    # project's own rules; ci/lint.sh holds the real renders to those).
    files = sorted(sent.glob("*.template"))
    assert files or not stacks_made, f"stacks were made but no template was recorded in {sent}"
    failing = {Path(f).name: e for f, e in cfn_lint_errors(files, project_rules=False).items() if e} if files else {}
    assert not failing, f"templates sent to the local AWS that AWS would refuse (cfn-lint errors): {failing}"


def mark_stale(out: Path = ROOT / "build" / "local-dev") -> None:
    """Make the local render older than its sources: the next deploy.py run renders afresh."""
    manifest = out / "manifest.json"
    if manifest.exists():
        os.utime(manifest, (0, 0))


def run_deploy(env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "deploy.py"), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


@pytest.fixture
def boto(local_aws):
    """boto3 clients on the session's emulator."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")

    def client(service):
        return session.client(service, endpoint_url=local_aws["AWS_ENDPOINT_URL"])

    return client


@pytest.fixture
def variant(local_aws, tmp_path):
    """Render dev from an edited copy of templates/ into the local render folder;
    afterwards the next deploy.py run renders the real templates again."""
    out = ROOT / "build" / "local-dev"

    def render(edit):
        templates = tmp_path / f"templates-{len(list(tmp_path.glob('templates-*')))}"
        shutil.copytree(ROOT / "templates", templates)
        edit(templates)
        result = subprocess.run([sys.executable, str(ROOT / "render.py"), "--env", "dev", "--account-id", "000000000000",
                                 "--region", "us-east-1", "--out", str(out), "--templates-dir", str(templates), "-q"],
                                capture_output=True, text=True, env=local_aws)
        assert result.returncode == 0, result.stderr
    yield render
    mark_stale()
