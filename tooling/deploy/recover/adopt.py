"""adopt: take orphaned storage resources (buckets, the table, prod's KMS key and its
alias) back into the storage stack with a CloudFormation IMPORT change set. The data
stays where it is: an import only records the existing resource in the stack.
Resources owned by another stack are never touched.

An import, by AWS's rules, may neither create, delete nor reconfigure anything, and may
not add or change Outputs. So the import template is the deployed template (as the CDK
builds its own, aws-cdk-cli#1575), plus the resources to import as the render defines
them, plus only the Parameters, Conditions and Mappings those need; the stack's deployed
parameter values are passed on unchanged (UsePreviousValue). A reference to a resource
that is neither deployed nor imported becomes its literal value, or, where it has none,
the import is refused before anything is sent."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...render import cfn_yaml, naming, samconfig
from ..gate import check, findings, inventory
from ..gate.changesets import Executing
from . import literals
from ..execute import revert
from .. import parameters, stacks, states
from ..gate.findings import command
from ..workspace import Workspace

IDENTIFIER = inventory.ADOPTABLE


class NotImportable(Exception):
    """The import template would not be one AWS accepts: nothing is sent."""


# --- pure: the import template ------------------------------------------------------------

def _walk(value, found: dict[str, set[str]]) -> None:
    """Collect the Parameters (Ref), Conditions (Fn::If, Condition) and Mappings
    (Fn::FindInMap) a value uses."""
    if isinstance(value, list):
        for v in value:
            _walk(v, found)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref" and isinstance(arg, str):
            found["ref"].add(arg)
        elif fn == "Condition" and isinstance(arg, str):
            found["condition"].add(arg)
        elif fn == "Fn::If" and isinstance(arg, list) and arg and isinstance(arg[0], str):
            found["condition"].add(arg[0])
        elif fn == "Fn::FindInMap" and isinstance(arg, list) and arg and isinstance(arg[0], str):
            found["mapping"].add(arg[0])
        elif fn == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            found["ref"].update(v.split(".")[0] for v in literals.SUB_VARIABLE.findall(text))
    for v in value.values():
        _walk(v, found)


def needed_sections(resources: dict, rendered: dict) -> dict[str, dict]:
    """The render's Parameters, Conditions and Mappings that `resources` use, with what
    those conditions use in turn."""
    found = {"ref": set(), "condition": set(), "mapping": set()}
    for resource in resources.values():
        if isinstance(resource.get("Condition"), str):
            found["condition"].add(resource["Condition"])
        _walk({k: v for k, v in resource.items() if k != "Condition"}, found)
    conditions = rendered.get("Conditions") or {}
    seen: set[str] = set()
    todo = list(found["condition"])
    while todo:
        name = todo.pop()
        if name in seen or name not in conditions:
            continue
        seen.add(name)
        before = set(found["condition"])
        _walk(conditions[name], found)
        todo += list(found["condition"] - before)
    params = rendered.get("Parameters") or {}
    return {"Parameters": {p: params[p] for p in sorted(found["ref"]) if p in params},
            "Conditions": {c: conditions[c] for c in sorted(found["condition"]) if c in conditions},
            "Mappings": {m: (rendered.get("Mappings") or {})[m] for m in sorted(found["mapping"]) if m in (rendered.get("Mappings") or {})}}


def import_template(base: dict, rendered: dict, to_import: list[str], region: str, account_id: str,
                    known: dict[str, tuple[str, str]] | None = None) -> dict:
    """`base` (the deployed template, or {} when the import creates the stack) with the
    render's definitions of `to_import` added, and nothing else changed but the Parameters,
    Conditions and Mappings they need (what `base` already has stays as deployed: an import
    may not reconfigure). `known`: logical id -> (type, physical id) of the render's resources
    that exist; a reference from an imported resource to one the template will not hold
    becomes its literal value. Raises NotImportable where a reference has no literal form."""
    template = json.loads(json.dumps(base))
    template.setdefault("AWSTemplateFormatVersion", "2010-09-09")
    if not base:  # a stack created by the import: the render's description and metadata
        template.update({k: rendered[k] for k in ("Description", "Metadata") if k in rendered})
    resources = template.setdefault("Resources", {})
    present = set(resources) | set(to_import)
    rendered_resources = rendered.get("Resources") or {}
    named = {lid: (r["Type"], r["Properties"][IDENTIFIER[r["Type"]]]) for lid, r in (rendered.get("Resources") or {}).items()
             if isinstance((r.get("Properties") or {}).get(IDENTIFIER.get(r.get("Type"), "")), str)}  # literal names
    absent = {lid: found for lid, found in {**named, **(known or {})}.items() if lid not in present}
    added = {}
    for logical_id in to_import:
        try:
            added[logical_id] = literals.rewrite(rendered_resources[logical_id], absent, region, account_id)
        except literals.Unmovable as exc:
            raise NotImportable(f"{logical_id}: {exc}") from None
        missing = _refers_to_missing(added[logical_id], rendered_resources, present)
        if missing:
            raise NotImportable(f"{logical_id} refers to {', '.join(missing)}, which neither the stack holds nor this import "
                                f"brings, and which does not exist to be written as a literal value")
    resources.update(added)
    for section, wanted in needed_sections(added, rendered).items():
        have = template.get(section) or {}
        new = {k: v for k, v in wanted.items() if k not in have}
        if new:
            template[section] = {**have, **new}
    return template


def _refers_to_missing(value, rendered_resources: dict, present: set[str]) -> list[str]:
    """Resources of the render a value still refers to (Ref, GetAtt, Sub) that the template will not hold."""
    found = {"ref": set(), "condition": set(), "mapping": set()}
    _walk(value, found)
    refs = {r for r in found["ref"] if r in rendered_resources}
    refs |= set(_get_atts(value))
    return sorted(r for r in refs if r in rendered_resources and r not in present)


def _get_atts(value) -> list[str]:
    if isinstance(value, list):
        return [t for v in value for t in _get_atts(v)]
    if not isinstance(value, dict):
        return []
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        return [target[0] if isinstance(target, list) else str(target).split(".", 1)[0]]
    if set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return [v.split(".")[0] for v in literals.SUB_VARIABLE.findall(text) if "." in v]
    return [t for v in value.values() for t in _get_atts(v)]


def import_parameters(template: dict, deployed: dict[str, str] | None, wanted: dict[str, str]) -> list[dict]:
    """The Parameters of the import change set: every parameter the stack has keeps its
    deployed value (UsePreviousValue); one the import adds takes the value a deploy would
    give it (`wanted`), else its default."""
    result = []
    for name in sorted(template.get("Parameters") or {}):
        if deployed is not None and name in deployed:
            result.append({"ParameterKey": name, "UsePreviousValue": True})
        elif name in wanted:
            result.append({"ParameterKey": name, "ParameterValue": wanted[name]})
    return result


# --- the run ------------------------------------------------------------------------------

@dataclass
class AdoptResult:
    status: str  # done | nothing | refused | failed
    adopted: list = field(default_factory=list)
    left_alone: list = field(default_factory=list)  # (resource, why)
    detail: str = ""
    stack_status: str | None = None


def survey(ws: Workspace) -> list[inventory.Surveyed]:
    """Every named resource of the storage render (buckets, table, key alias, and the key
    found by its alias), looked up."""
    name = ws.stacks[naming.STORAGE]["name"]
    resources = inventory.named_resources(naming.STORAGE, name, ws.template(naming.STORAGE), ws.account_id, ws.region)
    return inventory.survey(resources, ws.stack_names, ws.region, ws.account_id)


def run_adopt(ws: Workspace, log) -> AdoptResult:
    name = ws.stacks[naming.STORAGE]["name"]
    rendered = ws.template(naming.STORAGE)
    surveyed = survey(ws)
    orphans = [s for s in surveyed if s.state == inventory.ORPHAN and s.resource.type in IDENTIFIER]
    left_alone = [(s.resource, f"{s.state}: {s.reason or (s.owner.stack if s.owner else '')}".rstrip(": "))
                  for s in surveyed if s.state in (inventory.OTHER_OWNER, inventory.FOREIGN)]
    for resource, why in left_alone:
        log(f"adopt: left alone {resource.type} {resource.name} ({why})")
    unknown = [s for s in surveyed if s.state == inventory.UNKNOWN]
    if unknown:  # fail closed: an import must not run on a guess
        for item in unknown:
            log(f"adopt: cannot establish {item.resource.type} {item.resource.name}: {item.reason}")
        return AdoptResult("refused", [], left_alone, "some storage resources could not be looked up; nothing was imported")

    stack, state = stacks.current(ws.region, name)
    if not orphans:
        return _nothing_to_import(ws, name, state, left_alone, log)
    if state.action == states.REPLACE:
        log(f"adopt: {name} is {state.status} (a failed create, holding nothing): deleting it first")
        if stacks.delete(ws.region, name, 900, 1) is not None:
            return AdoptResult("failed", [], left_alone, f"{name}: the empty stack could not be deleted")
        stack, state = None, states.NO_STACK
    if state.action not in (states.ABSENT, states.UPDATE):
        finding = check.stack_state_finding(ws, naming.STORAGE, name, stack, state)
        return AdoptResult("refused", [], left_alone, f"{name} {finding.detail if finding else state.status}; fix: {finding.fix if finding else ''}")
    exists = state.action == states.UPDATE
    base = cfn_yaml.load(cfn.get_template_body(ws.region, name)) if exists else {}
    known = {s.resource.logical_id: (s.resource.type, s.physical_id) for s in surveyed if s.state != inventory.FREE}
    try:
        template = import_template(base, rendered, [s.resource.logical_id for s in orphans], ws.region, ws.account_id, known)
    except NotImportable as exc:
        return AdoptResult("refused", [], left_alone, f"the import template would not be one CloudFormation accepts: {exc}")
    deployed = parameters.deployed_values(stack) if exists else None
    wanted = parameters.fill(ws, naming.STORAGE, parameters.Outputs(ws), deployed).values
    to_import = [{"ResourceType": s.resource.type, "LogicalResourceId": s.resource.logical_id,
                  "ResourceIdentifier": {IDENTIFIER[s.resource.type]: s.physical_id}} for s in orphans]
    log(f"adopt: importing {len(orphans)} resource(s) into {name}{'' if exists else ' (creating the stack by import)'}:")
    for item in orphans:
        shown = f"{item.physical_id} ({item.resource.name})" if item.resource.by_alias else item.physical_id
        log(f"  {item.resource.type:<22} {shown}  -> {item.resource.logical_id}")
    # An import may change nothing else, tags included: a stack that exists keeps its own
    # (CloudFormation refuses an import that changes them); a new one gets them on the next apply.
    tags = {t["Key"]: t["Value"] for t in (stack or {}).get("Tags", [])} if exists else None
    change_set = cfn.create_change_set(ws.region, name, "IMPORT", samconfig.capabilities(ws.stacks[naming.STORAGE]),
                                       template_body=json.dumps(template), resources_to_import=to_import, tags=tags,
                                       parameters=import_parameters(template, deployed, wanted))
    with Executing(ws.region, change_set) as run:
        described = cfn.wait_change_set(ws.region, change_set)
        outcome, reason = findings.change_set_outcome(described)
        if outcome != "ready":
            return AdoptResult("failed", [], left_alone, f"the import change set {outcome}: {reason}")
        since = cfn.last_event_time(ws.region, name) if exists else None
        run.execute()
    ended = stacks.wait_executed(ws.region, name, since, 3600, 1)
    status = ended.status or "MISSING"
    if not ended.succeeded:
        failure = ended.failure
        reason = f"{failure['LogicalResourceId']}: {failure.get('ResourceStatusReason', '')}" if failure else ""
        return AdoptResult("failed", [], left_alone, f"import ended {status} {reason}".strip(), status)
    adopted = [s.resource for s in orphans]
    problem = _protect(ws, log)
    if problem:
        return AdoptResult("failed", adopted, left_alone, f"imported, but {problem}", status)
    log(f"adopt: {status}; termination protection on, stack policy set, protections as the template says (verified)")
    log(f"adopt: next, bring the stack to the full render: {command(ws.env, ws.local, 'apply')}")
    return AdoptResult("done", adopted, left_alone, stack_status=status)


def _protect(ws: Workspace, log) -> str | None:
    """The stack's protection, and the imported resources' own (versioning, public access
    block, PITR, deletion protection, ...) put back to what the template says: an import
    records a resource as it is, and CloudFormation never applies a value the template does
    not change, so an old layout's unversioned bucket would stay so. Only protections are
    read back and put back; the problem, or None once all are verified."""
    reverted = revert.revert(ws, log)
    if reverted.error:
        return reverted.error
    if reverted.left:
        return "these still differ from the template: " + "; ".join(f"{d.expected.logical_id} {d.expected.path}" for d in reverted.left)
    for line in reverted.done:
        log(f"adopt: put back as the template says: {line}")
    return None


def _nothing_to_import(ws: Workspace, name: str, state: states.State, left_alone: list, log) -> AdoptResult:
    """No orphan. A storage stack that exists is still protected and verified now: an adopt
    interrupted after its import finished left it without protection."""
    if state.action != states.UPDATE:
        log("adopt: no orphaned storage resource; nothing to do")
        return AdoptResult("nothing", [], left_alone)
    problem = _protect(ws, log)
    if problem:
        return AdoptResult("failed", [], left_alone, problem, state.status)
    log(f"adopt: no orphaned storage resource to import; {name} is protected (termination protection and stack policy verified)")
    return AdoptResult("nothing", [], left_alone, stack_status=state.status)
