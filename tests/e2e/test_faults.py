"""5. Faults, injected by a protocol-aware proxy (microburst) between the tools and a
fresh emulator: throttling and latency on a share of the CloudFormation calls, and
lost responses (the server acted, the answer never arrived) on the calls that
change something. apply must still complete, leave no change set or stack
half-done, and end in the same stacks, resources and outputs as a clean run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import boto3
import pytest

from conftest import ROOT, run_deploy
from tooling.aws.emulator import Emulator, answers, free_port

MICROBURST = ROOT / ".tools" / "microburst" / "bin" / "microburst"
RULES = """
rules:
  - service: cloudformation          # every 4th CloudFormation call is throttled, the retry passes
    sequence: {fail: 1, pass: 3}
    error: {code: Throttling, status: 400, message: Rate exceeded}
  - service: cloudformation          # and 30% of them are slowed down
    probability: 0.3
    latency: {min: 100, max: 400}
"""
# The server acts, then the connection dies before the answer is read: botocore
# retries, and the retry must be recognised as the same request (a ClientToken and
# a unique name on CreateChangeSet, a ClientRequestToken on ExecuteChangeSet).
LOST_RESPONSES = """
rules:
  - service: cloudformation
    operation: CreateChangeSet
    times: 3
    response: {abort_bytes: 0}
  - service: cloudformation
    operation: ExecuteChangeSet
    times: 3
    response: {abort_bytes: 0}
"""


def snapshot(endpoint: str) -> dict:
    """What a run produced, minus what differs between any two runs (ids, times)."""
    cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    result = {}
    for stack in cfn.describe_stacks()["Stacks"]:
        resources = cfn.list_stack_resources(StackName=stack["StackName"])["StackResourceSummaries"]
        result[stack["StackName"]] = {
            "status": stack["StackStatus"],
            "protected": stack.get("EnableTerminationProtection", False),
            "resources": sorted((r["LogicalResourceId"], r["ResourceType"], r["ResourceStatus"]) for r in resources),
            "outputs": sorted(o["OutputKey"] for o in stack.get("Outputs", [])),
            "pending_change_sets": [c["ChangeSetName"] for c in cfn.list_change_sets(StackName=stack["StackName"])["Summaries"]
                                    if c.get("ExecutionStatus") not in ("EXECUTE_COMPLETE", "OBSOLETE")],
        }
    return result


@pytest.fixture
def faulty_aws(local_aws, tmp_path, request):
    emulator = Emulator.start(tmp_path / "faults", lifetime_seconds=900)
    port = free_port()
    rules = tmp_path / "rules.yml"
    rules.write_text(request.param)
    log = open(tmp_path / "microburst.log", "wb")
    proxy = subprocess.Popen(["timeout", "900", str(MICROBURST), "--host", "127.0.0.1", "--port", str(port),
                              "--upstream", emulator.endpoint, "--config", str(rules)],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not answers(endpoint) and time.monotonic() < deadline:
            assert proxy.poll() is None, (tmp_path / "microburst.log").read_text()
            time.sleep(0.2)
        assert answers(endpoint), "the fault-injection proxy did not start"
        yield {**local_aws, "AWS_ENDPOINT_URL": endpoint}, endpoint, emulator
    finally:
        os.killpg(proxy.pid, signal.SIGTERM)
        proxy.wait(timeout=10)
        log.close()
        emulator.stop()


@pytest.fixture(scope="module")
def clean(local_aws, tmp_path_factory):
    """What a clean apply leaves on a fresh emulator, as the faulted runs start from one."""
    emulator = Emulator.start(tmp_path_factory.mktemp("clean"), lifetime_seconds=900)
    try:
        clean_apply = run_deploy({**local_aws, "AWS_ENDPOINT_URL": emulator.endpoint}, "apply", "--env", "dev", "--local")
        assert clean_apply.returncode == 0, clean_apply.stdout[-2000:]
        return snapshot(emulator.endpoint)
    finally:
        emulator.stop()


def apply_through(faulty_aws) -> tuple[list[dict], dict]:
    """apply through the proxy: the faults it fired on CloudFormation, and what the run left."""
    env, proxy, emulator = faulty_aws
    result = run_deploy(env, "apply", "--env", "dev", "--local", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    with urllib.request.urlopen(f"{proxy}/_microburst/fired?service=cloudformation&limit=10000") as response:
        fired = json.load(response)
    return fired, snapshot(emulator.endpoint)


@pytest.mark.parametrize("faulty_aws", [RULES], indirect=True)
def test_5_apply_through_throttling_and_latency_equals_a_clean_run(clean, faulty_aws):
    fired, faulted = apply_through(faulty_aws)
    throttled = [f for f in fired if "Throttling" in str(f.get("action", ""))]
    delayed = [f for f in fired if "latency" in str(f.get("action", ""))]
    assert len(throttled) >= 5, f"only {len(throttled)} throttling faults fired"
    assert delayed, "no latency was injected"
    assert faulted == clean
    for stack in faulted.values():
        assert stack["pending_change_sets"] == []


@pytest.mark.parametrize("faulty_aws", [LOST_RESPONSES], indirect=True)
def test_5b_apply_through_lost_responses_equals_a_clean_run(clean, faulty_aws):
    fired, faulted = apply_through(faulty_aws)
    lost = [f for f in fired if "response:abort" in str(f.get("action", ""))]
    operations = {str(f.get("operation", "")) for f in lost}
    assert len(lost) == 6 and {"CreateChangeSet", "ExecuteChangeSet"} <= operations, fired[:5]
    assert faulted == clean
    for stack in faulted.values():
        assert stack["pending_change_sets"] == []
