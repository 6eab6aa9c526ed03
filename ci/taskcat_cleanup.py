#!/usr/bin/env python3
"""Remove what taskcat's environment retained: its buckets (emptied first: every object
and version) and its sessions table. ci/taskcat.sh runs it last; run it yourself after
a run that stopped before its end.

    .venv/bin/python ci/taskcat_cleanup.py --env taskcat [--local]

Only an environment that .taskcat.yml tests (its stack names are the tests'), and in it
only a bucket or table that carries the environment's name, no stack owns, and is
tagged by that environment's stacks (project=ai-social-media, environment=<env>).
Anything else is left alone and said so (exit 1). Exit 0 when nothing of it remains."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tooling.aws import session  # noqa: E402
from tooling.aws.emulator import LOCAL_CREDENTIALS  # noqa: E402
from tooling.deploy.gate import inventory  # noqa: E402
from tooling.deploy import workspace  # noqa: E402
from tooling.errors import UserError  # noqa: E402
from tooling.render import environment, naming  # noqa: E402

PROJECT_TAG = ("project", "ai-social-media")


def tested_stack_names(config: Path = ROOT / ".taskcat.yml") -> set[str]:
    return {test.get("stack_name", "") for test in (yaml.safe_load(config.read_text()).get("tests") or {}).values()}


def require_taskcat_environment(env: str, stack_names: dict[str, str]) -> None:
    """The environment must be the one .taskcat.yml tests: its stateless stacks are the tests' stacks."""
    expected = {name for key, name in stack_names.items() if key != naming.STORAGE}
    tested = tested_stack_names()
    if expected != tested:
        raise UserError(f"environment {env!r} is not taskcat's: .taskcat.yml tests {', '.join(sorted(tested))}; "
                        f"taskcat runs, and its cleanup deletes, only the environment whose stacks those are")


def tagged_by(tags: dict[str, str], env: str) -> bool:
    return tags.get(PROJECT_TAG[0]) == PROJECT_TAG[1] and tags.get("environment") == env


def empty_and_delete_bucket(s3, name: str) -> int:
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=name, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})
        removed += len(doomed)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):  # what versioning never saw
        doomed = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if doomed:
            s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
        removed += len(doomed)
    s3.delete_bucket(Bucket=name)
    return removed


def cleanup(ws, log) -> int:
    s3, dynamodb = session.client("s3", ws.region), session.client("dynamodb", ws.region)
    owners = inventory.Owners(ws.region)
    physical = ws.manifest["physical_names"]
    left = 0
    for name in sorted(physical["buckets"].values()):
        found = inventory.lookups.lookup(ws.region, ws.account_id, "AWS::S3::Bucket", name)
        if found.state == "missing":
            log(f"cleanup: bucket {name}: not there")
            continue
        owner = owners.owner("AWS::S3::Bucket", name) if found.state == "exists" else None
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]} if found.state == "exists" else {}
        except session.ClientError:
            tags = {}
        if found.state != "exists" or owner or not tagged_by(tags, ws.env):
            why = (found.reason or found.state) if found.state != "exists" else \
                f"stack {owner.stack} owns it" if owner else f"not tagged environment={ws.env} by this project ({tags})"
            log(f"cleanup: bucket {name}: LEFT ALONE: {why}")
            left += 1
            continue
        removed = empty_and_delete_bucket(s3, name)
        log(f"cleanup: bucket {name}: emptied ({removed} objects and versions) and deleted")
    table = physical["table"]
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except session.ClientError as exc:
        if session.error_code(exc) != "ResourceNotFoundException":
            raise
        log(f"cleanup: table {table}: not there")
        return left
    owner = owners.owner("AWS::DynamoDB::Table", table)
    tags = {t["Key"]: t["Value"] for t in dynamodb.list_tags_of_resource(ResourceArn=description["TableArn"]).get("Tags", [])}
    if owner or not tagged_by(tags, ws.env):
        log(f"cleanup: table {table}: LEFT ALONE: " + (f"stack {owner.stack} owns it" if owner else f"not tagged environment={ws.env} by this project"))
        return left + 1
    if description.get("DeletionProtectionEnabled"):
        dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
    dynamodb.delete_table(TableName=table)
    dynamodb.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    log(f"cleanup: table {table}: deletion protection off, deleted")
    return left


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ci/taskcat_cleanup.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="taskcat's environment (environments/taskcat.toml)")
    parser.add_argument("--local", action="store_true", help="the local AWS at AWS_ENDPOINT_URL")
    args = parser.parse_args(argv)
    try:
        environment.load(args.env)
        if args.local:
            if not os.environ.get("AWS_ENDPOINT_URL"):
                raise UserError("--local: set AWS_ENDPOINT_URL to the local AWS that holds the run (a new one holds nothing)")
            for key, value in LOCAL_CREDENTIALS.items():
                os.environ.setdefault(key, value)
        ws = workspace.open_workspace(args.env, args.local, log=lambda _: None)
        require_taskcat_environment(args.env, ws.stack_names)
        left = cleanup(ws, print)
    except UserError as exc:
        print(f"cleanup: {exc}", file=sys.stderr)
        return exc.status
    except (session.ClientError, session.BotoCoreError) as exc:
        print(f"cleanup: {session.describe_error(exc)}", file=sys.stderr)
        return 1
    print("cleanup: nothing of taskcat's environment is left" if not left else f"cleanup: {left} resource(s) left alone (above)")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
