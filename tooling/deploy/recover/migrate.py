"""migrate: move every stateful resource of the storage render that lives in a stack
of the old layout (outside this environment's own stacks) into the storage stack,
keeping its physical name and its data. Then apply takes over.

Per old stack, in this order, each step decided from what is deployed now (so a
run that stopped anywhere resumes where it stopped, and a second run does nothing):

  retain   the old stack's stateful resources, and any CDK auto-delete custom
           resource on them, get DeletionPolicy and UpdateReplacePolicy Retain; the
           template is otherwise the one deployed, and a change set that shows any
           other change is refused. The auto-delete tag CDK's handler checks
           (aws-cdk:auto-delete-objects) is taken off each bucket first.
  remove   the resources leave the old stack and stay where they are (retained);
           whatever in it refers to them (Ref, GetAtt, an export another old stack
           imports) is rewritten to the literal physical value.
  import   IMPORT into the storage stack (created by the import if absent), then
           termination protection and the stack policy, verified: this is adopt.

At no step can a bucket or the table be deleted or replaced: a change set that
would remove or replace one is refused before it runs."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...aws import s3
from ...paths import ROOT
from ...render import cfn_yaml, naming, stateful
from ..gate import findings, inventory
from ..gate.changesets import Executing
from . import literals
from .. import stacks, states
from .literals import Unmovable
from ..gate.findings import command
from ..workspace import Workspace

# CDK's custom resources that empty a bucket when they are deleted. CDK's handler
# (aws-cdk custom-resource-handlers, aws-s3/auto-delete-objects-handler) empties only
# a bucket tagged aws-cdk:auto-delete-objects=true, and only on a Delete event.
AUTO_DELETE_TYPES = ("Custom::S3AutoDeleteObjects", "Custom::AutoDeleteObjects")
AUTO_DELETE_TAG = "aws-cdk:auto-delete-objects"
# Resources whose deletion changes the bucket they are attached to: a BucketPolicy's delete
# calls DeleteBucketPolicy (wiping whatever policy is in force then: storage's TLS-only
# policy, or the OAC grant CloudFront needs); CDK's notifications resource rewrites the
# bucket's notification configuration; CDK's auto-delete resource empties it. They leave
# the old stack with the bucket (retained, removed), so deleting the old stack acts on nothing.
ATTACHED_TYPES = ("AWS::S3::BucketPolicy", "Custom::S3BucketNotifications") + AUTO_DELETE_TYPES
RETAIN = "Retain"
PLACEHOLDER = "MigratedAwayPlaceholder"


@dataclass
class Move:
    """One stateful resource of the storage render, and where it is now."""
    logical_id: str  # in the storage render
    type: str
    name: str
    state: str  # in-storage | in-old-stack | orphan | missing | blocked
    old_stack: str | None = None
    old_logical_id: str | None = None
    deletion_policy: str | None = None  # in the old stack, as deployed
    reason: str = ""

    def as_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Step:
    kind: str  # retain | untag | remove | import | protect
    stack: str
    detail: str
    resources: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return dict(self.__dict__)


# --- pure: templates ------------------------------------------------------------------------

def _refers_to(value, logical_ids: set[str]) -> bool:
    if isinstance(value, list):
        return any(_refers_to(v, logical_ids) for v in value)
    if not isinstance(value, dict):
        return False
    if set(value) == {"Ref"} and value["Ref"] in logical_ids:
        return True
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        target = target[0] if isinstance(target, list) else str(target).split(".", 1)[0]
        if target in logical_ids:
            return True
    return any(_refers_to(v, logical_ids) for v in value.values())


def auto_delete_resources(template: dict, bucket_ids: set[str]) -> list[str]:
    """The CDK auto-delete custom resources that act on any of these buckets."""
    return sorted(lid for lid, r in (template.get("Resources") or {}).items()
                  if (r or {}).get("Type") in AUTO_DELETE_TYPES and _refers_to((r or {}).get("Properties") or {}, bucket_ids))


def attached_resources(template: dict, moved_ids: set[str]) -> list[str]:
    """The resources of the old stack that act on a moved bucket or table (ATTACHED_TYPES
    whose properties refer to one): they are retained and removed with it."""
    return sorted(lid for lid, r in (template.get("Resources") or {}).items()
                  if lid not in moved_ids and (r or {}).get("Type") in ATTACHED_TYPES
                  and _refers_to((r or {}).get("Properties") or {}, moved_ids))


def retain_template(template: dict, logical_ids) -> dict:
    """The template as deployed, with DeletionPolicy and UpdateReplacePolicy Retain on these."""
    result = json.loads(json.dumps(template))
    for lid in logical_ids:
        result["Resources"][lid]["DeletionPolicy"] = RETAIN
        result["Resources"][lid]["UpdateReplacePolicy"] = RETAIN
    return result


def removal_template(template: dict, moved: dict[str, tuple[str, str]], region: str, account_id: str,
                     attached=()) -> dict:
    """The template without the moved resources (logical id -> (type, name)) and the
    resources attached to them; every reference to a moved one rewritten to its literal
    physical value, DependsOn on any removed one dropped. A reference to an attached one
    from what stays has no literal form: Unmovable."""
    result = {k: v for k, v in json.loads(json.dumps(template)).items()}
    gone = set(moved) | set(attached)
    resources = {lid: r for lid, r in (result.get("Resources") or {}).items() if lid not in gone}
    if attached and _refers_to({k: v for k, v in result.items() if k != "Resources"} | {"Resources": resources}, set(attached)):
        raise Unmovable(f"what stays in the stack refers to {', '.join(sorted(attached))}, which leave(s) it with the moved resources")
    for lid, resource in resources.items():
        depends = resource.get("DependsOn")
        if depends is not None:
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in gone]
            if kept:
                resource["DependsOn"] = kept
            else:
                resource.pop("DependsOn")
    result["Resources"] = resources
    for section in ("Resources", "Outputs", "Conditions", "Metadata"):
        if section in result:
            result[section] = literals.rewrite(result[section], moved, region, account_id)
    if not resources:  # CloudFormation refuses a template without resources: hold a no-op one until --delete-old
        result["Resources"] = {PLACEHOLDER: {"Type": "AWS::CloudFormation::WaitConditionHandle"}}
    return result


POLICY_SCOPES = {"DeletionPolicy", "UpdateReplacePolicy"}


def _only_follows(rc: dict, ids: set[str]) -> bool:
    """A Modify whose every detail is a dynamic re-evaluation caused by one of `ids`
    (a reference to a resource that changes), replacing nothing."""
    details = rc.get("Details") or []
    return bool(details) and rc.get("Replacement") != "True" and all(
        d.get("Evaluation") == "Dynamic" and d.get("ChangeSource") in ("ResourceReference", "ResourceAttribute")
        and str(d.get("CausingEntity", "")).split(".")[0] in ids for d in details)


def _followers(raw_changes: list[dict], ids: set[str]) -> set[str]:
    """The resources a change set only re-evaluates because of `ids`, directly or through
    another resource it only re-evaluates (a bucket policy that refers to a bucket that
    refers to the key whose policies change): none of their values changes."""
    found: set[str] = set()
    while True:
        more = {rc.get("LogicalResourceId") for rc in ((c.get("ResourceChange") or {}) for c in raw_changes)
                if rc.get("Action") == "Modify" and rc.get("LogicalResourceId") not in ids | found and _only_follows(rc, ids | found)}
        if not more:
            return found
        found |= more


def unexpected_changes(raw_changes: list[dict], step: str, ids: set[str]) -> list[str]:
    """What a migration change set must not do, read from CloudFormation's own words
    (Action, Scope, PolicyAction, Replacement):
      retain  only the retained resources change, and only their DeletionPolicy or
              UpdateReplacePolicy; anything else is refused
      remove  only the moved resources leave, each with PolicyAction Retain (kept, never
              deleted); nothing is added but the placeholder, nothing replaced"""
    problems = []
    verbs = {"Add": "adds", "Remove": "removes", "Modify": "modifies", "Import": "imports", "Dynamic": "re-evaluates"}
    follows = _followers(raw_changes, ids)
    for change in raw_changes:
        rc = change.get("ResourceChange") or {}
        action, lid = rc.get("Action"), rc.get("LogicalResourceId", "?")
        if action == "Modify" and lid not in ids and lid in follows:
            continue  # re-evaluated because it refers to a changed one: its values stay what they are
        if step == "retain":
            scope = set(rc.get("Scope") or [])
            if action != "Modify" or lid not in ids:
                problems.append(f"{verbs.get(action, action)} {lid}")
            elif not scope or not scope <= POLICY_SCOPES:
                # a retained resource that refers to another retained one (a bucket policy to its
                # bucket) shows its references re-evaluated: no value changes, its policies do
                rest = {**rc, "Details": [d for d in rc.get("Details") or []
                                          if (d.get("Target") or {}).get("Attribute") not in POLICY_SCOPES]}
                if not _only_follows(rest, ids):
                    problems.append(f"changes {', '.join(sorted(scope - POLICY_SCOPES)) or 'something'} of {lid}")
        else:
            if action == "Add" and lid != PLACEHOLDER:
                problems.append(f"adds {lid}")
            elif action == "Remove" and lid not in ids:
                problems.append(f"removes {lid}")
            elif action == "Remove" and rc.get("PolicyAction", "Retain") != "Retain":
                problems.append(f"removes {lid} with PolicyAction {rc.get('PolicyAction')} (it would be deleted)")
            elif action == "Modify" and rc.get("Replacement") == "True":
                problems.append(f"replaces {lid}")
    return problems


# --- facts and the plan -------------------------------------------------------------------------

def survey(ws: Workspace) -> tuple[list[Move], dict[str, dict], set[str]]:
    """Where each stateful resource of the storage render is now; the deployed
    templates of the old stacks holding any (stack name -> template); and the buckets
    an auto-delete custom resource acts on that still carry CDK's tag."""
    storage_name = ws.stacks[naming.STORAGE]["name"]
    own = {s["name"] for s in ws.stacks.values()}
    rendered = ws.template(naming.STORAGE)
    resources = [r for r in inventory.named_resources(naming.STORAGE, storage_name, rendered, ws.account_id, ws.region)
                 if r.type in stateful.STATEFUL_TYPES]
    surveyed = inventory.survey(resources, ws.stack_names, ws.region, ws.account_id)
    moves, templates = [], {}
    for item in surveyed:
        r = item.resource
        move = Move(r.logical_id, r.type, r.name, "")
        if item.state == inventory.OURS:
            move.state = "in-storage"
        elif item.state == inventory.FREE:
            move.state = "missing"
        elif item.state == inventory.ORPHAN:
            move.state = "orphan"
        elif item.state == inventory.OTHER_OWNER and item.owner.stack not in own:
            if item.owner.stack not in templates:
                templates[item.owner.stack] = cfn_yaml.load(cfn.get_template_body(ws.region, item.owner.stack))
            deployed = (templates[item.owner.stack].get("Resources") or {}).get(item.owner.logical_id) or {}
            move.state, move.old_stack, move.old_logical_id = "in-old-stack", item.owner.stack, item.owner.logical_id
            move.deletion_policy = deployed.get("DeletionPolicy", "Delete")
        else:
            move.state = "blocked"
            move.reason = (f"owned by {item.owner.stack} ({item.owner.logical_id}), a stack of this environment"
                           if item.owner else item.reason or item.state)
        moves.append(move)
    tagged = set()
    for move in moves:
        if move.state == "in-old-stack" and move.type == "AWS::S3::Bucket" and \
                auto_delete_resources(templates[move.old_stack], {move.old_logical_id}) and s3.has_bucket_tag(ws.region, move.name, AUTO_DELETE_TAG):
            tagged.add(move.name)
    return moves, templates, tagged


