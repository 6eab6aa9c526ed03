"""What check can find, as plain data, and the pure functions that find it.

Every finding blocks unless it is a note. Kinds, and the one override each has
(None: nothing can make CloudFormation accept it, so the fix is the only way):

  stack-state      a stack is in a *_FAILED, in-progress or unknown state
  orphan           a named resource exists, owned by no stack      --allow-orphans
  other-owner      it is owned by another stack, or this stack under another logical id
  foreign          it exists in another account
  unknown          check could not establish something              --allow-unknown
  export-in-use    a deployed export the render removes or changes is imported
  stateful-change  a bucket or the table would be removed or replaced
  change-set       CloudFormation refused the change set
  unprotected      the storage stack lacks termination protection or its stack policy
  drift            a protection of storage (or, with check --drift, a resource) was changed outside CloudFormation
  rename           a bucket, the table or the key is renamed (same resource, new logical id)
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ...render import naming, stateful
from . import inventory, replacement
from .. import states

OVERRIDES = {
    "stack-state": None,
    "orphan": "--allow-orphans",
    "other-owner": None,
    "foreign": None,
    "unknown": "--allow-unknown",
    "export-in-use": None,
    "stateful-change": None,
    "change-set": None,
    "unprotected": None,
    "drift": None,
    "rename": None,
}


@dataclass
class Finding:
    kind: str
    stack: str  # stack key
    subject: str
    detail: str
    fix: str
    blocking: bool = True

    @property
    def override(self) -> str | None:
        return OVERRIDES[self.kind]

    def as_json(self) -> dict:
        return {**asdict(self), "override": self.override}


def command(ws_env: str, local: bool, *words: str) -> str:
    """A deploy.py command line as the user runs it."""
    return " ".join(["python deploy.py", *words, "--env", ws_env] + (["--local"] if local else []))


# --- stack states -----------------------------------------------------------------------

# States the storage stack leaves only by being deleted: its buckets, table and key are
# kept (every one is retained on delete), and adopt takes them back.
STORAGE_GONE_BY_DELETE = ("DELETE_FAILED", "ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED")


def state_finding(key: str, stack_name: str, state: states.State, failed_resources: list[str],
                  env: str = "", local: bool = False, importers: list[str] = ()) -> Finding | None:
    """importers: the stacks that import the stack's exports (read only for storage in a
    state it leaves by being deleted)."""
    if state.action == states.RECOVER:
        named = f" (stuck on: {', '.join(failed_resources)})" if failed_resources else ""
        fix = states.recovery(stack_name, state.status, failed_resources)
        if key == naming.STORAGE and state.status in STORAGE_GONE_BY_DELETE and env:
            fix = storage_rebuild(stack_name, fix, env, local, importers)
        return Finding("stack-state", key, stack_name,
                       f"is {state.status}{named}: CloudFormation accepts no update until it is recovered; nothing is sent to it", fix)
    if state.action == states.BUSY:
        return Finding("stack-state", key, stack_name, f"is {state.status}: another operation is running on it",
                       "wait until it ends (python deploy.py status), then run this again")
    if state.action == states.UNKNOWN:
        return Finding("stack-state", key, stack_name,
                       f"is {state.status}, a state this tool does not know (or REVIEW_IN_PROGRESS holding resources): it will not guess",
                       f"inspect it: aws cloudformation describe-stack-events --stack-name {stack_name}")
    return None


def storage_rebuild(stack_name: str, delete: str, env: str, local: bool, importers) -> str:
    """The fix of a storage stack that only a delete brings out of its state: its steps in the
    order they run, each command as one types it. CloudFormation deletes no stack with
    termination protection on, nor one whose exports another stack imports; DeleteStack
    returns before the delete ends. Every bucket, the table and the key are retained on delete."""
    steps = [f"turn termination protection off: aws cloudformation update-termination-protection "
             f"--no-enable-termination-protection --stack-name {stack_name}"]
    if importers:
        steps.append(f"delete the stacks that import its exports first ({', '.join(sorted(importers))}; they hold no data): "
                     f"{command(env, local, 'destroy')}")
    steps += [f"delete it, every bucket, the table and the key retained: {delete}; "
              f"aws cloudformation wait stack-delete-complete --stack-name {stack_name}",
              command(env, local, "adopt"), command(env, local, "apply")]
    return "; ".join(f"{number}) {step}" for number, step in enumerate(steps, 1))


# --- named resources --------------------------------------------------------------------

def resource_finding(item: inventory.Surveyed, declared_by: str, env: str, local: bool) -> Finding | None:
    """declared_by: the name of the stack whose render declares the resource."""
    r = item.resource
    subject = f"{r.type} {item.physical_id or r.logical_id}" + (f" ({r.name})" if r.by_alias else "")
    if item.state == inventory.ORPHAN:
        if r.stack == naming.STORAGE and r.type in inventory.ADOPTABLE:  # buckets, the table, the key and its alias
            fix = f"adopt it into the storage stack, data kept: {command(env, local, 'adopt')}"
        else:
            fix = (f"delete it by hand if it holds nothing you need, or take it over into {r.stack}: "
                   f"{command(env, local, 'apply', '--only', r.stack, '--allow-orphans')}")
        return Finding("orphan", r.stack, subject,
                       f"exists but no stack owns it: creating {r.stack}/{r.logical_id} would fail with 'already exists'", fix)
    if item.state == inventory.OTHER_OWNER:
        owner = item.owner
        where = (f"this stack under another logical id, {owner.logical_id}" if owner.stack == declared_by
                 else f"stack {owner.stack} ({owner.logical_id})")
        return Finding("other-owner", r.stack, subject,
                       f"is owned by {where}; {r.stack}/{r.logical_id} cannot create it",
                       f"rename it in environments/{env}.toml (naming.*) or in the template, or retire {owner.stack}/{owner.logical_id} first")
    if item.state == inventory.FOREIGN:
        return Finding("foreign", r.stack, subject, f"{item.reason}; it can never be created or adopted here",
                       f"choose another name (environments/{env}.toml, naming.*)")
    if item.state == inventory.UNKNOWN:
        note = local and item.unsupported
        detail = f"cannot tell whether it exists or who owns it: {item.reason}"
        if note:
            detail += " (a note on the local AWS, which lacks this service; on AWS it blocks)"
        return Finding("unknown", r.stack, subject, detail,
                       "fix the cause (permissions, the endpoint) and check again, or accept the risk with --allow-unknown",
                       blocking=not note)
    return None


# --- export contract --------------------------------------------------------------------

def export_findings(stack_key: str, removed: list[str], changed: list[str], importers: dict[str, list[str]],
                    importing_in_render: dict[str, set[str]], keys_of: dict[str, str], env: str, local: bool,
                    waiting_for_new: set[str] = frozenset()) -> list[Finding]:
    """importers: export -> stack names importing it now; importing_in_render: export ->
    stack names whose new render still imports it; keys_of: stack name -> key;
    waiting_for_new: stack names whose render imports an export that does not exist yet."""
    findings = []
    for export, how in [(e, "removes") for e in removed] + [(e, "changes the value of") for e in changed]:
        users = sorted(importers.get(export, []))
        if not users:
            continue
        user_keys = [keys_of.get(u, u) for u in users]
        still = sorted(set(users) & importing_in_render.get(export, set()))
        blocked_both_ways = sorted(set(users) & set(waiting_for_new))
        if blocked_both_ways:
            fix = (f"neither order works in one step: {', '.join(blocked_both_ways)} need(s) the new export too. "
                   f"1) render {stack_key} with the new export beside {export} and deploy it; "
                   f"2) {command(env, local, 'apply', '--only', *user_keys)}; "
                   f"3) then remove {export} from {stack_key} and deploy it")
        elif still:
            fix = (f"the new render still imports it in {', '.join(still)}: keep the export, or first add the new export beside "
                   f"the old one and deploy {stack_key}, then move {', '.join(still)} to it and deploy them, then remove the old one")
        else:
            fix = (f"deploy the importers first, whose new render no longer imports it: "
                   f"{command(env, local, 'apply', '--only', *user_keys)}; then deploy {stack_key}")
        findings.append(Finding("export-in-use", stack_key, export,
                                f"the new render {how} this export, which {', '.join(users)} import(s); CloudFormation would refuse the update",
                                fix))
    return findings


def changed_exports(deployed_outputs: dict, rendered_outputs: dict, kept: dict[str, str],
                    old: replacement.Resolver, new: replacement.Resolver) -> list[str]:
    """Of the kept exports (export -> output key), those whose value changes, compared resolved."""
    changed = []
    for export, output_key in sorted(kept.items()):
        before = (deployed_outputs.get(output_key) or {}).get("Value")
        after = (rendered_outputs.get(output_key) or {}).get("Value")
        if replacement.same_value(before, after, old, new) is not True:
            changed.append(export)
    return changed


# --- the stateful gate --------------------------------------------------------------------

def stateful_findings(deployed: dict, rendered: dict, old: replacement.Resolver, new: replacement.Resolver,
                      renamed=frozenset()) -> list[Finding]:
    """Block a removal of a stateful resource, and any change that its type's schema
    says replaces it or may replace it; an unresolvable difference is unknown.

    `old` resolves the deployed template with the deployed parameter values, `new` the
    render with the values the change set sends: values are compared resolved, and a
    resource whose Condition turns false is removed (a condition that cannot be
    evaluated is unknown). `renamed`: the logical ids gate/rename.py recognised
    as renamed (it has its own finding for them)."""
    findings = []
    old_resources, new_resources = deployed.get("Resources") or {}, rendered.get("Resources") or {}
    for logical_id, resource in sorted(old_resources.items()):
        kind = (resource or {}).get("Type")
        if kind not in stateful.STATEFUL_TYPES:
            continue
        subject = f"{kind} {logical_id}"
        if logical_id in renamed:
            continue
        try:
            if not replacement.exists(resource, old):
                continue  # its condition is false as deployed: nothing of it exists
        except replacement.Unresolved as exc:
            findings.append(Finding("unknown", naming.STORAGE, subject,
                                    f"cannot tell whether it exists as deployed: its Condition {resource.get('Condition')} cannot be evaluated ({exc})",
                                    "fix the cause and check again, or accept the risk with --allow-unknown"))
            continue
        after = new_resources.get(logical_id)
        if after is None:
            findings.append(Finding("stateful-change", naming.STORAGE, subject,
                                    "the new render removes it from the storage stack (the stack policy denies it; its data would be left unmanaged)",
                                    "keep it in templates/storage.yaml.j2; retiring a bucket or table is a manual, reviewed operation"))
            continue
        try:
            kept = replacement.exists(after, new)
        except replacement.Unresolved as exc:
            findings.append(Finding("unknown", naming.STORAGE, subject,
                                    f"cannot tell whether the new render keeps it: its Condition {after.get('Condition')} cannot be evaluated "
                                    f"with the change set's parameter values ({exc})",
                                    "give the parameters it reads explicit values, or accept the risk with --allow-unknown"))
            continue
        if not kept:
            findings.append(Finding("stateful-change", naming.STORAGE, subject,
                                    f"its Condition {after.get('Condition')} is false with the change set's parameter values: "
                                    "CloudFormation would remove it (the stack policy denies it; its data would be left unmanaged)",
                                    "keep the parameter values that keep its condition true; retiring a bucket or table is a manual, reviewed operation"))
            continue
        verdict = replacement.verdict(kind, resource, after, old, new)
        if verdict.replacement == replacement.NONE:
            continue
        if verdict.replacement == replacement.UNKNOWN:
            findings.append(Finding("unknown", naming.STORAGE, subject, f"cannot establish that it is not replaced: {verdict.reason}",
                                    "write the property as deployed, or accept the risk with --allow-unknown"))
            continue
        how = "replaces" if verdict.replacement == replacement.ALWAYS else "may replace"
        findings.append(Finding("stateful-change", naming.STORAGE, subject, f"the new render {how} it: {verdict.reason}",
                                f"revert the change to {', '.join(verdict.properties)}; moving data into a new resource is a separate, reviewed operation"))
    return findings


# --- a change set ----------------------------------------------------------------------------

NO_CHANGES = ("didn't contain changes", "No updates are to be performed", "does not contain changes")


def change_set_outcome(described: dict) -> tuple[str, str]:
    """ready | no-changes | failed | unfinished, with CloudFormation's reason."""
    status, reason = described.get("Status", ""), described.get("StatusReason") or ""
    if status == "CREATE_COMPLETE":
        return "ready", ""
    if status == "FAILED":
        if any(text in reason for text in NO_CHANGES):
            return "no-changes", reason
        return "failed", reason or "no reason given"
    return "unfinished", f"still {status or 'unknown'} when the wait ended"


