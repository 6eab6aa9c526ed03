"""plan: what each stack's deploy would do, from check's report (its states and the
change sets it made, read and deleted). Replacement labels come from the one rule,
the resource schema (replacement.py), not from the change set's flags."""
from __future__ import annotations

from ..gate import replacement
from .. import states
from ..gate.check import Report
from ..workspace import Workspace


def stack_plan(ws: Workspace, report: Report, key: str) -> dict:
    """One stack: create | update | unchanged | skipped | blocked, with its changes."""
    facts = report.facts[key]
    entry = {"key": key, "state": facts.state.status, "changes": [], "follows": []}
    inspection = report.inspections.get(key)
    if facts.refused_locally:
        return {**entry, "action": "skipped", "reason": facts.refused_locally}
    if facts.state.action in (states.BUSY, states.RECOVER, states.UNKNOWN):
        return {**entry, "action": "blocked", "reason": f"{facts.state.status}: see the findings"}
    if facts.state.action in (states.ABSENT, states.REPLACE):
        return {**entry, "action": "create"}
    if not facts.changed or (inspection and inspection.outcome == "no-changes"):
        return {**entry, "action": "unchanged"}
    if inspection is None or inspection.outcome != "ready":
        return {**entry, "action": "update", "reason": f"change set {inspection.outcome}: {inspection.reason}" if inspection else ""}
    deployed, rendered = facts.deployed_template.get("Resources") or {}, ws.template(key).get("Resources") or {}
    for change in inspection.summary:
        label = change.label
        before, after = deployed.get(change.logical_id), rendered.get(change.logical_id)
        if change.action == "Modify" and before and after and before.get("Type") == change.resource_type:
            label = replacement.verdict(change.resource_type, before, after, *report.resolved[key]).label
        row = {"action": label, "logical_id": change.logical_id, "type": change.resource_type}
        if change.direct:
            entry["changes"].append({**row, "causes": list(change.causes)})
        else:
            entry["follows"].append({**row, "caused_by": list(change.caused_by)})
    counts: dict[str, int] = {}
    for change in entry["changes"]:
        counts[change["action"]] = counts.get(change["action"], 0) + 1
    return {**entry, "action": "update" if inspection.summary else "unchanged", "counts": counts,
            "schema_notes": inspection.notes}
