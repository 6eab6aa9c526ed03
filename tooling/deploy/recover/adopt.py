"""adopt: take orphaned storage resources (buckets, the table) back into the storage
stack with a CloudFormation IMPORT change set. The data stays where it is: an
import only records the existing resource in the stack. Resources owned by
another stack are never touched."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...render import cfn_yaml, naming, samconfig, stateful
from ..gate import findings, inventory
from . import literals
from ..execute import protection
from .. import stacks, states
from ..gate.findings import command
from ..workspace import Workspace

IDENTIFIER = {"AWS::S3::Bucket": "BucketName", "AWS::DynamoDB::Table": "TableName"}


def import_template(base: dict, rendered: dict, orphans: list[str], region: str, account_id: str) -> dict:
    """`base` (the deployed template, or an empty one) plus the orphaned resources; their
    references to storage resources absent from it become literal values, so each imported
    resource stands on its own."""
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
    absent = {lid: named for lid, named in names.items() if lid not in present}
    for logical_id in orphans:
        resources[logical_id] = literals.rewrite(rendered["Resources"][logical_id], absent, region, account_id, keep_unknown=True)
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
    stack_names = ws.stack_names
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

    _, state = stacks.current(ws.region, name)
    if state.action == states.REPLACE:
        log(f"adopt: {name} is {state.status} (a failed create, holding nothing): deleting it first")
        if stacks.delete(ws.region, name, 900, 1) is not None:
            return AdoptResult("failed", [], left_alone, f"{name}: the empty stack could not be deleted")
        state = states.NO_STACK
    if state.action not in (states.ABSENT, states.UPDATE):
        finding = findings.state_finding(naming.STORAGE, name, state, [])
        return AdoptResult("refused", [], left_alone, f"{name} {finding.detail if finding else state.status}; fix: {finding.fix if finding else ''}")
    exists = state.action == states.UPDATE
    base = cfn_yaml.load(cfn.get_template_body(ws.region, name)) if exists else {}
    template = import_template(base, rendered, [r.logical_id for r in orphans], ws.region, ws.account_id)
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
    stacks.execute(ws.region, change_set)
    ended = stacks.wait_executed(ws.region, name, since, 3600, 1)
    status = ended.status or "MISSING"
    if not ended.succeeded:
        failure = ended.failure
        reason = f"{failure['LogicalResourceId']}: {failure.get('ResourceStatusReason', '')}" if failure else ""
        return AdoptResult("failed", [], left_alone, f"import ended {status} {reason}".strip(), status)
    problem = protection.protect_storage(ws)
    if problem:
        return AdoptResult("failed", orphans, left_alone, f"imported, but storage protection failed: {problem}", status)
    log(f"adopt: {status}; termination protection on, stack policy set (verified)")
    log(f"adopt: next, bring the stack to the full render: {command(ws.env, ws.local, 'apply')}")
    return AdoptResult("done", orphans, left_alone, stack_status=status)