def change_set_finding(key: str, stack_name: str, outcome: str, reason: str) -> Finding | None:
    if outcome == "failed":
        return Finding("change-set", key, stack_name, f"CloudFormation refused the change set: {reason}",
                       "fix the template or the cause named, then check again")
    if outcome == "unfinished":
        return Finding("unknown", key, stack_name, f"the change set did not finish: {reason}",
                       "check again; or accept with --allow-unknown (apply then creates and inspects its own change set)")
    return None


def change_set_stateful_findings(key: str, change_list, deployed: dict | None, rendered: dict,
                                 old: replacement.Resolver | None, new: replacement.Resolver | None, local: bool) -> list[Finding]:
    """What the change set itself says it does to a stateful resource, whatever the schema
    says: Remove, or Modify with Replacement True, blocks. Replacement Conditional blocks
    too, unless the schema says the change is in place and this is the local AWS, which
    flags in-place updates Conditional: there it stays a note (disagreements, local=True)."""
    found = []
    for change in change_list:
        if change.resource_type not in stateful.STATEFUL_TYPES:
            continue
        subject = f"{change.resource_type} {change.logical_id}"
        if change.action == "Remove":
            found.append(Finding("stateful-change", key, subject,
                                 "the change set removes it (its data would be deleted, or left unmanaged if retained)",
                                 "keep it in the render with the parameter values that create it; retiring a bucket or table is a manual, reviewed operation"))
        elif change.action == "Modify" and change.replacement == "True":
            causes = f" (because of {', '.join(change.causes)})" if change.causes else ""
            found.append(Finding("stateful-change", key, subject,
                                 f"the change set replaces it{causes}: CloudFormation would create a new one and delete this one with its data",
                                 "revert the change that causes it; moving data into a new resource is a separate, reviewed operation"))
        elif change.action == "Modify" and change.replacement == "Conditional":
            before = ((deployed or {}).get("Resources") or {}).get(change.logical_id)
            after = (rendered.get("Resources") or {}).get(change.logical_id)
            verdict = (replacement.verdict(change.resource_type, before, after, old, new)
                       if before and after and old is not None and new is not None else None)
            in_place = verdict is not None and verdict.replacement == replacement.NONE
            causes = f" (because of {', '.join(change.causes)})" if change.causes else ""
            if in_place and local:
                continue  # a note (disagreements): the local AWS flags in-place updates so
            schema = f"the {change.resource_type} schema says {verdict.label}" if verdict else "the schema cannot be compared"
            found.append(Finding("stateful-change", key, subject,
                                 f"the change set says it may be replaced (Replacement=Conditional{causes}; {schema})",
                                 "revert the change that causes it; moving data into a new resource is a separate, reviewed operation"))
    return found


