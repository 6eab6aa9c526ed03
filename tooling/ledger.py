"""The retained-resource ledger: what a delete or a rollback left behind, and the
command that adopts it back or removes it by hand."""
from __future__ import annotations

from . import aws, cfn_yaml, naming
from .workspace import Workspace

KEEP_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}


def snapshot(ws: Workspace) -> dict[str, list[dict]]:
    """Each deployed stack's resources: key -> [{logical_id, physical_id, type}]."""
    result = {}
    for key, stack in ws.stacks.items():
        result[key] = [
            {"logical_id": r["LogicalResourceId"], "physical_id": r.get("PhysicalResourceId", ""), "type": r["ResourceType"]}
            for r in aws.stack_resources(ws.region, stack["name"])
        ]
    return result


def still_exists(ws: Workspace, resource_type: str, physical_id: str) -> bool | None:
    if resource_type == "AWS::S3::Bucket":
        return aws.bucket_exists(ws.region, physical_id)
    if resource_type == "AWS::DynamoDB::Table":
        return aws.table_exists(ws.region, physical_id)
    return None  # unknown: listed when its policy keeps it


def commands_for(ws: Workspace, stack_key: str, resource_type: str, physical_id: str) -> dict[str, str]:
    adopt = f"python deploy.py adopt --env {ws.env}{' --local' if ws.local else ''}" if stack_key == naming.STORAGE else ""
    remove = {
        "AWS::S3::Bucket": f"aws s3 rb s3://{physical_id} --force   # deletes every object and version: the data is gone",
        "AWS::DynamoDB::Table": f"aws dynamodb update-table --table-name {physical_id} --no-deletion-protection-enabled && aws dynamodb delete-table --table-name {physical_id}",
    }.get(resource_type, f"delete {resource_type} {physical_id} in its console or CLI")
    return {"adopt": adopt, "remove": remove}


def left_behind(ws: Workspace, before: dict[str, list[dict]], deleted: list[str]) -> list[dict]:
    entries = []
    for key in deleted:
        template = cfn_yaml.load(ws.template_text(key))
        resources = template.get("Resources") or {}
        for resource in before.get(key, []):
            policy = (resources.get(resource["logical_id"]) or {}).get("DeletionPolicy", "Delete")
            if policy not in KEEP_POLICIES:
                continue
            exists = still_exists(ws, resource["type"], resource["physical_id"])
            if exists is False:
                continue
            entries.append({"stack": key, **resource, "deletion_policy": policy,
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
    deleting, and resources the render names that exist now but no stack owns."""
    from . import preflight

    entries: dict[str, dict] = {}
    name = ws.stacks[key]["name"]
    for event in aws.stack_events(ws.region, name):
        if since is not None and event["Timestamp"] < since:
            continue
        if event.get("ResourceStatus") == "DELETE_SKIPPED" and event.get("PhysicalResourceId"):
            entries[event["PhysicalResourceId"]] = {
                "stack": key, "logical_id": event["LogicalResourceId"], "physical_id": event["PhysicalResourceId"],
                "type": event.get("ResourceType", ""), "deletion_policy": "DELETE_SKIPPED",
                **commands_for(ws, key, event.get("ResourceType", ""), event["PhysicalResourceId"])}
    for item in preflight.survey(ws, [key]):
        resource = item.resource
        if resource.name in entries or item.state != "orphan":
            continue
        entries[resource.name] = {
            "stack": key, "logical_id": resource.logical_id, "physical_id": resource.name, "type": resource.type,
            "deletion_policy": "exists, no owner", **commands_for(ws, key, resource.type, resource.name)}
    return list(entries.values())