def plan_steps(moves: list[Move], templates: dict[str, dict], tagged: set[str] = frozenset()) -> list[Step]:
    """The steps still to take, from where everything is now (so a second run resumes)."""
    harmless: list[Step] = []  # every old stack made harmless before anything is removed
    removals: list[Step] = []
    by_stack: dict[str, list[Move]] = {}
    for move in moves:
        if move.state == "in-old-stack":
            by_stack.setdefault(move.old_stack, []).append(move)
    for stack, held in sorted(by_stack.items()):
        ids = {m.old_logical_id for m in held}
        auto = auto_delete_resources(templates[stack], {m.old_logical_id for m in held if m.type == "AWS::S3::Bucket"})
        attached = attached_resources(templates[stack], ids)
        resources = templates[stack].get("Resources") or {}
        unretained = sorted(lid for lid in ids | set(attached)
                            if (resources[lid].get("DeletionPolicy"), resources[lid].get("UpdateReplacePolicy")) != (RETAIN, RETAIN))
        still_tagged = sorted(m.name for m in held if m.name in tagged)
        if auto and still_tagged:
            harmless.append(Step("untag", stack, f"take the {AUTO_DELETE_TAG} tag off {', '.join(still_tagged)}, which "
                                              f"{', '.join(auto)} act(s) on (CDK's handler empties only a bucket carrying it)", auto))
        if unretained:
            harmless.append(Step("retain", stack, "set DeletionPolicy and UpdateReplacePolicy Retain, nothing else", unretained))
        removals.append(Step("remove", stack, "remove them, and what acts on them (bucket policies, CDK's custom resources), "
                                           "from the stack (retained: they stay, with their data and policies); "
                                           "references become literal values", sorted(ids | set(attached))))
    steps = harmless + removals
    to_import = [m for m in moves if m.state in ("in-old-stack", "orphan")]
    if to_import:
        steps.append(Step("import", naming.STORAGE, "IMPORT into the storage stack (created by the import if absent)",
                          sorted(m.logical_id for m in to_import)))
        steps.append(Step("protect", naming.STORAGE, "termination protection on, stack policy set, both read back"))
    return steps


