"""check: find, before anything changes, what would make a deploy fail or lose data.

The facts are gathered here (stack states, the deployed templates, the named
resources, the exports in use); what they mean is decided by the pure functions
of findings.py, states.py, inventory.py and replacement.py. Whatever cannot be
established is an "unknown" finding, which blocks: "nothing blocks" is a proven
statement, never a default."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...aws.sam_runner import SamRunner
from ...aws.session import BotoCoreError, ClientError, describe_error
from ...render import cfn_yaml, naming
from . import changesets, drift, findings, inventory, rename, replacement
from .. import fingerprint, local, parameters, stacks, states
from .findings import Finding
from ..workspace import Workspace


@dataclass
class StackFacts:
    key: str
    name: str
    stack: dict | None
    state: states.State
    failed_resources: list[str] = field(default_factory=list)
    deployed_template: dict | None = None  # when deployed and updatable
    changed: bool = False  # the render differs from what is deployed (or nothing is deployed)
    refused_locally: str | None = None  # the local AWS cannot hold this stack: why
    filled: parameters.Filled | None = None  # parameters filled from other stacks' outputs

    @property
    def parameter_values(self) -> dict[str, str]:
        return self.filled.values if self.filled else {}

    @property
    def target(self) -> bool:
        """To be deployed: changed, in a state a deploy can act on, holdable here."""
        return self.changed and self.state.action in (states.ABSENT, states.REPLACE, states.UPDATE) and not self.refused_locally


def stack_facts(ws: Workspace, key: str, outputs: parameters.Outputs) -> StackFacts:
    name, region = ws.stacks[key]["name"], ws.region_of(key)
    refusal = local.refusal(ws, key) if ws.local else None
    stack, state = stacks.current(region, name)
    facts = StackFacts(key, name, stack, state, refused_locally=refusal,
                       filled=parameters.fill(ws, key, outputs, parameters.deployed_values(stack)))
    if state.action == states.RECOVER:
        stuck = states.failed_resource_status(state.status)
        facts.failed_resources = sorted(r["LogicalResourceId"] for r in cfn.stack_resources(region, name)
                                        if r.get("ResourceStatus") in stuck)
    elif state.action == states.UPDATE:
        facts.deployed_template = cfn_yaml.load(cfn.get_template_body(region, name))
        wanted = changesets.stack_fingerprint(ws, key, facts.parameter_values)
        facts.changed = bool(facts.filled.missing) or fingerprint.fingerprint_of(facts.deployed_template) != wanted
    elif state.action in (states.ABSENT, states.REPLACE):
        facts.changed = True
    return facts


def gather(ws: Workspace, keys, outputs: parameters.Outputs | None = None) -> dict[str, StackFacts]:
    keys = [k for k in ws.stacks if k in set(keys)]
    outputs = outputs or parameters.Outputs(ws)
    with ThreadPoolExecutor(max_workers=max(1, len(keys))) as pool:
        return dict(zip(keys, pool.map(lambda k: stack_facts(ws, k, outputs), keys)))


def resolvers(ws: Workspace, facts: StackFacts, exports: dict[str, str]) -> tuple[replacement.Resolver, replacement.Resolver]:
    """How the deployed template's and the render's values resolve in this stack."""
    region = ws.region_of(facts.key)
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.stack_resources(region, facts.name)
                if r.get("PhysicalResourceId")}
    deployed = {p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in (facts.stack or {}).get("Parameters", [])}
    old = replacement.resolver_for(facts.deployed_template or {}, facts.name, ws.account_id, region, deployed, physical, exports)
    for name, spec in ((facts.deployed_template or {}).get("Parameters") or {}).items():
        if isinstance(spec, dict) and str(spec.get("NoEcho", "")).lower() == "true":
            old.variables.pop(name, None)  # shown masked ("****"): not its value, so not compared as one
    # the values the change set sends: the render's defaults, overridden by those filled in
    new = replacement.resolver_for(ws.template(facts.key), facts.name, ws.account_id, region, facts.parameter_values, physical, exports)
    return old, new


def stack_state_finding(ws: Workspace, key: str, name: str, stack: dict | None, state: states.State,
                        failed_resources=()) -> Finding | None:
    """findings.state_finding, with what only AWS can tell: for storage in a state that only a
    delete ends, the stacks importing its exports (CloudFormation will not delete it while
    any do, so its fix deletes them first)."""
    importers = []
    if key == naming.STORAGE and stack and state.status in findings.STORAGE_GONE_BY_DELETE:
        exports = [o["ExportName"] for o in stack.get("Outputs", []) if o.get("ExportName")]
        importers = sorted({s for export in exports for s in cfn.list_imports(ws.region_of(key), export)})
    return findings.state_finding(key, name, state, list(failed_resources), ws.env, ws.local, importers)


@dataclass
class Report:
    facts: dict[str, StackFacts]
    findings: list[Finding] = field(default_factory=list)
    named: list[inventory.Surveyed] = field(default_factory=list)
    inspections: dict[str, changesets.Inspection] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    resolved: dict = field(default_factory=dict)  # key -> (old, new) resolvers of each update
    drift: list = field(default_factory=list)  # drift.StackDrift of every stack (check --drift)

    @property
    def targets(self) -> list[str]:
        return [k for k, f in self.facts.items() if f.target]

    def as_json(self) -> dict:
        return {
            "stacks_checked": sorted(self.facts),
            "stacks_to_deploy": self.targets,
            "states": {k: f.state.status for k, f in self.facts.items()},
            "named_resources": [item.as_json() for item in self.named],
            "change_sets": {k: {"outcome": i.outcome, "reason": i.reason, "schema_notes": i.notes,
                                "changes": [{"action": c.label, "logical_id": c.logical_id, "type": c.resource_type}
                                            for c in i.summary if c.direct]}
                            for k, i in self.inspections.items()},
            "notes": self.notes,
            **({"drift": [d.as_json() for d in self.drift]} if self.drift else {}),
        }


def run_check(ws: Workspace, keys, log=lambda _: None, change_sets: bool = False, sam: SamRunner | None = None,
              detect_drift: bool = False) -> Report:
    """Every finding for the stacks `keys` (only those: apply --only checks what it deploys),
    and always the read-back of storage's protections (drift.py), whatever `keys` is.
    change_sets: also create each update's change set, inspect it and delete it (check
    and plan; apply inspects, instead, the change sets it then executes).
    detect_drift: also CloudFormation's drift detection of every deployed stack (check --drift)."""
    with ThreadPoolExecutor(max_workers=2) as pool:  # the read-back runs beside the stacks' facts
        reading = pool.submit(drift.read_back, ws)
        report = Report(gather(ws, keys))
        read = reading.result()
        report.findings += drift.findings_of(ws, read)
        if read.not_compared:
            report.notes.append(f"storage: not read back on the local AWS, whose CloudFormation does not apply them: "
                                f"{', '.join(read.not_compared)}")
    if detect_drift:
        report.drift = drift.detect_all(ws, ws.stacks)
        report.findings += drift.detection_findings(ws, report.drift)
    for facts in report.facts.values():
        finding = stack_state_finding(ws, facts.key, facts.name, facts.stack, facts.state, facts.failed_resources)
        if finding:
            report.findings.append(finding)
        for parameter in facts.filled.pending:
            report.notes.append(f"{facts.key}: {parameter} is filled once its source stack exists; apply deploys {facts.key} again then")
        if facts.refused_locally:
            report.notes.append(f"{facts.key}: not checked, the local AWS cannot hold it ({facts.refused_locally})")
    targets = report.targets
    if not targets:
        return report
    log(f"check: {len(targets)} stack(s) differ from what is deployed: {', '.join(targets)}")

    stack_names = ws.stack_names
    for region in sorted({ws.region_of(k) for k in targets}):  # each resource is looked up in its stack's region
        keys_here = [k for k in targets if ws.region_of(k) == region]
        resources = [r for key in keys_here for r in inventory.named_resources(key, stack_names[key], ws.template(key), ws.account_id, region)]
        report.named += inventory.survey(resources, stack_names, region, ws.account_id)
    for item in report.named:
        finding = findings.resource_finding(item, stack_names[item.resource.stack], ws.env, ws.local)
        if finding:
            report.findings.append(finding)

    updates = [report.facts[k] for k in targets if report.facts[k].state.action == states.UPDATE]
    live = cfn.list_exports(ws.region) if updates else {}
    exports = {name: e["Value"] for name, e in live.items()}
    resolved = report.resolved = {f.key: resolvers(ws, f, exports) for f in updates}
    storage = report.facts.get(naming.STORAGE)
    renames = []
    if storage and storage.target and storage.state.action == states.UPDATE:
        renames = rename.recognise(storage.deployed_template, ws.template(naming.STORAGE), *resolved[naming.STORAGE])
    report.findings += export_contract(ws, updates, exports, resolved, renames)
    if storage and storage.target and storage.state.action == states.UPDATE:
        report.findings += rename.rename_findings(renames, ws.env, ws.local)
        report.findings += findings.stateful_findings(storage.deployed_template, ws.template(naming.STORAGE), *resolved[naming.STORAGE],
                                                      renamed={p.old for p in renames})
    if change_sets and updates:
        report.findings += inspect_updates(ws, report, updates, resolved, sam or SamRunner())
    if renames:  # one finding per rename: what the others say of the same pair is dropped
        explained = rename.policy_explained(cfn.stack_policy(ws.region, storage.name), ws.stack_policy(), renames)
        report.findings = [f for f in report.findings if not rename.covered(f, renames, explained)]
    return report


