"""The subcommands of deploy.py. Each opens the workspace (inputs checked before
anything changes), does its work through aws.py, and returns an exit status."""
from __future__ import annotations

import dataclasses
import json
import sys

from . import apply as applying
from . import aws, cfn_yaml, changes, naming, preflight
from .errors import UserError
from .progress import Progress
from .sam_runner import SamRunner
from .workspace import Workspace, open_workspace


def run(args, log, out) -> int:
    ws = open_workspace(args.env, args.local, args.region, log=log)
    handler = {"plan": plan, "apply": apply, "status": status, "destroy": destroy, "check": check, "adopt": adopt}[args.command]
    return handler(ws, args, log)


def emit_json(data) -> None:
    print(json.dumps(data, indent=2, default=str), file=sys.stdout, flush=True)


def waves_line(ws: Workspace) -> str:
    return " -> ".join("[" + ", ".join(wave) + "]" for wave in ws.manifest["waves"])


# --- plan ------------------------------------------------------------------------

def change_set_for(ws: Workspace, key: str) -> dict:
    """Create a change set for the rendered stack, read it, delete it: never executed."""
    from . import packaging

    name = ws.stacks[key]["name"]
    body = packaging.deployable_template(ws, key)
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    change_set_id = aws.create_change_set(ws.region, name, body, "UPDATE", capabilities, applying.stack_tags(ws, key))
    try:
        return aws.wait_change_set(ws.region, change_set_id)
    finally:
        aws.delete_change_set(ws.region, change_set_id)


def settle_replacements(summary: list[changes.Change], deployed: dict, rendered: dict) -> list[changes.Change]:
    """A 'Conditional' replacement stands only when a property that can force it really
    differs between the deployed template and the render; otherwise it is a modify."""
    settled = []
    for change in summary:
        if change.replacement == "Conditional":
            old = (deployed.get("Resources") or {}).get(change.logical_id)
            new = (rendered.get("Resources") or {}).get(change.logical_id)
            if not preflight.changed_properties(old, new, change.causes):
                change = dataclasses.replace(change, replacement="False")
        settled.append(change)
    return settled


def plan_stack(ws: Workspace, key: str) -> dict:
    name = ws.stacks[key]["name"]
    if ws.local and applying.local_refusal(ws, key):
        return {"key": key, "action": "skipped", "reason": applying.local_refusal(ws, key), "changes": []}
    stack = aws.describe_stack(ws.region, name)
    if stack is None or stack["StackStatus"] in changes.EMPTY_STATES:
        return {"key": key, "action": "create", "changes": []}
    if applying.is_unchanged(ws, key, stack):
        return {"key": key, "action": "unchanged", "changes": []}
    try:
        described = change_set_for(ws, key)
    except aws.botocore.exceptions.ClientError as exc:
        reason = applying.unsupported_reason(str(exc))
        if reason and ws.local:
            return {"key": key, "action": "skipped", "reason": reason, "changes": []}
        raise
    if described["Status"] == "FAILED" and not described["Changes"]:
        reason = described.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            return {"key": key, "action": "unchanged", "changes": []}
        if ws.local and applying.unsupported_reason(reason):
            return {"key": key, "action": "skipped", "reason": applying.unsupported_reason(reason), "changes": []}
        return {"key": key, "action": "error", "reason": reason, "changes": []}
    deployed = cfn_yaml.load(aws.get_template_body(ws.region, name))
    summary = settle_replacements(changes.summarize_change_set(described["Changes"]), deployed,
                                  cfn_yaml.load(ws.template_text(key)))
    direct = [c for c in summary if c.direct]
    return {"key": key, "action": "update" if summary else "unchanged", "counts": changes.count_labels(direct),
            "changes": [{"action": c.label, "logical_id": c.logical_id, "type": c.resource_type, "causes": list(c.causes)} for c in direct],
            "follows": [{"action": c.label, "logical_id": c.logical_id, "type": c.resource_type, "caused_by": list(c.caused_by)}
                        for c in summary if not c.direct]}


def plan(ws: Workspace, args, log) -> int:
    log(f"plan: {ws.env} in {ws.account_id}/{ws.region}; waves {waves_line(ws)}")
    result = {"env": ws.env, "account_id": ws.account_id, "region": ws.region, "waves": ws.manifest["waves"], "stacks": []}
    for number, wave in enumerate(ws.manifest["waves"], start=1):
        log(f"wave {number}:")
        for key in wave:
            entry = plan_stack(ws, key)
            result["stacks"].append(entry)
            if entry["action"] == "update":
                counts = ", ".join(f"{n} {label}" for label, n in sorted(entry["counts"].items()))
                log(f"  {key}: update ({counts})")
                for change in entry["changes"]:
                    causes = f" (forced by {', '.join(change['causes'])})" if change["causes"] and change["action"].startswith("replace") else ""
                    log(f"      {change['action']:<9} {change['logical_id']} [{change['type']}]{causes}")
                if entry["follows"]:
                    names = ", ".join(f"{c['logical_id']}" for c in entry["follows"])
                    log(f"      and {len(entry['follows'])} resource(s) re-evaluated because they reference a changed one: {names}")
            else:
                log(f"  {key}: {entry['action']}{': ' + entry['reason'] if entry.get('reason') else ''}")
    if args.json:
        emit_json(result)
    return 0