def old_stacks_to_delete(ws: Workspace, names: list[str]) -> list[str]:
    """Refusals for --delete-old: a stack of this environment, one that still holds a
    stateful resource, or one that does not exist."""
    own = {s["name"] for s in ws.stacks.values()}
    problems = []
    for name in names:
        if name in own:
            problems.append(f"{name} is a stack of this environment, not an old one")
            continue
        stack = cfn.describe_stack(ws.region, name)
        if stack is None:
            continue
        held = [f"{r['LogicalResourceId']} ({r['ResourceType']})" for r in cfn.stack_resources(ws.region, name)
                if r["ResourceType"] in stateful.STATEFUL_TYPES and inventory.held(r)]
        if held:
            problems.append(f"{name} still holds stateful resources: {', '.join(held)}")
    return problems


# --- the steps, against AWS ---------------------------------------------------------------------

class Refused(Exception):
    """A step whose change set would do more than it should: nothing was executed."""


def _run_change_set(ws: Workspace, stack: dict, template: dict, log, ids: set[str], what: str) -> None:
    """Update an old stack to `template` through a change set that is inspected first
    (unexpected_changes) and executed only if it does exactly `what`, to exactly `ids`."""
    name = stack["StackName"]
    capabilities = [c for c in stack.get("Capabilities", [])] or ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    parameters = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in stack.get("Parameters", [])]
    body = json.dumps(template)
    change_set = cfn.create_change_set(ws.region, name, "UPDATE", capabilities, template_body=body,
                                       tags={t["Key"]: t["Value"] for t in stack.get("Tags", [])}, parameters=parameters)
    with Executing(ws.region, change_set) as run:
        described = cfn.wait_change_set(ws.region, change_set)
        outcome, reason = findings.change_set_outcome(described)
        if outcome == "no-changes":
            log(f"  {name}: {what}: CloudFormation finds nothing to change")
            return
        if outcome != "ready":
            raise Refused(f"{name}: the {what} change set {outcome}: {reason}")
        problems = unexpected_changes(described["Changes"], what, ids)
        if problems:
            raise Refused(f"{name}: the {what} change set would do more than {what}: {'; '.join(problems)}")
        since = cfn.last_event_time(ws.region, name)
        run.execute()
    ended = stacks.wait_executed(ws.region, name, since, 3600, 1)
    if not ended.succeeded:
        failure = ended.failure
        reason = f": {failure['LogicalResourceId']}: {failure.get('ResourceStatusReason', '')}" if failure else ""
        raise Refused(f"{name}: the {what} update ended {ended.status or 'deleted'}{reason}")
    log(f"  {name}: {what}: {ended.status}")


