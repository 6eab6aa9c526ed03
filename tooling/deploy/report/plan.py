"""plan: what each stack's deploy would do, from check's report (its states and the
change sets it made and read) and the plan's gate (gate/planning.py): the plan document
that `plan --json` prints and `plan --out` saves (its format: deploy/planfile.py).
Replacement labels come from the one rule, the resource schema (replacement.py), not
from the change set's flags."""
from __future__ import annotations

import datetime as dt

from ..gate import planning, replacement
from .. import planfile, states
from ..gate.check import Report
from ..workspace import Workspace


def stack_plan(ws: Workspace, report: Report, key: str, planned: planning.Planned | None = None) -> dict:
    """One stack: create | update | unchanged | skipped | blocked, with its changes."""
    facts = report.facts[key]
    planned = planned or planning.Planned({})
    entry = {"key": key, "name": facts.name, "region": ws.region_of(key), "state": facts.state.status,
             "planned_stack": planned.snapshots.get(key), "change_set_id": planned.kept.get(key),
             "fingerprint": planned.fingerprints.get(key), "render_fingerprint": planned.render_fingerprints.get(key, ""),
             "parameters": dict(facts.parameter_values), "known_after_apply": planned.after_apply.get(key),
             "changes": [], "follows": [], "findings": [f.as_json() for f in report.findings if f.stack == key]}
    inspection = report.inspections.get(key)
    if facts.refused_locally:
        return {**entry, "action": "skipped", "reason": facts.refused_locally}
    if facts.state.action in (states.BUSY, states.RECOVER, states.UNKNOWN):
        return {**entry, "action": "blocked", "reason": f"{facts.state.status}: see the findings"}
    creating = facts.state.action in (states.ABSENT, states.REPLACE)
    if not creating and (not facts.changed or (inspection and inspection.outcome == "no-changes")):
        return {**entry, "action": "unchanged"}
    action = "create" if creating else "update"
    if entry["known_after_apply"]:
        return {**entry, "action": action, "reason": f"known after apply: {entry['known_after_apply']}"}
    if inspection is None or inspection.outcome != "ready":
        return {**entry, "action": action, "reason": f"change set {inspection.outcome}: {inspection.reason}" if inspection else ""}
    deployed = (facts.deployed_template or {}).get("Resources") or {}
    rendered = ws.template(key).get("Resources") or {}
    for change in inspection.summary:
        label, replacing, causes = change.label, change.replacement, list(change.causes)
        before, after = deployed.get(change.logical_id), rendered.get(change.logical_id)
        if change.action == "Modify" and before and after and before.get("Type") == change.resource_type:
            verdict = replacement.verdict(change.resource_type, before, after, *report.resolved[key])
            label, replacing, causes = verdict.label, verdict.replacement, list(verdict.properties)
        row = {"action": label, "logical_id": change.logical_id, "type": change.resource_type}
        if change.direct:
            entry["changes"].append({**row, "replacement": replacing, "causes": causes, "properties": list(change.properties)})
        else:
            entry["follows"].append({**row, "caused_by": list(change.caused_by)})
    counts: dict[str, int] = {}
    for change in entry["changes"]:
        counts[change["action"]] = counts.get(change["action"], 0) + 1
    return {**entry, "action": action if inspection.summary else "unchanged", "counts": counts, "schema_notes": inspection.notes}


def document(ws: Workspace, report: Report, planned: planning.Planned | None, overrides: set[str], kept: bool) -> dict:
    """The whole plan: what `plan --json` prints and `plan --out` saves."""
    stacks = [stack_plan(ws, report, key, planned) for wave in ws.manifest["waves"] for key in wave]
    return {"format": planfile.FORMAT, "version": planfile.VERSION,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "env": ws.env, "account_id": ws.account_id, "region": ws.region, "waves": ws.manifest["waves"],
            "overrides": sorted(overrides), "kept": kept, "stacks": stacks,
            "findings": [f.as_json() for f in report.findings], "notes": report.notes}
