"""The gate of a saved plan (plan --out, apply --plan).

Planning: which changed stacks can have their change set made now, and which only once
an earlier wave has run ("known after apply": a parameter is the output of a stack the
plan changes, an import is exported only once such a stack has run, or the code of a SAM
stack goes into the artifacts bucket of a storage stack the plan creates); the change sets
of the others are made, inspected and kept, and each stack is recorded as it stood.

Verifying, before apply --plan executes anything: the plan is for this environment,
account and region; every stack is as it was when planned (status, last operation, id);
the local render, parameters, tags and code still give the plan's fingerprints; every
planned change set exists and can still be executed. Whatever does not hold is named,
stack by stack; any one refuses the whole plan."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...aws.sam_runner import SamRunner
from ...render import naming
from .. import parameters, planfile, states
from ..workspace import Workspace
from . import changesets, check


def known_after_apply(ws: Workspace, report: check.Report, live_exports: set[str]) -> dict[str, str]:
    """stack key -> why its change set can only be made once an earlier wave has run.
    A late parameter is not such a reason: apply deploys with its value now and settles
    it after the last wave (a change set made then, as any apply makes it)."""
    targets = set(report.targets)
    exporter = {e: k for k, s in ws.stacks.items() for e in s["exports"]}
    result: dict[str, str] = {}
    for wave in ws.manifest["waves"]:
        for key in wave:
            facts = report.facts.get(key)
            if facts is None or not facts.target:
                continue
            if facts.state.action == states.REPLACE:
                result[key] = f"it is {facts.state.status}: apply first deletes the empty stack its failed create left"
                continue
            sources = [(p, s) for p, s in sorted((ws.stacks[key].get("parameters") or {}).items())
                       if not s["late"] and s["stack"] in targets]
            if sources:
                parameter, source = sources[0]
                result[key] = f"parameter {parameter} is output {source['output']} of stack {source['stack']}, which this plan changes"
                continue
            missing = sorted(e for e in ws.stacks[key]["imports"] if e not in live_exports and exporter.get(e) in targets)
            if missing:
                result[key] = f"it imports {missing[0]}, which stack {exporter[missing[0]]} exports only once this plan has run it"
                continue
            if facts.filled.missing:
                result[key] = f"it needs {'; '.join(facts.filled.missing)}"
                continue
            if ws.stacks[key].get("sam") and key != naming.STORAGE and _created(report, naming.STORAGE):
                result[key] = f"its code is packaged into the artifacts bucket of stack {naming.STORAGE}, which this plan creates"
    return result


def _created(report: check.Report, key: str) -> bool:
    facts = report.facts.get(key)
    return bool(facts and facts.target and facts.state.action in (states.ABSENT, states.REPLACE))


@dataclass
class Planned:
    after_apply: dict[str, str]  # key -> why it is known only after apply
    kept: dict[str, str] = field(default_factory=dict)  # key -> change set id kept for apply --plan
    snapshots: dict[str, dict | None] = field(default_factory=dict)  # key -> the stack as planned
    fingerprints: dict[str, str] = field(default_factory=dict)  # key -> template + parameters + tags + code
    render_fingerprints: dict[str, str] = field(default_factory=dict)  # key -> template + tags + code


def make(ws: Workspace, report: check.Report, sam: SamRunner, keep: bool, orphans: dict[str, set[str]] | None = None) -> Planned:
    """The change sets of the plan, inspected (findings and notes go into `report`). With
    `keep` (plan --out) they are kept, creates included; otherwise only updates get one, and
    it is deleted, as check does."""
    live = set(cfn.list_exports(ws.region)) if report.targets else set()
    planned = Planned(known_after_apply(ws, report, live))
    todo = [report.facts[k] for k in report.targets if k not in planned.after_apply
            and (report.facts[k].state.action == states.UPDATE or (keep and report.facts[k].state.action == states.ABSENT))]
    if todo:
        report.findings += check.inspect_updates(ws, report, todo, report.resolved, sam, keep=keep, orphans=orphans)
    exported_by_target = {e: k for k in report.targets for e in ws.stacks[k]["exports"]}
    for facts in todo:
        inspection = report.inspections.get(facts.key)
        missing = check._NO_EXPORT.search(inspection.reason or "") if inspection and inspection.outcome == "failed" else None
        if missing and missing.group(1) in exported_by_target:
            planned.after_apply[facts.key] = (f"it imports {missing.group(1)}, which stack {exported_by_target[missing.group(1)]} "
                                              f"exports only once this plan has run it")
        elif keep and inspection and inspection.outcome == "ready":
            planned.kept[facts.key] = inspection.change_set_id

    def record(key: str):
        stack = cfn.describe_stack(ws.region_of(key), ws.stacks[key]["name"])
        values = report.facts[key].parameter_values if key in report.facts else {}
        return key, planfile.snapshot(stack), changesets.stack_fingerprint(ws, key, values), changesets.stack_fingerprint(ws, key)

    with ThreadPoolExecutor(max_workers=len(ws.stacks)) as pool:
        for key, snapshot, full, render in pool.map(record, list(ws.stacks)):
            planned.snapshots[key], planned.fingerprints[key], planned.render_fingerprints[key] = snapshot, full, render
    return planned


# --- apply --plan: does the plan still hold? ------------------------------------------------

def verify(ws: Workspace, doc: dict, outputs: parameters.Outputs | None = None) -> list[str]:
    """Every reason the plan no longer holds, each naming its stack ([]: it holds). Read
    only: nothing is created, changed or deleted here."""
    problems = [f"stack {f['stack']}: the plan has a blocking finding [{f['kind']}] {f['subject']}: {f['detail']}"
                for f in blocking_findings(doc)]
    here = (ws.env, ws.account_id, ws.region)
    planned_for = (doc["env"], doc["account_id"], doc["region"])
    if planned_for != here:
        return problems + [f"the plan is for {planned_for[0]} in {planned_for[1]}/{planned_for[2]}, this run is {here[0]} in {here[1]}/{here[2]}"]
    entries = {e["key"]: e for e in doc["stacks"]}
    if sorted(entries) != sorted(ws.stacks):
        problems.append(f"the plan's stacks ({', '.join(sorted(entries))}) are not the render's ({', '.join(sorted(ws.stacks))})")
        return problems
    if doc["waves"] != ws.manifest["waves"]:
        problems.append("the plan's waves are not the render's (the render changed since the plan)")
    outputs = outputs or parameters.Outputs(ws)

    def one(key: str) -> list[str]:
        return stack_problems(ws, entries[key], outputs)

    with ThreadPoolExecutor(max_workers=len(entries)) as pool:
        for found in pool.map(one, [k for wave in ws.manifest["waves"] for k in wave]):
            problems += found
    return problems


def blocking_findings(doc: dict) -> list[dict]:
    """The plan's findings that block, once the override flags it was made with are applied."""
    return [f for f in doc["findings"] if f.get("blocking") and not (f.get("override") and f["override"] in doc["overrides"])]