def run_step(ws: Workspace, step: Step, moves: list[Move], templates: dict[str, dict], log) -> None:
    if step.kind == "untag":
        resources = templates[step.stack].get("Resources") or {}
        buckets = {m.old_logical_id: m.name for m in moves if m.old_stack == step.stack and m.type == "AWS::S3::Bucket"}
        for lid in step.resources:
            for bucket_lid, bucket in buckets.items():
                if _refers_to(resources[lid].get("Properties") or {}, {bucket_lid}):
                    removed = s3.remove_bucket_tag(ws.region, bucket, AUTO_DELETE_TAG)
                    log(f"  {bucket}: {AUTO_DELETE_TAG} tag {'taken off' if removed else 'not present'}")
        return
    stack, state = stacks.current(ws.region, step.stack)
    if state.action != states.UPDATE:
        finding = findings.state_finding("old", step.stack, state, [])
        raise Refused(f"{step.stack}: {finding.detail if finding else state.status}; fix: {finding.fix if finding else ''}")
    deployed = cfn_yaml.load(cfn.get_template_body(ws.region, step.stack))
    if step.kind == "retain":
        _run_change_set(ws, stack, retain_template(deployed, step.resources), log, set(step.resources), "retain")
    elif step.kind == "remove":
        moved = {m.old_logical_id: (m.type, m.name) for m in moves if m.old_stack == step.stack}
        attached = attached_resources(deployed, set(moved))
        still = {lid for lid in set(moved) | set(attached)
                 if (deployed.get("Resources") or {}).get(lid, {}).get("DeletionPolicy") != RETAIN}
        if still:  # never remove what the stack would delete
            raise Refused(f"{step.stack}: {', '.join(sorted(still))} not retained; run migrate again")
        try:
            template = removal_template(deployed, moved, ws.region, ws.account_id, attached)
        except Unmovable as exc:
            raise Refused(f"{step.stack}: {exc}") from None
        _run_change_set(ws, stack, template, log, set(moved) | set(attached), "remove")


