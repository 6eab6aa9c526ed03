"""rename: move stateful resources of the storage stack under the logical ids the render
now gives them (`deploy.py rename OLD=NEW ...`), the resources themselves untouched: same
bucket, table or key, same data, versions, creation date, policies and settings.

CloudFormation has no in-place rename. Its stack refactoring (CreateStackRefactor) does not
work on a stack that has a stack policy, and storage always has one; so the rename is the
documented manual path, each step an inspected change set, decided from what is deployed
now (a run that stopped anywhere resumes where it stopped; a finished rename does nothing):

  guard    the stack policy set to the render's (which protects NEW) with OLD protected
           as NEW is, and read back: every stateful resource stays protected throughout
  retain   DeletionPolicy and UpdateReplacePolicy Retain on OLD (and on what is attached to
           it: its bucket policy), nothing else changed (migrate's retain step)
  remove   the stack policy relaxed for OLD only and for Update:Delete only (ExecuteChangeSet
           takes no temporary policy, so the policy itself is set, and read back), OLD (and
           what is attached to it, retained) removed from the stack, every reference to it,
           outputs included, written as its literal value (migrate's removal template), so
           the exports keep their values; then the render's policy (naming NEW) set, or, if
           OLD is still held, the guard policy again, and read back
  import   NEW imported with adopt's import template (the deployed template plus NEW as
           rendered), then termination protection and the render's stack policy, read back

The next `apply` brings the stack to the full render: the outputs refer to NEW again, and
what was attached to OLD (its bucket policy, in force all along) is back in the stack.

Refused, with the reason, before anything changes: a NEW the render does not define or the
deployed stack already holds, an OLD the render still defines, a pair of different types,
one whose physical resources differ, one that also changes a createOnly property (the one
replacement rule), a stack policy the tool cannot narrow for OLD alone, and an export of
OLD that another stack imports and the render drops (with the order to follow)."""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...errors import UserError
from ...render import cfn_yaml, naming, stateful
from ..gate import check, inventory, replacement
from ..gate import rename as renames
from .. import parameters, stacks, states
from ..gate.findings import command
from ..workspace import Workspace
from . import adopt, migrate
from .migrate import Step

DELETE = "Update:Delete"
UPDATE_ACTIONS = ("Update:Modify", "Update:Replace", "Update:Delete")
STEP_KINDS = ("guard", "retain", "remove", "import")
_LOGICAL_ID = re.compile(r"^[A-Za-z0-9]{1,255}$")


class Refused(Exception):
    """Something the rename cannot prove safe, or a step whose change set would do more:
    nothing more was changed."""


class NotRelaxable(Refused):
    """A stack policy that cannot be narrowed to allow Update:Delete on OLD alone."""


# --- pure: arguments ------------------------------------------------------------------------

def parse(arguments: list[str]) -> list[tuple[str, str]]:
    """OLD=NEW arguments; bad input is a UserError (status 2) naming the argument."""
    pairs, seen = [], set()
    for argument in arguments:
        old, sep, new = argument.partition("=")
        if not sep or not _LOGICAL_ID.match(old) or not _LOGICAL_ID.match(new):
            raise UserError(f"rename {argument!r}: expected OLD=NEW, two logical ids (letters and digits)")
        if old == new:
            raise UserError(f"rename {argument!r}: OLD and NEW are the same logical id")
        if old in seen or new in seen:
            raise UserError(f"rename {argument!r}: {old if old in seen else new} is named twice")
        seen |= {old, new}
        pairs.append((old, new))
    return pairs


# --- pure: the stack policy -----------------------------------------------------------------

def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _expanded(actions: list[str]) -> list[str]:
    """The update actions a statement's Action names (Update:* is all three)."""
    return [a for a in UPDATE_ACTIONS if any(fnmatch.fnmatchcase(a, pattern) for pattern in actions)]


def _id(logical_id: str) -> str:
    return f"LogicalResourceId/{logical_id}"


guard_policy = renames.guard_policy  # the render's policy with OLD protected wherever NEW is (gate/rename.py)


