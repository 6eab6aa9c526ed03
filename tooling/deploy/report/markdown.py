"""The plan as a pull-request comment (`deploy.py plan --markdown`): per stack the resources
added, modified, replaced and removed, with the properties that cause each change, and every
finding with its fix. A pure function of the plan document (the one `plan --json` prints)."""
from __future__ import annotations

GROUPS = (("add", "Added"), ("modify", "Modified"), ("replace", "Replaced"), ("replace?", "May be replaced"),
          ("replace (unknown)", "Replacement unknown (blocks)"), ("remove", "Removed"), ("import", "Imported"))


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(doc: dict) -> str:
    lines = [f"## deploy.py plan: {doc['env']} in {doc['account_id']}/{doc['region']}", ""]
    lines.append("Waves: " + " → ".join("[" + ", ".join(wave) + "]" for wave in doc["waves"]))
    lines.append("")
    lines += ["| Stack | Action | Added | Modified | Replaced | Removed |", "|---|---|---:|---:|---:|---:|"]
    for entry in doc["stacks"]:
        counts = entry.get("counts") or {}
        replaced = sum(n for label, n in counts.items() if label.startswith("replace"))
        action = entry["action"] + (" (known after apply)" if entry.get("known_after_apply") else "")
        lines.append(f"| {entry['key']} | {action} | {counts.get('add', 0)} | {counts.get('modify', 0)} | {replaced} | "
                     f"{counts.get('remove', 0)} |")
    lines.append("")
    for entry in doc["stacks"]:
        if entry["action"] == "unchanged":
            continue
        lines += _stack(entry)
    lines += _findings(doc)
    shown = {f"{e['key']}: {n['text']}" for e in doc["stacks"] for n in e.get("schema_notes") or []}
    notes = [note for note in doc.get("notes") or [] if note not in shown]  # schema notes are shown with their stack
    if notes:
        lines += ["### Notes", ""] + [f"- {_cell(note)}" for note in notes] + [""]
    if doc.get("kept"):
        lines.append("Applied exactly, change set by change set, with `deploy.py apply --plan`; a stack or render that "
                     "changed since refuses the whole plan.")
    else:
        lines.append("A preview: its change sets were read and deleted (`deploy.py plan --out` keeps them for `apply --plan`).")
    return "\n".join(lines).rstrip() + "\n"


def _stack(entry: dict) -> list[str]:
    lines = [f"### {entry['key']}: {entry['action']}", ""]
    if entry.get("known_after_apply"):
        lines += [f"Known after apply: {entry['known_after_apply']}. Its change set is made, checked and gated when "
                  f"apply reaches its wave.", ""]
    elif entry.get("reason"):
        lines += [_cell(entry["reason"]), ""]
    if entry.get("change_set_id"):
        lines += [f"Change set: {_code(entry['change_set_id'])}", ""]
    if entry["changes"]:
        lines += ["| Change | Resource | Type | Causing properties |", "|---|---|---|---|"]
        order = {label: i for i, (label, _) in enumerate(GROUPS)}
        for change in sorted(entry["changes"], key=lambda c: (order.get(c["action"], len(order)), c["logical_id"])):
            label = dict(GROUPS).get(change["action"], change["action"])
            causes = (change.get("causes") if change["action"].startswith("replace") else change.get("properties")) or []
            lines.append(f"| {label} | {change['logical_id']} | {change['type']} | {', '.join(_code(c) for c in causes)} |")
        lines.append("")
    if entry.get("follows"):
        follows = ", ".join(f"{c['logical_id']} (by {', '.join(c['caused_by']) or '?'})" for c in entry["follows"])
        lines += [f"Re-evaluated because they reference a changed resource: {follows}", ""]
    for note in entry.get("schema_notes") or []:
        lines += [f"> note: {_cell(note['text'])}", ""]
    return lines


def _findings(doc: dict) -> list[str]:
    found = doc.get("findings") or []
    overrides = set(doc.get("overrides") or [])
    if not found:
        return ["### Findings", "", "None: nothing blocks.", ""]
    lines = ["### Findings", ""]
    for finding in found:
        if not finding["blocking"]:
            state = "note"
        elif finding.get("override") and finding["override"] in overrides:
            state = f"blocking, overridden by `{finding['override']}`"
        else:
            state = "**blocking**"
        lines.append(f"- [{finding['kind']}] {finding['stack']}: {_cell(finding['subject'])} ({state})")
        lines.append(f"  - {_cell(finding['detail'])}")
        lines.append(f"  - Fix: {_cell(finding['fix'])}")
        if finding["blocking"]:
            lines.append(f"  - Override: `{finding['override']}`" if finding.get("override")
                         else "  - Override: none (CloudFormation would refuse it)")
    blocking = [f for f in found if f["blocking"] and not (f.get("override") and f["override"] in overrides)]
    lines += ["", f"{len(blocking)} blocking finding(s): apply refuses this plan." if blocking else "Nothing blocks.", ""]
    return lines