@dataclass
class Run:
    done: list[dict] = field(default_factory=list)  # the steps completed, in order
    stopped: bool = False  # stopped as asked (--stop-after)
    error: str | None = None  # a step refused or failed: the run stopped before it changed anything more


def run(ws: Workspace, steps: list[Step], moves: list[Move], templates: dict[str, dict], log,
        stop_after: str | None = None) -> Run:
    """Take the steps in order: each old stack's, then the import (adopt) and protection."""
    from . import adopt

    result = Run()
    try:
        for step in steps:
            if step.kind in ("import", "protect"):
                continue
            log(f"migrate: {step.kind} {step.stack}")
            run_step(ws, step, moves, templates, log)
            result.done.append(step.as_json())
            if stop_after == step.kind:
                log(f"migrate: stopped after {step.kind} as asked; run it again to go on")
                result.stopped = True
                return result
        # Always: with nothing left to import, adopt still protects (and verifies) a storage
        # stack that exists, which a run stopped right after its import left unprotected.
        log("migrate: import into the storage stack" if any(s.kind == "import" for s in steps)
            else "migrate: nothing to import; the storage stack's protection is checked")
        adopted = adopt.run_adopt(ws, log)
        if adopted.status not in ("done", "nothing"):
            raise Refused(f"import: {adopted.detail}")
        if adopted.adopted:
            result.done.append({"kind": "import", "stack": naming.STORAGE, "resources": [r.logical_id for r in adopted.adopted]})
            if stop_after == "import":
                log("migrate: stopped after import as asked; run it again to go on")
                result.stopped = True
    except Refused as exc:
        result.error = str(exc)
    return result


def delete_old_stacks(ws: Workspace, names: list[str], log) -> dict[str, str]:
    """Delete old stacks that hold nothing stateful, importers first: name -> result.
    Refused (one line per problem) before any is deleted."""
    problems = old_stacks_to_delete(ws, names)
    if problems:
        raise Refused("\n".join(problems))
    importers = {}
    for name in names:
        stack = cfn.describe_stack(ws.region, name) or {}
        importers[name] = {i for o in stack.get("Outputs", []) if o.get("ExportName") for i in cfn.list_imports(ws.region, o["ExportName"])}
    results = {}
    for name in deletion_order(names, importers):
        if cfn.describe_stack(ws.region, name) is None:
            results[name] = "absent"
        else:
            left = stacks.delete(ws.region, name, 3600, 1)
            results[name] = "deleted" if left is None else f"{left['StackStatus']}: {left.get('StackStatusReason', '')}"
        log(f"  {name}: {results[name]}")
    return results


def record_old_stacks(ws: Workspace, old: list[str]) -> list[str]:
    """The old stacks this migration has moved resources out of, kept across runs (a
    resumed run no longer sees which stack held what): build/migrations/<env>-<account>-<region>.json."""
    path = ROOT / "build" / "migrations" / f"{ws.env}-{ws.account_id}-{ws.region}.json"
    known = set(json.loads(path.read_text())["old_stacks"]) if path.exists() else set()
    known |= set(old)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"old_stacks": sorted(known)}, indent=1) + "\n")
    return sorted(known)


def deletion_order(stacks: list[str], importers_of: dict[str, set[str]]) -> list[str]:
    """Importers before the stacks they import from (CloudFormation refuses to delete
    an export in use). importers_of: stack -> the stacks importing any of its exports."""
    left, order = list(stacks), []
    while left:
        ready = [s for s in left if not (importers_of.get(s, set()) & set(left))]
        if not ready:
            raise Refused(f"the old stacks import from each other in a cycle: {', '.join(left)}")
        order += ready
        left = [s for s in left if s not in ready]
    return order


def hand_over(ws: Workspace, old: list[str]) -> list[str]:
    lines = [f"next: deploy the new stacks: {command(ws.env, ws.local, 'apply')}"]
    if old:
        lines.append(f"then the old stacks, which hold nothing stateful now, can go: "
                     f"{command(ws.env, ws.local, 'migrate', '--delete-old', *old)}")
    return lines


def verdict_json(moves: list[Move], steps: list[Step]) -> dict:
    return {"resources": [m.as_json() for m in moves], "steps": [s.as_json() for s in steps]}

