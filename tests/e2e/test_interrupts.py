"""Interrupted, concurrent and drifted deploys, with real signals sent to a real deploy.py
process against the local AWS. A loopback proxy (holding_proxy.py) in front of a fresh
emulator makes CloudFormation take its time the way AWS does (the emulator finishes a
stack before ExecuteChangeSet returns): DescribeStacks answers *_IN_PROGRESS until the
test releases it, or ExecuteChangeSet is held. Nothing in the code under test sleeps.

Each interruption is followed by a plain apply that must finish with no change set
left, the data intact and storage protected."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import boto3
import pytest

from conftest import ROOT, mark_stale, run_deploy
from holding_proxy import HoldingProxy
from support import ENV, edit_file, manifest, names
from tooling.aws.emulator import Emulator

STORAGE_UPDATE = ("LogFilePrefix: s3-access/", "LogFilePrefix: s3-access-v2/")  # an in-place update of storage


@pytest.fixture(scope="module")
def aws(local_aws, tmp_path_factory):
    """A fresh emulator behind the proxy; env for deploy.py, the proxy, boto3 clients."""
    emulator = Emulator.start(tmp_path_factory.mktemp("interrupts"), lifetime_seconds=1200)
    proxy = HoldingProxy(emulator.endpoint)
    env = {**local_aws, "AWS_ENDPOINT_URL": proxy.endpoint, "DEPLOY_LOCK_POLL": "0.5"}
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")

    def client(service):
        return session.client(service, endpoint_url=emulator.endpoint)  # straight to the emulator

    try:
        yield env, proxy, client
    finally:
        proxy.stop()
        emulator.stop()
        mark_stale()


class Run:
    """deploy.py as a terminal runs it: its own process group, SIGINT at its default."""

    def __init__(self, env, *args):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy.py"), *args, "--env", ENV, "--local"], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in self.lines):
                return
            assert self.process.poll() is None or any(re.search(pattern, line) for line in self.lines), self.output
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} never appeared:\n{self.output}")

    def signal(self, signum) -> None:
        os.killpg(self.process.pid, signum)  # as a terminal does: the whole group

    def finish(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout=timeout)
        self.reader.join(5)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


def render(variant_edit=None, tmp_path=None, env=None):
    """The real render (mark it stale), or an edited copy of the templates."""
    if variant_edit is None:
        mark_stale()
        return
    import shutil

    templates = tmp_path / f"templates-{time.time_ns()}"
    shutil.copytree(ROOT / "templates", templates)
    edit_file(templates / "storage.yaml.j2", *variant_edit)
    result = subprocess.run([sys.executable, str(ROOT / "render.py"), "--env", ENV, "--account-id", "000000000000",
                             "--region", "us-east-1", "--out", str(ROOT / "build" / "local-dev"), "--templates-dir", str(templates), "-q"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def pending_change_sets(client) -> dict[str, list[str]]:
    cfn = client("cloudformation")
    return {s["StackName"]: names_ for s in cfn.describe_stacks()["Stacks"]
            if (names_ := [c["ChangeSetName"] for c in cfn.list_change_sets(StackName=s["StackName"])["Summaries"]
                           if c.get("ExecutionStatus") not in ("EXECUTE_COMPLETE", "OBSOLETE")])}


def assert_protected(client):
    cfn = client("cloudformation")
    name = names()["storage"]
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["EnableTerminationProtection"] is True
    policy = json.loads(cfn.get_stack_policy(StackName=name)["StackPolicyBody"])
    assert policy == json.loads((ROOT / "build" / "local-dev" / manifest()["stack_policy"]).read_text())


def seed(client):
    physical = manifest()["physical_names"]
    key, item = f"interrupts/{time.time_ns()}.jpg", f"interrupts-{time.time_ns()}"
    client("s3").put_object(Bucket=physical["buckets"]["media"], Key=key, Body=b"keep me")
    client("dynamodb").put_item(TableName=physical["table"], Item={"sessionId": {"S": item}})

    def intact():
        assert client("s3").get_object(Bucket=physical["buckets"]["media"], Key=key)["Body"].read() == b"keep me"
        assert client("dynamodb").get_item(TableName=physical["table"], Key={"sessionId": {"S": item}})["Item"]["sessionId"]["S"] == item
    return intact


def finishes(env, client, intact=None):
    """The plain apply that follows any interruption."""
    result = run_deploy(env, "apply", "--env", ENV, "--local")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert pending_change_sets(client) == {}
    for stack in client("cloudformation").describe_stacks()["Stacks"]:
        assert stack["StackStatus"].endswith("_COMPLETE") and "ROLLBACK" not in stack["StackStatus"], stack["StackStatus"]
    assert_protected(client)
    if intact:
        intact()
    return result


def interrupt_while_in_progress(env, proxy, status, signals, grace=0.3):
    """apply until storage shows `status` (held by the proxy), then the signals; exit code, seconds, output."""
    proxy.report_in_progress(names()["storage"], status)
    run = Run(env, "apply")
    run.wait_for(rf"\[storage\] {status}")
    started = time.monotonic()
    for number, signum in enumerate(signals):
        if number:
            time.sleep(grace)
        run.signal(signum)
    code = run.finish(timeout=60)
    return code, time.monotonic() - started, run.output


def test_a_one_ctrl_c_during_the_first_create_leaves_storage_protected_and_apply_finishes(aws):
    env, proxy, client = aws
    render()
    code, seconds, output = interrupt_while_in_progress(env, proxy, "CREATE_IN_PROGRESS", [signal.SIGINT])
    print(f"one Ctrl-C: exit {code} after {seconds:.2f}s")
    assert code == 130, output
    assert seconds < 10, output
    assert "Traceback" not in output
    assert re.search(r"CloudFormation is still working on:\n\s+storage\s+CREATE_IN_PROGRESS", output), output
    assert "[frontend]" not in output  # no later wave started
    follow = re.search(r"follow them: (python deploy.py .*)", output).group(1)
    assert_protected(client)  # set before storage's change set executed
    assert pending_change_sets(client) == {}
    proxy.release()
    followed = subprocess.run([sys.executable, *follow.split()[1:]], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    finishes(env, client)


def test_b_two_ctrl_cs_leave_at_once_without_a_traceback(aws, tmp_path):
    env, proxy, client = aws
    intact = seed(client)
    render(STORAGE_UPDATE, tmp_path, env)
    proxy.hold_executes()  # the first Ctrl-C finds storage's execute in flight: it waits for it, up to the grace
    run = Run(env, "apply")
    assert proxy.wait_held(), run.output
    started = time.monotonic()
    run.signal(signal.SIGINT)
    run.wait_for("SIGINT: stopping")
    run.signal(signal.SIGINT)
    code = run.finish(timeout=60)
    seconds, output = time.monotonic() - started, run.output
    print(f"two Ctrl-Cs: exit {code} after {seconds:.2f}s")
    assert code == 130 and seconds < 3, output
    assert "again: leaving now" in output and "Traceback" not in output, output
    proxy.release(forward=False)
    render()
    finishes(env, client, intact)


def test_c_sigterm_exits_143_naming_what_is_in_progress(aws, tmp_path):
    env, proxy, client = aws
    intact = seed(client)
    render(STORAGE_UPDATE, tmp_path, env)
    code, seconds, output = interrupt_while_in_progress(env, proxy, "UPDATE_IN_PROGRESS", [signal.SIGTERM])
    print(f"SIGTERM: exit {code} after {seconds:.2f}s")
    assert code == 143 and seconds < 10, output
    assert "SIGTERM: stopping" in output and "Traceback" not in output
    assert re.search(r"storage\s+UPDATE_IN_PROGRESS", output), output
    proxy.release()
    render()
    finishes(env, client, intact)


def test_d_kill_9_between_change_set_creation_and_execution(aws, tmp_path):
    env, proxy, client = aws
    intact = seed(client)
    render(STORAGE_UPDATE, tmp_path, env)
    proxy.hold_executes()
    run = Run(env, "apply")
    assert proxy.wait_held(), run.output
    run.signal(signal.SIGKILL)
    assert run.finish(timeout=30) == -signal.SIGKILL
    proxy.release(forward=False)  # the execute never reaches CloudFormation
    left = pending_change_sets(client)
    assert list(left) == [names()["storage"]], left  # created, never executed
    render()
    result = finishes(env, client, intact)
    assert f"deleted change set {left[names()['storage']][0]} of storage" in result.stdout, result.stdout
    assert "took over the lock" in result.stdout and "gone" in result.stdout, result.stdout


def test_e_two_applies_at_once_one_waits_for_the_other(aws, tmp_path):
    env, proxy, client = aws
    intact = seed(client)
    render(STORAGE_UPDATE, tmp_path, env)
    proxy.report_in_progress(names()["storage"], "UPDATE_IN_PROGRESS")
    first = Run(env, "apply")
    first.wait_for(r"\[storage\] UPDATE_IN_PROGRESS")
    second = Run(env, "apply")
    second.wait_for(r"lock: waiting for apply by")
    busy = run_deploy(env, "apply", "--env", ENV, "--local", "--no-wait")
    assert busy.returncode == 4 and "busy:" in busy.stderr, busy.stdout + busy.stderr
    checked = run_deploy(env, "check", "--env", ENV, "--local")  # takes no lock, says it is held
    assert "holds this environment's deploy lock" in checked.stdout, checked.stdout
    proxy.release()
    assert first.finish() == 0, first.output
    assert second.finish() == 0, second.output
    assert "failed" not in first.output + second.output
    assert "storage            unchanged" in second.output, second.output  # it saw the first one's result
    assert pending_change_sets(client) == {}
    render()
    finishes(env, client, intact)


def test_f_drift_of_storage_protections_blocks_and_the_printed_fix_restores_them(aws):
    env, proxy, client = aws
    intact = seed(client)
    physical = manifest()["physical_names"]
    media, table = physical["buckets"]["media"], physical["table"]
    s3, dynamodb = client("s3"), client("dynamodb")
    s3.put_bucket_versioning(Bucket=media, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_policy(Bucket=physical["buckets"]["backend_artifacts"])
    s3.put_public_access_block(Bucket=physical["buckets"]["frontend"], PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "BlockPublicPolicy": False, "IgnorePublicAcls": True, "RestrictPublicBuckets": True})
    dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)

    checked = run_deploy(env, "check", "--env", ENV, "--local")
    assert checked.returncode == 3, checked.stdout
    for subject, what in ((media, "VersioningConfiguration.Status is \"Suspended\""),
                          (physical["buckets"]["backend_artifacts"], "BucketPolicy.Sids"),
                          (physical["buckets"]["frontend"], "PublicAccessBlockConfiguration.BlockPublicAcls is false"),
                          (table, "DeletionProtectionEnabled is false")):
        assert re.search(rf"\[drift\] storage: \S+ {re.escape(subject)} .*\n\s+{re.escape(what)}", checked.stdout), (subject, checked.stdout)
    applied = run_deploy(env, "apply", "--env", ENV, "--local")
    assert applied.returncode == 3 and "[drift]" in applied.stdout  # apply refuses too

    detected = run_deploy(env, "drift", "--env", ENV, "--local", "--json")
    report = json.loads(detected.stdout)
    assert detected.returncode == 3
    storage = next(s for s in report["stacks"] if s["key"] == "storage")
    paths = {d["path"] for r in storage["resources"] for d in r["differences"]}
    assert "/VersioningConfiguration/Status" in paths  # what the local AWS's drift detection reports
    with_drift = run_deploy(env, "check", "--env", ENV, "--local", "--drift", "--json")
    assert with_drift.returncode == 3 and json.loads(with_drift.stdout)["drift"]

    fix = re.search(r"fix: (python deploy.py drift --revert .*)", checked.stdout).group(1)
    fixed = subprocess.run([sys.executable, *fix.split()[1:]], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "by S3 and DynamoDB calls" in fixed.stdout
    assert s3.get_bucket_versioning(Bucket=media)["Status"] == "Enabled"
    assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"] is True
    again = run_deploy(env, "check", "--env", ENV, "--local")
    assert again.returncode == 0, again.stdout
    intact()


def test_g_unprotected_storage_is_reported_and_any_apply_restores_it_first(aws):
    env, proxy, client = aws
    cfn = client("cloudformation")
    cfn.update_termination_protection(StackName=names()["storage"], EnableTerminationProtection=False)
    status = run_deploy(env, "status", "--env", ENV, "--local")
    assert "[unprotected] storage" in status.stdout and "termination protection is off" in status.stdout, status.stdout
    checked = run_deploy(env, "check", "--env", ENV, "--local")
    assert checked.returncode == 3 and "[unprotected]" in checked.stdout
    only = run_deploy(env, "apply", "--env", ENV, "--local", "--only", "operations")
    assert only.returncode == 0, only.stdout + only.stderr
    assert "storage was unprotected" in only.stdout
    assert_protected(client)
