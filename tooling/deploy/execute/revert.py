"""drift --revert: put storage's protections back to what its deployed template says.

On AWS: a drift-aware change set (CreateChangeSet DeploymentMode=REVERT_DRIFT on the
deployed template and parameters). Each ResourceChange then carries
ResourceDriftStatus and, per property, Drift{PreviousValue, ActualValue}; it is
inspected before it runs: it may modify (or re-add) drifted resources, never remove
or replace a stateful one. Changes it shows on resources that are IN_SYNC (open
reports of phantom changes: cloudformation-coverage-roadmap #2559, #2505) are named
as notes, and refused if they would remove or replace anything.

On the local AWS, which accepts REVERT_DRIFT but finds "no changes" on a drifted
stack (ministack 1.5.33, measured), each difference the read-back found is put back
with the S3 and DynamoDB calls that set it. Either way the result is read back again:
"reverted" is a verified statement. A resource that is gone (a deleted table) cannot
be reverted by either: its data went with it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...aws import readback
from ...render import naming, stateful
from .. import stacks
from ..gate import changesets, drift, findings
from ..workspace import Workspace
from . import protection

REVERT_DRIFT = "REVERT_DRIFT"


@dataclass
class Reverted:
    method: str  # "REVERT_DRIFT change set" | "S3 and DynamoDB calls (the local AWS)" | "nothing to revert"
    done: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left: list[drift.Difference] = field(default_factory=list)  # still different after the revert
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.left and not self.error


def revert_problems(changes: list[dict]) -> tuple[list[str], list[str]]:
    """A REVERT_DRIFT change set's changes (DescribeChangeSet's shape): what refuses it
    (a removal, or a replacement of a stateful resource) and notes (phantom changes)."""
    problems, notes = [], []
    for change in changes:
        rc = change.get("ResourceChange") or {}
        lid, kind, action = rc.get("LogicalResourceId", "?"), rc.get("ResourceType", ""), rc.get("Action", "")
        drift_status = rc.get("ResourceDriftStatus", "")
        if action == "Remove":
            problems.append(f"{lid} ({kind}) would be removed")
        elif action == "Modify" and rc.get("Replacement") in ("True", "Conditional") and kind in stateful.STATEFUL_TYPES:
            problems.append(f"{lid} ({kind}) would be replaced (Replacement {rc['Replacement']})")
        elif action == "Add" and kind in stateful.STATEFUL_TYPES and drift_status != "DELETED":
            problems.append(f"{lid} ({kind}) would be added, though it is not reported deleted")
        if action in ("Modify", "Add") and drift_status not in ("MODIFIED", "DELETED"):
            notes.append(f"{lid}: {action} on a resource CloudFormation reports {drift_status or 'without a drift status'} "
                         f"(a change with no drift behind it)")
        for detail in rc.get("Details", []):
            target = detail.get("Target") or {}
            d = target.get("Drift")
            if d:
                notes.append(f"{lid}: {target.get('Path') or target.get('Name')}: {d.get('ActualValue')} -> "
                             f"{target.get('AfterValue', d.get('PreviousValue'))}")
    return problems, notes


def revert(ws: Workspace, log, poll: float = 2.0) -> Reverted:
    problem = protection.protect_storage(ws)
    if problem:
        return Reverted("none", error=f"storage protection could not be restored: {problem}")
    log("drift: storage: termination protection on, stack policy set (verified)")
    before = drift.read_back(ws)
    if not before.deployed:
        return Reverted("none", error="the storage stack is not deployed")
    if before.unknown:
        return Reverted("none", error="; ".join(before.unknown))
    if not before.differences:
        return Reverted("nothing to revert")
    result = _by_calls(ws, before, log) if ws.local else _by_change_set(ws, log, poll)
    if result.error:
        return result
    result.left = drift.read_back(ws).differences
    return result


def _by_change_set(ws: Workspace, log, poll: float) -> Reverted:
    result = Reverted(f"{REVERT_DRIFT} change set")
    name = ws.stacks[naming.STORAGE]["name"]
    stack = cfn.describe_stack(ws.region, name)
    change_set = cfn.create_change_set(
        ws.region, name, "UPDATE", list(stack.get("Capabilities", [])), use_previous_template=True,
        tags={t["Key"]: t["Value"] for t in stack.get("Tags", [])},
        parameters=[{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in stack.get("Parameters", [])],
        deployment_mode=REVERT_DRIFT)
    with changesets.Executing(ws.region, change_set) as run:
        described = cfn.wait_change_set(ws.region, change_set)
        outcome, reason = findings.change_set_outcome(described)
        if outcome == "no-changes":
            result.notes.append("CloudFormation's drift-aware change set found nothing to revert")
            return result
        if outcome != "ready":
            result.error = f"the {REVERT_DRIFT} change set {outcome}: {reason}"
            return result
        problems, result.notes = revert_problems(described.get("Changes", []))
        if problems:
            result.error = f"the {REVERT_DRIFT} change set was not executed: " + "; ".join(problems)
            return result
        for change in described.get("Changes", []):
            rc = change.get("ResourceChange") or {}
            result.done.append(f"{rc.get('LogicalResourceId')}: {rc.get('Action')} ({rc.get('ResourceDriftStatus', '')})")
        since = cfn.last_event_time(ws.region, name)
        run.execute()
    ended = stacks.wait_executed(ws.region, name, since, 3600, poll)
    if not ended.succeeded:
        failure = ended.failure or {}
        result.error = f"the revert ended {ended.status}: {failure.get('LogicalResourceId', '')} {failure.get('ResourceStatusReason', '')}".strip()
    return result


def _by_calls(ws: Workspace, before: drift.ReadBack, log) -> Reverted:
    result = Reverted("S3 and DynamoDB calls (the local AWS ignores REVERT_DRIFT change sets)")
    _, template, resolver = drift.deployed_storage(ws)
    resources = template.get("Resources") or {}
    by_name: dict[str, list[drift.Difference]] = {}
    for d in before.differences:
        by_name.setdefault(d.expected.name, []).append(d)
    for name, diffs in sorted(by_name.items()):
        for d in diffs:
            e = d.expected
            wanted = ("PolicyDocument",) if e.path == "BucketPolicy.Sids" else drift.READ_BACK
            props = resolver.resolve({k: v for k, v in ((resources.get(e.logical_id) or {}).get("Properties") or {}).items() if k in wanted})
            if e.path == "exists":
                result.error = f"{e.type} {name} ({e.logical_id}) is gone, with its data: restore it from a backup first"
                return result
            if e.path == "VersioningConfiguration.Status":
                readback.put_bucket_versioning(ws.region, name, e.value)
            elif e.path.startswith("PublicAccessBlockConfiguration."):
                block = props["PublicAccessBlockConfiguration"]
                readback.put_public_access_block(ws.region, name, {k: drift._bool(v) for k, v in block.items()})
            elif e.path.startswith("BucketEncryption."):
                rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                readback.put_bucket_encryption(ws.region, name, {"Rules": [
                    {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"],
                     **({"BucketKeyEnabled": drift._bool(r["BucketKeyEnabled"])} if "BucketKeyEnabled" in r else {})} for r in rules]})
            elif e.path == "BucketPolicy.Sids":
                readback.put_bucket_policy(ws.region, name, props["PolicyDocument"])
            elif e.path == "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled" and e.value:
                readback.enable_point_in_time_recovery(ws.region, name)
            elif e.path == "DeletionProtectionEnabled" and e.value:
                readback.enable_deletion_protection(ws.region, name)
            else:
                result.error = f"{e.type} {name}: {e.path} cannot be put back here; set it to {json.dumps(e.value)} by hand"
                return result
            result.done.append(f"{e.type} {name} ({e.logical_id}): {e.path} {json.dumps(d.actual)} -> {json.dumps(e.value)}")
            log(f"drift: put back {result.done[-1]}")
    return result