# --- apply -----------------------------------------------------------------------

def apply(ws: Workspace, args, log) -> int:
    only = list(args.only or [])  # keys validated by deploy.py before anything started
    for key in only:  # what the selected stacks import must already be deployed
        for dep in ws.stacks[key]["depends_on"]:
            if dep in only:
                continue
            stack = aws.describe_stack(ws.region, ws.stacks[dep]["name"])
            if stack is None or not changes.succeeded(stack["StackStatus"]):
                raise UserError(f"--only {key}: needs stack {dep} deployed first ({stack['StackStatus'] if stack else 'does not exist'})")
    log(f"apply: {ws.env} in {ws.account_id}/{ws.region}; waves {waves_line(ws)}")
    targets = preflight.changed_stacks(ws)
    sam = SamRunner()
    if targets:
        sam.start()  # imports the SAM CLI while the check runs
    try:
        return _apply(ws, args, log, only, sam, targets)
    finally:
        sam.stop()


def _apply(ws: Workspace, args, log, only: list[str], sam: SamRunner, targets: dict) -> int:
    findings, _ = preflight.run_check(ws, log, targets)
    overridden = [f for f in findings if getattr(args, f.override.lstrip("-").replace("-", "_"), False)]
    for finding in overridden:
        log(f"check: OVERRIDDEN by {finding.override}: [{finding.kind}] {finding.stack}: {finding.subject}: {finding.detail}")
    blocking = [f for f in findings if f not in overridden]
    if blocking:
        preflight.print_findings(blocking, log)
        log("apply: refused before any change (fix the findings, or override each kind with its flag)")
        if args.json:
            emit_json({"env": ws.env, "ok": False, "refused": [f.as_json() for f in blocking], "stacks": []})
        return 3
    progress = Progress(stream=sys.stderr if args.json else sys.stdout)
    outcomes = applying.run_apply(ws, only, progress, sam, set(targets))
    failed = [o for o in outcomes if o.result == "failed"]
    skipped = [o for o in outcomes if o.result in ("skipped", "blocked")]
    log("")
    log("summary:")
    for outcome in outcomes:
        if outcome.result != "not-selected":
            log(f"  {outcome.key:<18} {applying.describe(outcome)}")
    if skipped:
        log(f"skipped on the local AWS: {', '.join(o.key for o in skipped)} (the emulator cannot hold them; deploy them to a real account)")
    if failed:
        first = failed[0]
        log(f"apply: FAILED at stack {first.key} ({ws.stacks[first.key]['name']}); later waves were not deployed")
        from . import ledger

        ledger.print_ledger([entry for o in failed for entry in o.retained], log)
    else:
        log("apply: done")
    if args.json:
        emit_json({"env": ws.env, "ok": not failed, "stacks": [o.as_json() for o in outcomes]})
    return 1 if failed else 0


# --- status ----------------------------------------------------------------------

def status(ws: Workspace, args, log) -> int:
    rows = []
    for key in naming.STACK_KEYS:
        name = ws.stacks[key]["name"]
        stack = aws.describe_stack(ws.region, name)
        rows.append({
            "key": key, "name": name,
            "status": stack["StackStatus"] if stack else "NOT_DEPLOYED",
            "termination_protection": bool(stack and stack.get("EnableTerminationProtection")),
            "last_updated": str((stack or {}).get("LastUpdatedTime") or (stack or {}).get("CreationTime") or "")[:19],
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])},
        })
    if args.json:
        emit_json({"env": ws.env, "account_id": ws.account_id, "region": ws.region, "stacks": rows})
        return 0
    log(f"{'stack':<18} {'status':<24} {'protected':<9} {'last update':<19}  name")
    for row in rows:
        log(f"{row['key']:<18} {row['status']:<24} {'yes' if row['termination_protection'] else 'no':<9} {row['last_updated']:<19}  {row['name']}")
        for key, value in sorted(row["outputs"].items()):
            log(f"{'':<20}{key} = {value}")
    return 0


# --- destroy ---------------------------------------------------------------------

def destroy(ws: Workspace, args, log) -> int:
    storage_name = ws.stacks[naming.STORAGE]["name"]
    storage = aws.describe_stack(ws.region, storage_name)
    if args.include_storage and storage and storage.get("EnableTerminationProtection"):
        raise UserError(f"--include-storage: {storage_name} has termination protection on; turn it off yourself first "
                        f"(aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {storage_name})")
    from . import destroying

    return destroying.run_destroy(ws, args.include_storage, log, args.json)


# --- check and adopt ---------------------------------------------------------------

def check(ws: Workspace, args, log) -> int:
    log(f"check: {ws.env} in {ws.account_id}/{ws.region}")
    findings, report = preflight.run_check(ws, log)
    if args.json:
        emit_json({"env": ws.env, "ok": not findings, "findings": [f.as_json() for f in findings], **report})
    preflight.print_findings(findings, log)
    return 3 if findings else 0


def adopt(ws: Workspace, args, log) -> int:
    from . import adopting

    return adopting.run_adopt(ws, log, args.json)