# --- early validation ---------------------------------------------------------------------

# CloudFormation validates a change set before it can run (since November 2025): FAIL mode
# sets it to FAILED (property syntax, resource-name conflicts), WARN mode leaves it
# CREATE_COMPLETE with a warning (a bucket that is not empty would be deleted). The events
# are read with DescribeEvents (EventType VALIDATION_ERROR).
NAME_CONFLICT = "AWS::EarlyValidation::ResourceExistenceCheck"  # a property error: AWS::EarlyValidation::PropertyValidation

_IDENTIFIER = re.compile(r"with identifier '([^']+)'")


def conflict_identifier(event: dict) -> str:
    """The physical name a name-conflict event is about ("" when it does not say)."""
    if event.get("PhysicalResourceId"):
        return event["PhysicalResourceId"]
    found = _IDENTIFIER.search(event.get("ValidationStatusReason") or "")
    return found.group(1) if found else ""


def validation_finding(key: str, event: dict, conflict: Finding | None = None) -> Finding:
    """One early-validation event as a finding. `conflict`: for a name conflict, the
    inventory's own finding for that name (an orphan or another owner, with its fix)."""
    name = event.get("ValidationName") or "an early validation"
    reason = event.get("ValidationStatusReason") or "no reason given"
    path = event.get("ValidationPath") or ""
    where = f" at {path}" if path else ""
    logical, kind = event.get("LogicalResourceId") or "", event.get("ResourceType") or ""
    subject = f"{kind} {logical}".strip() or key
    mode = event.get("ValidationFailureMode") or "FAIL"
    said = f"CloudFormation's early validation ({name}{where}): {reason}"
    if event.get("ValidationStatus") == "SKIPPED":
        return Finding("change-set", key, subject, f"{said} (CloudFormation skipped it; deploy.py's own checks do not rest on it)",
                       "none needed", blocking=False)
    if conflict is not None:
        return Finding(conflict.kind, conflict.stack, conflict.subject, f"{conflict.detail} ({said})", conflict.fix, conflict.blocking)
    if mode == "WARN":
        fix = ("keep the bucket (DeletionPolicy Retain), or empty it by hand first if nothing in it is needed"
               if "empt" in (name + reason).lower() else "resolve what the warning names, then check again")
        return Finding("change-set", key, subject, f"{said}; CloudFormation warns, and executing it would fail or lose data", fix)
    if name == NAME_CONFLICT:
        return Finding("change-set", key, subject, f"{said}; the name is taken",
                       "rename it in the template, or take the existing resource over (check names it when it can look it up)")
    fix = f"fix{where or ' the property named'} in the template (cfn-lint may name it too), then check again"
    return Finding("change-set", key, subject, said, fix)


