"""Helpers shared by the end-to-end scenarios: the local render of dev, deploy.py
as a user runs it, and the data every scenario seeds and then proves intact."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time

from conftest import ROOT, run_deploy
from tooling.render import graph

ENV = "dev"
OUT = ROOT / "build" / f"local-{ENV}"


def manifest():
    return json.loads((OUT / "manifest.json").read_text())


def names():
    return {s["key"]: s["name"] for s in manifest()["stacks"]}


def deploy_json(local_aws, command, *extra):
    result = run_deploy(local_aws, command, "--env", ENV, "--local", "--json", *extra)
    data = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, data


def ensure_applied(local_aws):
    result = run_deploy(local_aws, "apply", "--env", ENV, "--local")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def edit_file(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def stack_state(cfn, name):
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return stack["StackStatus"], stack.get("LastUpdatedTime") or stack["CreationTime"]


def seed_data(boto):
    buckets, table = manifest()["physical_names"]["buckets"], manifest()["physical_names"]["table"]
    key, item = f"sessions/lifecycle/{time.time_ns()}.jpg", f"lifecycle-{time.time_ns()}"
    boto("s3").put_object(Bucket=buckets["media"], Key=key, Body=b"keep me")
    boto("dynamodb").put_item(TableName=table, Item={"sessionId": {"S": item}})

    def intact():
        assert boto("s3").get_object(Bucket=buckets["media"], Key=key)["Body"].read() == b"keep me"
        assert boto("dynamodb").get_item(TableName=table, Key={"sessionId": {"S": item}})["Item"]["sessionId"]["S"] == item
    return intact


def storage_owned(boto):
    """Every bucket and the table, as physical ids the storage stack owns."""
    resources = boto("cloudformation").list_stack_resources(StackName=names()["storage"])["StackResourceSummaries"]
    owned = {r["PhysicalResourceId"] for r in resources if r["ResourceType"] in ("AWS::S3::Bucket", "AWS::DynamoDB::Table")}
    physical = manifest()["physical_names"]
    assert owned == set(physical["buckets"].values()) | {physical["table"]}
    return owned


def delete_stack(cfn, name):
    cfn.delete_stack(StackName=name)
    for _ in range(120):
        try:
            cfn.describe_stacks(StackName=name)
        except cfn.exceptions.ClientError:
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} was not deleted")


def delete_with_dependents(cfn, key: str) -> list[str]:
    """Delete a stack and, first, every stack that needs it (they import its exports or
    take its outputs as parameters), in reverse wave order; the keys deleted."""
    stacks = {s["key"]: s for s in manifest()["stacks"]}
    needed_by = {key} | graph.dependents({k: s["depends_on"] for k, s in stacks.items()}, key)
    order = [k for wave in reversed(manifest()["waves"]) for k in wave if k in needed_by]
    live = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
    for other in order:
        if stacks[other]["name"] in live:
            delete_stack(cfn, stacks[other]["name"])
    return order


# --- a scenario in an account of its own on the session's emulator (a 12-digit access key is the account)

def account_env(local_aws, account: str) -> dict:
    return {**local_aws, "AWS_ACCESS_KEY_ID": account}


def account_client(local_aws, account: str, service: str):
    import boto3

    return boto3.client(service, endpoint_url=local_aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=account, aws_secret_access_key="test")


def account_deploy(local_aws, account: str, *args: str, timeout: int = 900):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "deploy.py", *args], capture_output=True, text=True,
                          env=account_env(local_aws, account), cwd=ROOT, timeout=timeout)


# --- the fixes deploy.py prints, run exactly as printed ------------------------------------

AWS_CLI = ROOT / ".tools" / "awscli" / "bin" / "aws"
PRINTED = re.compile(r"(?:aws cloudformation|python deploy\.py) [^;()\n]+")


def printed_commands(text: str, containing: str = "") -> list[str]:
    """Every command a fix (or an output) prints, in the order printed, exactly as printed;
    only those containing `containing`, if given."""
    return [c for c in (m.group(0).strip() for m in PRINTED.finditer(text)) if containing in c]


def run_printed(env: dict, command: str, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """One printed command as the user types it, from the repository root: `python` is this
    project's interpreter, `aws` the AWS CLI (.tools/awscli). `extra`: arguments a test adds."""
    words = shlex.split(command)
    if words[:2] == ["python", "deploy.py"]:
        argv = [sys.executable, *words[1:]]
    elif words[:1] == ["aws"]:
        assert AWS_CLI.exists(), "the AWS CLI environment is missing: run ./ci/setup.sh"
        argv, env = [str(AWS_CLI), *words[1:]], {**env, "AWS_DEFAULT_REGION": env.get("AWS_REGION", "us-east-1")}
    else:
        raise AssertionError(f"not a command deploy.py prints: {command}")
    return subprocess.run([*argv, *extra], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