def denies(policy: dict, action: str, logical_id: str) -> bool:
    """Whether a Deny statement of the policy may apply to `action` on `logical_id` (any
    statement with NotAction, NotResource or a Condition counts when it may match)."""
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Deny":
            continue
        if "NotAction" in statement:
            acts = not any(fnmatch.fnmatchcase(action, p) for p in _listed(statement["NotAction"]))
        else:
            acts = any(fnmatch.fnmatchcase(action, p) for p in _listed(statement.get("Action")))
        if "NotResource" in statement:
            on = not any(fnmatch.fnmatchcase(_id(logical_id), p) for p in _listed(statement["NotResource"]))
        else:
            on = any(fnmatch.fnmatchcase(_id(logical_id), p) for p in _listed(statement.get("Resource")))
        if acts and on:
            return True
    return False


def relaxed_policy(policy: dict, olds: list[str]) -> dict:
    """`policy` with Update:Delete allowed on `olds` and on nothing else: each Deny statement
    naming an OLD keeps every other resource, and OLD keeps every other denied action.
    NotRelaxable where a statement denies it in a form that cannot be narrowed (a wildcard
    matching OLD, NotResource, NotAction, a Condition)."""
    named = {_id(o) for o in olds}
    statements = []
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Deny" or not any(denies({"Statement": [statement]}, DELETE, o) for o in olds):
            statements.append(statement)
            continue
        if {"NotAction", "NotResource", "Condition"} & set(statement):
            raise NotRelaxable(f"the stack policy's statement {json.dumps(statement)} denies {DELETE} on "
                               f"{', '.join(olds)} in a form this tool does not narrow (NotAction, NotResource or a Condition)")
        resources = _listed(statement.get("Resource"))
        wild = [r for r in resources if r not in named and any(fnmatch.fnmatchcase(_id(o), r) for o in olds)]
        if wild:
            raise NotRelaxable(f"the stack policy denies {DELETE} on {', '.join(wild)}, which matches "
                               f"{', '.join(olds)}: name the resources one by one to rename one of them")
        rest = [r for r in resources if r not in named]
        if rest:
            statements.append({**statement, "Resource": rest})
        kept = [a for a in _expanded(_listed(statement.get("Action"))) if a != DELETE]
        mine = sorted(r for r in resources if r in named)
        if kept and mine:
            statements.append({"Effect": "Deny", "Principal": statement.get("Principal", "*"), "Action": kept, "Resource": mine})
    return {**policy, "Statement": statements}


# --- pure: what the rename is -------------------------------------------------------------------

@dataclass
class Target:
    old: str
    new: str
    type: str = ""
    identity: str = ""  # the physical name (a key: its alias)
    physical_id: str = ""
    state: str = ""  # in-stack | removed | done | refused
    reason: str = ""

    @property
    def argument(self) -> str:
        return f"{self.old}={self.new}"

    def as_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Facts:
    """What is deployed now, and what the render says."""
    stack_name: str
    deployed: dict  # the storage stack's template
    rendered: dict
    held: dict[str, str]  # logical id -> physical id, of what the stack holds
    new_items: dict[str, inventory.Surveyed]  # NEW -> its physical resource, looked up
    outputs: dict[str, str]  # deployed output key -> export name
    importers: dict[str, list[str]]  # export name -> the stacks importing it
    render_exports: set[str]
    old_resolver: replacement.Resolver
    new_resolver: replacement.Resolver


