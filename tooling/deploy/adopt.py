"""adopt: take orphaned storage resources (buckets, the table) back into the storage
stack with a CloudFormation IMPORT change set. The data stays where it is: an
import only records the existing resource in the stack. Resources owned by
another stack are never touched."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..aws import cloudformation as cfn
from ..render import cfn_yaml, naming, samconfig, stateful
from . import changes, findings, inventory, protection, states
from .findings import command
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


@dataclass
class AdoptResult:
    status: str  # done | nothing | refused | failed
    adopted: list = field(default_factory=list)
    left_alone: list = field(default_factory=list)  # (resource, why)
    detail: str = ""
    stack_status: str | None = None


def run_adopt(ws: Workspace, log) -> AdoptResult:
    name = ws.stacks[naming.STORAGE]["name"]
    rendered = ws.template(naming.STORAGE)
    stack_names = {k: s["name"] for k, s in ws.stacks.items()}
    resources = [r for r in inventory.named_resources(naming.STORAGE, name, rendered, ws.account_id, ws.region)
                 if r.type in stateful.STATEFUL_TYPES]
    surveyed = inventory.survey(resources, stack_names, ws.region, ws.account_id)
    orphans = [s.resource for s in surveyed if s.state == inventory.ORPHAN]
    left_alone = [(s.resource, f"{s.state}: {s.reason or (s.owner.stack if s.owner else '')}".rstrip(": "))
                  for s in surveyed if s.state in (inventory.OTHER_OWNER, inventory.FOREIGN)]
    for resource, why in left_alone:
        log(f"adopt: left alone {resource.type} {resource.name} ({why})")
    unknown = [s for s in surveyed if s.state == inventory.UNKNOWN]
    if unknown:  # fail closed: an import must not run on a guess
        for item in unknown:
            log(f"adopt: cannot establish {item.resource.type} {item.resource.name}: {item.reason}")
        return AdoptResult("refused", [], left_alone, "some storage resources could not be looked up; nothing was imported")
    if not orphans:
        log("adopt: no orphaned storage resource; nothing to do")
        return AdoptResult("nothing", [], left_alone)

    stack = cfn.describe_stack(ws.region, name)
    state = states.state_of(stack, None if stack is None or stack["StackStatus"] != "REVIEW_IN_PROGRESS"
                            else len(cfn.stack_resources(ws.region, name)))
    if state.action == states.REPLACE:
        log(f"adopt: {name} is {state.status} (a failed create, holding nothing): deleting it first")
        cfn.delete_stack(ws.region, name)
        if cfn.wait_stack(ws.region, name, 900, 1) is not None:
            return AdoptResult("failed", [], left_alone, f"{name}: the empty stack could not be deleted")
        state = states.NO_STACK
    if state.action not in (states.ABSENT, states.UPDATE):
        finding = findings.state_finding(naming.STORAGE, name, state, [])
        return AdoptResult("refused", [], left_alone, f"{name} {finding.detail if finding else state.status}; fix: {finding.fix if finding else ''}")
    exists = state.action == states.UPDATE
    base = cfn_yaml.load(cfn.get_template_body(ws.region, name)) if exists else {}
    template = import_template(base, rendered, [r.logical_id for r in orphans])
    to_import = [{"ResourceType": r.type, "LogicalResourceId": r.logical_id, "ResourceIdentifier": {IDENTIFIER[r.type]: r.name}}
                 for r in orphans]
    log(f"adopt: importing {len(orphans)} resource(s) into {name}{'' if exists else ' (creating the stack by import)'}:")
    for resource in orphans:
        log(f"  {resource.type:<22} {resource.name}  -> {resource.logical_id}")
    # An import may change nothing else, tags included: the next apply adds them.
    change_set = cfn.create_change_set(ws.region, name, "IMPORT", samconfig.capabilities(ws.stacks[naming.STORAGE]),
                                       template_body=json.dumps(template), resources_to_import=to_import)
    described = cfn.wait_change_set(ws.region, change_set)
    outcome, reason = findings.change_set_outcome(described)
    if outcome != "ready":
        cfn.delete_change_set(ws.region, change_set)
        return AdoptResult("failed", [], left_alone, f"the import change set {outcome}: {reason}")
    since = cfn.last_event_time(ws.region, name) if exists else None
    cfn.execute_change_set(ws.region, change_set)
    final = cfn.wait_stack(ws.region, name, 3600, 1)
    status = final["StackStatus"] if final else "MISSING"
    if final is None or not states.state_of(final).succeeded:
        failure = changes.first_failure(cfn.stack_events(ws.region, name, since=since))
        reason = f"{failure['LogicalResourceId']}: {failure.get('ResourceStatusReason', '')}" if failure else ""
        return AdoptResult("failed", [], left_alone, f"import ended {status} {reason}".strip(), status)
    problem = protection.protect_storage(ws)
    if problem:
        return AdoptResult("failed", orphans, left_alone, f"imported, but storage protection failed: {problem}", status)
    log(f"adopt: {status}; termination protection on, stack policy set (verified)")
    log(f"adopt: next, bring the stack to the full render: {command(ws.env, ws.local, 'apply')}")
    return AdoptResult("done", orphans, left_alone, stack_status=status)