def stack_problems(ws: Workspace, entry: dict, outputs: parameters.Outputs) -> list[str]:
    key = entry["key"]
    name, region = ws.stacks[key]["name"], ws.region_of(key)
    if (entry["name"], entry["region"]) != (name, region):
        return [f"stack {key}: planned as {entry['name']} in {entry['region']}, the render has {name} in {region}"]
    stack = cfn.describe_stack(region, name)
    now, then = planfile.snapshot(stack), entry["planned_stack"]
    if now != then:
        return [f"stack {key} ({name}) changed since the plan: it was {_describe(then)}, it is {_describe(now)}"]
    if changesets.stack_fingerprint(ws, key) != entry["render_fingerprint"]:
        return [f"stack {key}: the local render (template, tags or code) no longer matches the plan's fingerprint"]
    change_set = entry["change_set_id"]
    if not change_set:
        if entry["action"] in ("create", "update") and not entry["known_after_apply"]:
            return [f"stack {key}: the plan has no change set for its {entry['action']}"
                    + (f" ({entry['reason']})" if entry.get("reason") else "")]
        return []
    filled = parameters.fill(ws, key, outputs, parameters.deployed_values(stack))
    if filled.values != entry["parameters"]:
        differ = sorted(p for p in set(filled.values) | set(entry["parameters"]) if filled.values.get(p) != entry["parameters"].get(p))
        return [f"stack {key}: parameter {differ[0]} is now {filled.values.get(differ[0])!r}, planned with "
                f"{entry['parameters'].get(differ[0])!r}"]
    if changesets.stack_fingerprint(ws, key, filled.values) != entry["fingerprint"]:
        return [f"stack {key}: the local render and parameters no longer match the plan's fingerprint"]
    described = cfn.describe_change_set(region, change_set)
    if described is None:
        return [f"stack {key}: its change set {change_set} is missing (deleted, or dropped when another change set of the stack ran)"]
    if described.get("StackId") != (stack or {}).get("StackId"):
        return [f"stack {key}: its change set {change_set} belongs to another stack ({described.get('StackId')})"]
    if described.get("Status") != "CREATE_COMPLETE" or described.get("ExecutionStatus") != "AVAILABLE":
        return [f"stack {key}: its change set {change_set} is no longer executable "
                f"(Status {described.get('Status')}, ExecutionStatus {described.get('ExecutionStatus')})"]
    return []


def _describe(snapshot: dict | None) -> str:
    if snapshot is None:
        return "not deployed"
    return f"{snapshot['status']} at {snapshot['last_updated']}"