def assess(facts: Facts, requested: list[tuple[str, str]]) -> list[Target]:
    """Each OLD=NEW, where it stands, or why it is refused."""
    deployed, rendered = facts.deployed.get("Resources") or {}, facts.rendered.get("Resources") or {}
    targets = []
    for old, new in requested:
        t = Target(old, new)
        targets.append(t)
        in_render = rendered.get(new) or {}
        t.type = in_render.get("Type", "")
        item = facts.new_items.get(new)
        if item is not None:
            t.identity, t.physical_id = item.resource.name, item.physical_id
        if not in_render:
            t.state, t.reason = "refused", f"{new} is not in the storage render: rename it in templates/storage.yaml.j2 (and the stack policy) first"
        elif t.type not in stateful.STATEFUL_TYPES:
            t.state, t.reason = "refused", f"{new} is a {t.type}, not a stateful resource: the render may rename it freely"
        elif old in rendered:
            t.state, t.reason = "refused", f"{old} is still in the storage render: a rename takes it out"
        elif old in facts.held and new in facts.held:
            t.state, t.reason = "refused", f"{new} already exists in the deployed stack {facts.stack_name} ({facts.held[new]}): it cannot take {old}'s place"
        elif old in facts.held:
            _in_stack(t, facts, deployed[old] if old in deployed else {}, in_render, item)
        elif new in facts.held:
            if item is not None and item.state == inventory.OURS:
                t.state = "done"
            else:
                t.state, t.reason = "refused", f"{new} is in the stack, but {_seen(item)}"
        elif item is not None and item.state == inventory.ORPHAN:
            t.state = "removed"  # a rename stopped after its removal: the import is left
        elif item is not None and item.state == inventory.FREE:
            t.state, t.reason = "refused", (f"neither {old} nor {new} is in {facts.stack_name} and {item.resource.name} does not exist: "
                                            f"there is nothing to rename (apply creates {new})")
        else:
            t.state, t.reason = "refused", f"{new}: {_seen(item)}"
    return targets


def _seen(item: inventory.Surveyed | None) -> str:
    if item is None:
        return "its physical resource has no name this tool can look up"
    owner = f" by {item.owner.stack} ({item.owner.logical_id})" if item.owner else ""
    return f"its physical resource {item.physical_id or item.resource.name} is {item.state}{owner}{': ' + item.reason if item.reason else ''}"


def _in_stack(t: Target, facts: Facts, old_resource: dict, new_resource: dict, item: inventory.Surveyed | None) -> None:
    old_type = old_resource.get("Type", "")
    if old_type != t.type:
        t.state, t.reason = "refused", f"{t.old} is a {old_type} and {t.new} a {t.type}: a rename plus a type change is a new resource"
        return
    expected = (facts.stack_name, t.old)
    if item is None or item.state != inventory.OTHER_OWNER or (item.owner.stack, item.owner.logical_id) != expected:
        t.state, t.reason = "refused", (f"{t.new} names a physical resource that is not {t.old}'s ({facts.held[t.old]}): "
                                        f"{_seen(item)}; this is not a rename")
        return
    problem = renames.problem_of(old_resource, new_resource, facts.old_resolver, facts.new_resolver)
    if problem:
        t.state, t.reason = "refused", f"{t.old} -> {t.new}: {problem}"
        return
    t.state, t.physical_id = "in-stack", facts.held[t.old]


def export_problems(facts: Facts, targets: list[Target], env: str, local: bool) -> list[str]:
    """An export of a moving OLD that the render drops while another stack imports it: the
    final apply would be refused, so the rename is, with the order to follow."""
    olds = {t.old for t in targets if t.state == "in-stack"}
    outputs = facts.deployed.get("Outputs") or {}
    problems = []
    for key, export in sorted(facts.outputs.items()):
        if not migrate._refers_to((outputs.get(key) or {}).get("Value"), olds) or export in facts.render_exports:
            continue
        users = facts.importers.get(export) or []
        if users:
            problems.append(f"the render drops the export {export} (output {key}, of a renamed resource), which {', '.join(users)} "
                            f"import(s). In this order: 1) keep output {key} in templates/storage.yaml.j2 beside the new one "
                            f"(its value from the new logical id); 2) {command(env, local, 'rename', *[t.argument for t in targets])}; "
                            f"3) {command(env, local, 'apply')}; 4) once no stack imports {export} (move the importers to the "
                            f"new export and apply), remove output {key} and apply again")
    return problems


