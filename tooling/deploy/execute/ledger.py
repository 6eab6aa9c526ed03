"""The retained-resource ledger: what a delete or a rollback left behind, and the
command that adopts it back or removes it by hand. DeletionPolicy is read from
the deployed template (what CloudFormation acted on), never from the render."""
from __future__ import annotations

from ...aws import cloudformation as cfn
from ...aws import lookups
from ...aws.session import BotoCoreError, ClientError
from ...render import cfn_yaml, naming
from ..gate import inventory
from ..gate.findings import command
from ..workspace import Workspace

KEEP_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}


def snapshot(ws: Workspace, keys) -> dict[str, list[dict]]:
    """Before a delete: each deployed stack's resources with their DeletionPolicy as deployed."""
    result = {}
    for key in keys:
        name, region = ws.stacks[key]["name"], ws.region_of(key)
        resources = cfn.stack_resources(region, name)
        if not resources:
            continue
        deployed = cfn_yaml.load(cfn.get_template_body(region, name)).get("Resources") or {}
        result[key] = [{"logical_id": r["LogicalResourceId"], "physical_id": r.get("PhysicalResourceId", ""),
                        "type": r["ResourceType"], "region": region,
                        "deletion_policy": (deployed.get(r["LogicalResourceId"]) or {}).get("DeletionPolicy", "Delete")}
                       for r in resources]
    return result


def commands_for(ws: Workspace, stack_key: str, resource_type: str, physical_id: str) -> dict[str, str]:
    adopt = command(ws.env, ws.local, "adopt") if stack_key == naming.STORAGE else ""
    remove = {
        "AWS::S3::Bucket": f"aws s3 rb s3://{physical_id} --force   # deletes every object and version: the data is gone",
        "AWS::DynamoDB::Table": f"aws dynamodb update-table --table-name {physical_id} --no-deletion-protection-enabled && aws dynamodb delete-table --table-name {physical_id}",
        "AWS::Logs::LogGroup": f"aws logs delete-log-group --log-group-name {physical_id}",
        # Never advised: whatever the key encrypted (the retained buckets' objects) is lost with it.
        "AWS::KMS::Key": "keep it: the retained buckets' objects are encrypted with it and become unreadable without it",
        "AWS::KMS::Alias": f"aws kms delete-alias --alias-name {physical_id}   # the retained key can no longer be found by deploy.py adopt",
    }.get(resource_type, f"delete {resource_type} {physical_id} in its console or CLI")
    return {"adopt": adopt, "remove": remove}


def _still_exists(ws: Workspace, resource_type: str, physical_id: str, region: str) -> str:
    """exists | missing | unknown (listed: it may remain)."""
    if resource_type not in lookups.LOOKUPS:
        return "unknown"
    name = physical_id.rsplit(":", 1)[-1] if resource_type == "AWS::SNS::Topic" else physical_id
    try:
        return lookups.lookup(region, ws.account_id, resource_type, name).state
    except (ClientError, BotoCoreError):
        return "unknown"


def left_behind(ws: Workspace, before: dict[str, list[dict]], deleted: list[str]) -> list[dict]:
    entries = []
    for key in deleted:
        for resource in before.get(key, []):
            if resource["deletion_policy"] not in KEEP_POLICIES:
                continue
            exists = _still_exists(ws, resource["type"], resource["physical_id"], resource.get("region", ws.region))
            if exists == "missing":
                continue
            entries.append({"stack": key, **resource, "verified": exists == "exists",
                            **commands_for(ws, key, resource["type"], resource["physical_id"])})
    return entries


def print_ledger(entries: list[dict], log) -> None:
    if not entries:
        log("retained: nothing was left behind")
        return
    log(f"retained: {len(entries)} resource(s) left behind, data intact:")
    for entry in entries:
        log(f"  {entry['type']:<24} {entry['physical_id']}  (was {entry['stack']}/{entry['logical_id']}, {entry['deletion_policy']})")
        if entry.get("adopt"):
            log(f"      adopt:  {entry['adopt']}")
        log(f"      remove: {entry['remove']}")


def after_failure(ws: Workspace, key: str, since=None) -> list[dict]:
    """What a failed deploy of `key` left behind: resources its rollback skipped
    deleting (events after `since`, CloudFormation's clock), and resources the render
    names that exist now but no stack owns."""
    entries: dict[str, dict] = {}
    name, region = ws.stacks[key]["name"], ws.region_of(key)
    for event in cfn.stack_events(region, name, since=since):
        if event.get("ResourceStatus") == "DELETE_SKIPPED" and event.get("PhysicalResourceId"):
            entries[event["PhysicalResourceId"]] = {
                "stack": key, "logical_id": event["LogicalResourceId"], "physical_id": event["PhysicalResourceId"],
                "type": event.get("ResourceType", ""), "deletion_policy": "DELETE_SKIPPED", "verified": True,
                **commands_for(ws, key, event.get("ResourceType", ""), event["PhysicalResourceId"])}
    stack_names = ws.stack_names
    resources = inventory.named_resources(key, name, ws.template(key), ws.account_id, region)
    for item in inventory.survey(resources, stack_names, region, ws.account_id):
        resource = item.resource
        if item.state != inventory.ORPHAN or resource.name in entries:
            continue
        entries[resource.name] = {
            "stack": key, "logical_id": resource.logical_id, "physical_id": resource.name, "type": resource.type,
            "deletion_policy": "exists, no owner", "verified": True, **commands_for(ws, key, resource.type, resource.name)}
    return list(entries.values())