def disagreements(change_list, deployed: dict, rendered: dict, old: replacement.Resolver, new: replacement.Resolver,
                  local: bool = False) -> list[dict]:
    """Where a change set's Replacement flag and the schema disagree. The schema decides;
    the output says so. For a stateful type what the change set says is a finding
    (change_set_stateful_findings), except on the local AWS, which flags in-place updates
    Replacement=Conditional: there that one case stays a note, and says so. Resources
    whose logical id and type both templates share only."""
    notes = []
    old_resources, new_resources = deployed.get("Resources") or {}, rendered.get("Resources") or {}
    for change in change_list:
        stateful_type = change.resource_type in stateful.STATEFUL_TYPES
        if change.action != "Modify" or (stateful_type and not (local and change.replacement == "Conditional")):
            continue
        before, after = old_resources.get(change.logical_id), new_resources.get(change.logical_id)
        if not before or not after or before.get("Type") != change.resource_type:
            continue
        verdict = replacement.verdict(change.resource_type, before, after, old, new)
        said = {"True": replacement.ALWAYS, "Conditional": replacement.MAY}.get(change.replacement, replacement.NONE)
        if said != verdict.replacement:
            notes.append({"logical_id": change.logical_id, "type": change.resource_type,
                          "change_set": change.replacement, "schema": verdict.replacement,
                          "text": f"{change.logical_id}: the change set says Replacement={change.replacement}, "
                                  f"the {change.resource_type} schema says {verdict.label}"
                                  f"{' (' + verdict.reason + ')' if verdict.reason else ''}: the schema decides"
                                  + (" (a note on the local AWS only; on AWS this blocks)" if stateful_type else "")})
    return notes


def by_kind(findings: list[Finding], overrides: set[str]) -> tuple[list[Finding], list[Finding], list[Finding]]:
    """(blocking, overridden, notes): a finding is overridden when its kind's flag was given."""
    notes = [f for f in findings if not f.blocking]
    overridden = [f for f in findings if f.blocking and f.override and f.override in overrides]
    blocking = [f for f in findings if f.blocking and f not in overridden]
    return blocking, overridden, notes