def plan_steps(facts: Facts, targets: list[Target]) -> list[Step]:
    moving = [t for t in targets if t.state == "in-stack"]
    importing = [t for t in targets if t.state in ("in-stack", "removed")]
    steps = []
    if moving:
        olds = sorted(t.old for t in moving)
        deployed = facts.deployed.get("Resources") or {}
        attached = migrate.attached_resources(facts.deployed, set(olds))
        unretained = sorted(lid for lid in olds + attached
                            if ((deployed.get(lid) or {}).get("DeletionPolicy"), (deployed.get(lid) or {}).get("UpdateReplacePolicy"))
                            != (migrate.RETAIN, migrate.RETAIN))
        steps.append(Step("guard", naming.STORAGE, "set the stack policy to the render's, with each OLD protected as its NEW is; "
                                                   "read it back", olds))
        if unretained:
            steps.append(Step("retain", naming.STORAGE, "set DeletionPolicy and UpdateReplacePolicy Retain, nothing else", unretained))
        steps.append(Step("remove", naming.STORAGE, f"relax the stack policy for {DELETE} on these only, remove them from the stack "
                                                    "(retained: they stay, with their data and policies; references and outputs become "
                                                    "literal values, so the exports keep theirs), then set the render's policy and read it back",
                          olds + attached))
    if importing:
        steps.append(Step("import", naming.STORAGE, "IMPORT each under its new logical id (adopt), then termination protection on and "
                                                    "the render's stack policy set, both read back",
                          sorted(f"{t.physical_id or t.identity} -> {t.new}" for t in importing)))
    return steps


# --- facts from AWS -----------------------------------------------------------------------------

def survey(ws: Workspace, requested: list[tuple[str, str]]) -> Facts:
    name = ws.stacks[naming.STORAGE]["name"]
    stack, state = stacks.current(ws.region, name)
    if state.action != states.UPDATE:
        finding = check.stack_state_finding(ws, naming.STORAGE, name, stack, state)
        detail = f"{name} {finding.detail}; fix: {finding.fix}" if finding else f"{name} is {state.status}: there is nothing deployed to rename"
        raise Refused(detail)
    deployed = cfn_yaml.load(cfn.get_template_body(ws.region, name))
    held = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in cfn.stack_resources(ws.region, name) if inventory.held(r)}
    rendered = ws.template(naming.STORAGE)
    wanted = {new for _, new in requested}
    named = [r for r in inventory.named_resources(naming.STORAGE, name, rendered, ws.account_id, ws.region) if r.logical_id in wanted]
    surveyed = {item.resource.logical_id: item for item in inventory.survey(named, ws.stack_names, ws.region, ws.account_id)}
    outputs = {o["OutputKey"]: o["ExportName"] for o in stack.get("Outputs", []) if o.get("ExportName")}
    olds = {old for old, _ in requested}
    values = deployed.get("Outputs") or {}
    importers = {export: cfn.list_imports(ws.region, export) for key, export in outputs.items()
                 if migrate._refers_to((values.get(key) or {}).get("Value"), olds)}
    exports = {n: e["Value"] for n, e in cfn.list_exports(ws.region).items()}
    deployed_parameters = {p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in stack.get("Parameters", [])}
    filled = parameters.fill(ws, naming.STORAGE, parameters.Outputs(ws), parameters.deployed_values(stack)).values
    old = replacement.resolver_for(deployed, name, ws.account_id, ws.region, deployed_parameters, held, exports)
    new = replacement.resolver_for(rendered, name, ws.account_id, ws.region, filled, held, exports)
    return Facts(name, deployed, rendered, held, surveyed, outputs, importers, set(ws.stacks[naming.STORAGE]["exports"]), old, new)


# --- the steps, against AWS ---------------------------------------------------------------------

def _set_policy(ws: Workspace, policy: dict, what: str, log) -> None:
    name = ws.stacks[naming.STORAGE]["name"]
    cfn.set_stack_policy(ws.region, name, policy)
    if cfn.stack_policy(ws.region, name) != policy:
        raise Refused(f"{name}: the stack policy read back is not the {what} one that was set")
    log(f"  {name}: stack policy: {what} (read back)")


