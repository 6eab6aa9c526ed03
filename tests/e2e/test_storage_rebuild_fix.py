"""The fix `check` prints for a storage stack that only a delete brings out of its state
(DELETE_FAILED, IMPORT_ROLLBACK_FAILED), run as printed, command by command, with the
real AWS CLI (.tools/awscli) and deploy.py, in an account of its own on the shared
local AWS: storage comes back holding the same buckets and table, with their data,
protected, and check is clean.

The local AWS never leaves a stack in those states, so a loopback proxy reports storage
in the state under test to `check` (DescribeStacks rewritten); everything the printed
commands do afterwards runs against the local AWS itself. The dev environment is fully
applied, so storage's exports are imported by the stateless stacks: on AWS, DeleteStack
fails while they are (the fix deletes them first, and apply brings them back)."""
from __future__ import annotations

import json
import re

import pytest

from conftest import mark_stale
from loopback_proxy import Call, LoopbackProxy
from support import AWS_CLI, account_client, account_deploy, account_env, manifest, printed_commands, run_printed, seed_data

ACCOUNT = "161616161616"


class ReportsStorageAs(LoopbackProxy):
    """DescribeStacks of `stack` answers `status`; everything else passes unchanged."""

    def __init__(self, upstream: str, stack: str, status: str):
        self.stack, self.status = stack, status
        super().__init__(upstream, lifetime=600)

    def after(self, call: Call, status: int, data: bytes) -> bytes:
        if call.action == "DescribeStacks" and call.params.get("StackName") == self.stack:
            data = re.sub(rb"<StackStatus>[A-Z_]+</StackStatus>", f"<StackStatus>{self.status}</StackStatus>".encode(), data)
        return data


@pytest.fixture(scope="module")
def applied(local_aws):
    assert AWS_CLI.exists(), "the AWS CLI environment is missing: run ./ci/setup.sh"
    mark_stale()  # another account's render may be there: deploy.py renders this account's
    done = account_deploy(local_aws, ACCOUNT, "apply", "--env", "dev", "--local")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield
    mark_stale()  # the render in build/local-dev is this account's: the next module renders its own


@pytest.mark.parametrize("status", ["DELETE_FAILED", "IMPORT_ROLLBACK_FAILED"])
def test_the_printed_rebuild_of_storage_runs_as_printed_and_keeps_the_data(local_aws, applied, status):
    client = lambda service: account_client(local_aws, ACCOUNT, service)  # noqa: E731
    cfn = client("cloudformation")
    storage = next(s["name"] for s in manifest()["stacks"] if s["key"] == "storage")
    intact = seed_data(client)
    owned_before = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in cfn.list_stack_resources(StackName=storage)["StackResourceSummaries"]
                    if r["ResourceType"] in ("AWS::S3::Bucket", "AWS::DynamoDB::Table")}

    env = account_env(local_aws, ACCOUNT)
    with ReportsStorageAs(env["AWS_ENDPOINT_URL"], storage, status) as proxy:
        checked = account_deploy({**env, "AWS_ENDPOINT_URL": proxy.endpoint}, ACCOUNT, "check", "--env", "dev", "--local", "--json")
    assert checked.returncode == 3, checked.stdout[-2000:] + checked.stderr[-2000:]
    fix = next(f["fix"] for f in json.loads(checked.stdout)["findings"] if f["kind"] == "stack-state" and f["stack"] == "storage")
    commands = printed_commands(fix)
    print(f"{status}: {fix}")
    assert [c.split()[:3] for c in commands][-2:] == [["python", "deploy.py", "adopt"], ["python", "deploy.py", "apply"]], fix
    assert any(c.startswith("python deploy.py destroy") for c in commands), f"the stacks importing storage's exports stay: {fix}"

    # Each command as printed: `aws` is the AWS CLI, `python` the project's.
    for command in commands:
        done = run_printed(env, command)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    stack = cfn.describe_stacks(StackName=storage)["Stacks"][0]
    assert stack["StackStatus"] in ("IMPORT_COMPLETE", "UPDATE_COMPLETE", "CREATE_COMPLETE") and stack["EnableTerminationProtection"]
    owned_after = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                   for r in cfn.list_stack_resources(StackName=storage)["StackResourceSummaries"]
                   if r["ResourceType"] in ("AWS::S3::Bucket", "AWS::DynamoDB::Table")}
    assert owned_after == owned_before  # the same buckets and table, taken back
    intact()
    clean = account_deploy(local_aws, ACCOUNT, "check", "--env", "dev", "--local")
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