def export_contract(ws: Workspace, updates: list[StackFacts], exports: dict[str, str], resolved: dict,
                    renames: list[rename.Pair] = ()) -> list[Finding]:
    """renames: of the storage stack; an output referring to a renamed resource keeps its value."""
    importing_in_render: dict[str, set[str]] = {}
    for stack in ws.manifest["stacks"]:
        for export in stack["imports"]:
            importing_in_render.setdefault(export, set()).add(stack["name"])
    waiting_for_new = {s["name"] for s in ws.manifest["stacks"] if set(s["imports"]) - set(exports)}
    keys_of = {s["name"]: s["key"] for s in ws.manifest["stacks"]}
    found = []
    for facts in updates:
        deployed = {o["ExportName"]: o["OutputKey"] for o in facts.stack.get("Outputs", []) if o.get("ExportName")}
        new_exports = set(ws.stacks[facts.key]["exports"])
        removed = sorted(set(deployed) - new_exports)
        kept = {e: k for e, k in deployed.items() if e in new_exports}
        old, new = resolved[facts.key]
        rendered_outputs = ws.template(facts.key).get("Outputs") or {}
        if facts.key == naming.STORAGE:
            rendered_outputs = rename.as_deployed(rendered_outputs, list(renames))
        changed = findings.changed_exports(facts.deployed_template.get("Outputs") or {}, rendered_outputs, kept, old, new)
        importers = {e: cfn.list_imports(ws.region_of(facts.key), e) for e in removed + changed}
        found += findings.export_findings(facts.key, removed, changed, importers, importing_in_render, keys_of,
                                          ws.env, ws.local, waiting_for_new)
    return found


