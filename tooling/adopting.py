"""adopt: take orphaned storage resources (buckets, the table) back into the storage
stack with a CloudFormation IMPORT change set. The data stays where it is: an
import only records the existing resource in the stack. Resources owned by
another stack are never touched."""
from __future__ import annotations

import json
import sys
import time

from . import aws, cfn_yaml, changes, naming, preflight, stateful
from .workspace import Workspace

IDENTIFIER = {"AWS::S3::Bucket": "BucketName", "AWS::DynamoDB::Table": "TableName"}


def literalize(value, names: dict[str, tuple[str, str]], present: set[str]):
    """Replace Ref/GetAtt to storage resources absent from the import template by
    their physical values, so each imported resource stands on its own."""
    if isinstance(value, list):
        return [literalize(v, names, present) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in names and value["Ref"] not in present:
        return names[value["Ref"]][1]
    if set(value) == {"Fn::GetAtt"}:
        target, attribute = value["Fn::GetAtt"] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".", 1)
        if target in names and target not in present and attribute == "Arn":
            kind, name = names[target]
            return f"arn:aws:s3:::{name}" if kind == "AWS::S3::Bucket" else value
    return {k: literalize(v, names, present) for k, v in value.items()}


def import_template(base: dict, rendered: dict, orphans: list[str]) -> dict:
    """`base` (the deployed template, or an empty one) plus the orphaned resources."""
    template = json.loads(json.dumps(base))
    template.setdefault("AWSTemplateFormatVersion", "2010-09-09")
    template.setdefault("Description", rendered.get("Description", ""))
    resources = template.setdefault("Resources", {})
    present = set(resources) | set(orphans)
    names = {}
    for logical_id, resource in (rendered.get("Resources") or {}).items():
        prop = IDENTIFIER.get(resource.get("Type"))
        if prop:
            names[logical_id] = (resource["Type"], resource["Properties"][prop])
    for logical_id in orphans:
        resources[logical_id] = literalize(rendered["Resources"][logical_id], names, present)
    return template


def wait_stack(ws: Workspace, name: str, timeout: float = 900) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = aws.describe_stack(ws.region, name)
        if stack and not changes.in_progress(stack["StackStatus"]):
            return stack
        time.sleep(1)
    return aws.describe_stack(ws.region, name)


def run_adopt(ws: Workspace, log, as_json: bool) -> int:
    from .apply import protect_storage

    name = ws.stacks[naming.STORAGE]["name"]
    rendered = cfn_yaml.load(ws.template_text(naming.STORAGE))
    surveyed = [s for s in preflight.survey(ws, [naming.STORAGE]) if s.resource.type in stateful.STATEFUL_TYPES]
    orphans = [s.resource for s in surveyed if s.state == "orphan"]
    foreign = [(s.resource, s.owner) for s in surveyed if s.state == "other-stack"]
    for resource, owner in foreign:
        log(f"adopt: left alone {resource.type} {resource.name}: owned by stack {owner}")
    if not orphans:
        log("adopt: no orphaned storage resource; nothing to do")
        if as_json:
            print(json.dumps({"env": ws.env, "adopted": [], "left_alone": [r.name for r, _ in foreign]}), file=sys.stdout)
        return 0

    stack = aws.describe_stack(ws.region, name)
    if stack and stack["StackStatus"] in changes.EMPTY_STATES:
        log(f"adopt: {name} is {stack['StackStatus']} (a failed create, holding nothing): deleting it first")
        aws.delete_stack(ws.region, name)
        aws.wait_deleted(ws.region, name)
        stack = None
    if stack and changes.in_progress(stack["StackStatus"]):
        log(f"adopt: {name} is {stack['StackStatus']}; try again when it is done")
        return 1
    base = cfn_yaml.load(aws.get_template_body(ws.region, name)) if stack else {}
    template = import_template(base, rendered, [r.logical_id for r in orphans])
    to_import = [{"ResourceType": r.type, "LogicalResourceId": r.logical_id, "ResourceIdentifier": {IDENTIFIER[r.type]: r.name}}
                 for r in orphans]
    log(f"adopt: importing {len(orphans)} resource(s) into {name}{'' if stack else ' (creating the stack by import)'}:")
    for resource in orphans:
        log(f"  {resource.type:<22} {resource.name}  -> {resource.logical_id}")
    # An import may change nothing else, tags included: the next apply adds them.
    change_set = aws.create_change_set(ws.region, name, json.dumps(template), "IMPORT", ["CAPABILITY_IAM"],
                                       resources_to_import=to_import)
    described = aws.wait_change_set(ws.region, change_set)
    if described["Status"] != "CREATE_COMPLETE":
        aws.delete_change_set(ws.region, change_set)
        log(f"adopt: the import change set failed: {described.get('StatusReason', '')}")
        return 1
    aws.execute_change_set(ws.region, change_set)
    final = wait_stack(ws, name)
    status = final["StackStatus"] if final else "MISSING"
    if not changes.succeeded(status):
        failure = changes.first_failure(aws.stack_events(ws.region, name))
        reason = f"{failure['LogicalResourceId']}: {failure.get('ResourceStatusReason', '')}" if failure else ""
        log(f"adopt: import ended {status} {reason}")
        return 1
    problem = protect_storage(ws)
    if problem:
        log(f"adopt: imported, but storage protection failed: {problem}")
        return 1
    log(f"adopt: {status}; termination protection on, stack policy set (verified)")
    log(f"adopt: next, bring the stack to the full render: python deploy.py apply --env {ws.env}{' --local' if ws.local else ''}")
    if as_json:
        print(json.dumps({"env": ws.env, "status": status, "adopted": [{"logical_id": r.logical_id, "type": r.type, "name": r.name} for r in orphans],
                          "left_alone": [r.name for r, _ in foreign]}, indent=2), file=sys.stdout)
    return 0