def _held(ws: Workspace) -> set[str]:
    return {r["LogicalResourceId"] for r in cfn.stack_resources(ws.region, ws.stacks[naming.STORAGE]["name"]) if inventory.held(r)}


def run_step(ws: Workspace, step: Step, targets: list[Target], log) -> None:
    name = ws.stacks[naming.STORAGE]["name"]
    moving = [t for t in targets if t.state == "in-stack"]
    pairs = [(t.old, t.new) for t in moving]
    guard = guard_policy(ws.stack_policy(), pairs)
    if step.kind == "guard":
        _set_policy(ws, guard, "the render's, OLD protected as NEW", log)
        return
    if step.kind == "import":
        adopted = adopt.run_adopt(ws, log)
        if adopted.status not in ("done", "nothing"):
            raise Refused(f"import: {adopted.detail}")
        held = _held(ws)
        missing = [t.new for t in targets if t.state in ("in-stack", "removed") and t.new not in held]
        if missing:
            raise Refused(f"import: {', '.join(missing)} not held by {name} after the import")
        return
    stack, state = stacks.current(ws.region, name)
    if state.action != states.UPDATE:
        finding = check.stack_state_finding(ws, naming.STORAGE, name, stack, state)
        raise Refused(f"{name}: {finding.detail if finding else state.status}; fix: {finding.fix if finding else ''}")
    deployed = cfn_yaml.load(cfn.get_template_body(ws.region, name))
    if step.kind == "retain":  # what else the change set shows may only follow from these (migrate's rule)
        migrate._run_change_set(ws, stack, migrate.retain_template(deployed, step.resources), log, set(step.resources), "retain")
        return
    # remove
    olds = {t.old for t in moving}
    attached = migrate.attached_resources(deployed, olds)
    resources = deployed.get("Resources") or {}
    still = sorted(lid for lid in olds | set(attached) if (resources.get(lid) or {}).get("DeletionPolicy") != migrate.RETAIN)
    if still:  # never remove what the stack would delete
        raise Refused(f"{name}: {', '.join(still)} not retained; run the rename again")
    moved = {t.old: (t.type, t.physical_id) for t in moving}
    try:
        template = migrate.removal_template(deployed, moved, ws.region, ws.account_id, attached)
    except migrate.Unmovable as exc:
        raise Refused(f"{name}: {exc}") from None
    relaxed = relaxed_policy(guard, sorted(olds))
    try:
        _set_policy(ws, relaxed, f"relaxed for {DELETE} on {', '.join(sorted(olds))} only", log)
        migrate._run_change_set(ws, stack, template, log, olds | set(attached), "remove")
    except migrate.Refused as exc:
        raise Refused(str(exc)) from None
    finally:  # whatever happened: OLD protected while the stack holds it, the render's policy once it does not
        if olds & _held(ws):
            _set_policy(ws, guard, "the render's, OLD protected as NEW (restored)", log)
        else:
            _set_policy(ws, ws.stack_policy(), "the render's (restored)", log)


@dataclass
class Run:
    done: list[dict] = field(default_factory=list)
    stopped: bool = False
    error: str | None = None


def run(ws: Workspace, steps: list[Step], targets: list[Target], log, stop_after: str | None = None) -> Run:
    result = Run()
    try:
        for step in steps:
            log(f"rename: {step.kind}: {step.detail}" + (f" [{', '.join(step.resources)}]" if step.resources else ""))
            run_step(ws, step, targets, log)
            result.done.append(step.as_json())
            if stop_after == step.kind:
                log(f"rename: stopped after {step.kind} as asked; run it again to go on")
                result.stopped = True
                return result
        if not steps:  # nothing left to move: a finished rename, protection checked
            run_step(ws, Step("import", naming.STORAGE, ""), targets, log)
    except (Refused, migrate.Refused) as exc:
        result.error = str(exc)
    return result