_NO_EXPORT = re.compile(r"No export named (\S+?)[ .]")


def inspect_updates(ws: Workspace, report: Report, updates: list[StackFacts], resolved: dict, sam: SamRunner,
                    keep: bool = False, orphans: dict[str, set[str]] | None = None) -> list[Finding]:
    """Create and inspect the change set of every stack of `updates`, and delete it (never
    executed). With `keep` (plan --out), a change set ready to execute is kept for apply
    --plan, and `updates` may hold stacks to create too; `orphans`: stack key -> the
    logical ids its change set takes over (--allow-orphans)."""
    exported_by_target = {e: k for k in report.targets for e in ws.stacks[k]["exports"]}

    def one(facts: StackFacts) -> changesets.Inspection:
        change_set = inspection = None
        try:
            if facts.filled.missing:  # made only after the stacks it reads parameters from deploy
                return changesets.Inspection("", "deferred", "it is made once " + "; ".join(facts.filled.missing) + " exists")
            exists = facts.state.action == states.UPDATE
            import_ids = (orphans or {}).get(facts.key, set())
            prepared = changesets.prepare(ws, facts.key, sam, import_ids, parameters=facts.parameter_values)
            change_set = changesets.create(ws, prepared, stack_exists=exists, import_existing=bool(import_ids),
                                           name_kind=cfn.PLAN_PREFIX if keep else cfn.INSPECT_PREFIX)
            inspection = changesets.inspect(ws, facts.key, change_set, facts.deployed_template if exists else None,
                                            *resolved.get(facts.key, (None, None)), gate=False)
            return inspection
        except (ClientError, BotoCoreError) as exc:
            return changesets.Inspection(change_set or "", "error", describe_error(exc),
                                         findings=[Finding("unknown", facts.key, facts.name, f"its change set could not be made or read: {describe_error(exc)}",
                                                           "fix the cause and check again, or accept with --allow-unknown")])
        finally:
            if change_set and not (keep and inspection is not None and inspection.outcome == "ready"):
                cfn.delete_change_set(ws.region_of(facts.key), change_set)

    with ThreadPoolExecutor(max_workers=len(updates)) as pool:
        inspections = list(pool.map(one, updates))
    found = []
    seen = {(f.kind, f.stack, f.subject) for f in report.findings}
    for facts, inspection in zip(updates, inspections):
        report.inspections[facts.key] = inspection
        for finding in inspection.findings:
            if (finding.kind, finding.stack, finding.subject) in seen:
                continue  # the gate or the inventory found it already
            seen.add((finding.kind, finding.stack, finding.subject))
            missing = _NO_EXPORT.search(finding.detail) if finding.kind == "change-set" else None
            if missing and missing.group(1) in exported_by_target:
                report.notes.append(f"{facts.key}: its change set can only be made after {exported_by_target[missing.group(1)]} "
                                    f"deploys the export {missing.group(1)} (apply deploys them in that order)")
                continue
            found.append(finding)
        report.notes += [f"{facts.key}: {note['text']}" for note in inspection.notes]
    return found


def print_findings(found: list[Finding], log, notes: list[str] = ()) -> None:
    for note in notes:
        log(f"  note: {note}")
    blocking = [f for f in found if f.blocking]
    for finding in [f for f in found if not f.blocking]:
        log(f"  note [{finding.kind}] {finding.stack}: {finding.subject}: {finding.detail}")
    if not blocking:
        log("check: nothing blocks")
        return
    log(f"check: {len(blocking)} blocking finding(s):")
    for finding in blocking:
        log(f"  [{finding.kind}] {finding.stack}: {finding.subject}")
        log(f"      {finding.detail}")
        log(f"      fix: {finding.fix}")
        log(f"      (override: {finding.override})" if finding.override else "      (no override: CloudFormation would refuse it)")
