"""apply: deploy the rendered stacks wave by wave with `sam deploy`.

Stacks of one wave deploy in parallel; the first failed wave stops the run.
After the storage stack deploys, termination protection and the stack policy are
set and read back. Only CREATE_COMPLETE / UPDATE_COMPLETE count as success."""
from __future__ import annotations

import datetime as dt
import functools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import aws, cfn_yaml, changes, ledger, naming
from .progress import Progress
from .sam_runner import SamRunner
from .workspace import ROOT, Workspace

POLL_SECONDS = float(os.environ.get("DEPLOY_POLL_SECONDS", "2"))


@dataclass
class Outcome:
    key: str
    result: str  # deployed | unchanged | skipped | blocked | failed | not-selected
    status: str | None = None
    detail: str = ""
    failure: dict | None = None
    seconds: float = 0.0
    retained: list[dict] = field(default_factory=list)
    started_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.result in ("deployed", "unchanged", "skipped", "blocked", "not-selected")

    def as_json(self) -> dict:
        failure = None
        if self.failure:
            failure = {k: self.failure.get(k) for k in ("LogicalResourceId", "ResourceType", "ResourceStatus", "ResourceStatusReason")}
        return {"key": self.key, "result": self.result, "status": self.status, "detail": self.detail,
                "failure": failure, "seconds": round(self.seconds, 1), "retained": self.retained}


def stack_tags(ws: Workspace, key: str) -> dict[str, str]:
    return {"project": "ai-social-media", "environment": ws.env, "stack": key}


def stack_fingerprint(ws: Workspace, key: str) -> str:
    tags = stack_tags(ws, key)
    return changes.fingerprint(ws.template_text(key), ws.template_path(key).parent, extra=repr(sorted(tags.items())))


def deploy_copy(ws: Workspace, key: str) -> Path:
    """The rendered template with its fingerprint, beside it (so relative CodeUri paths hold)."""
    source = ws.template_path(key)
    copy = source.with_name(f"{source.stem}.deploy.yaml")
    copy.write_text(changes.with_fingerprint(ws.template_text(key), stack_fingerprint(ws, key)), encoding="utf-8")
    return copy


def is_unchanged(ws: Workspace, key: str, stack: dict | None) -> bool:
    """Deployed, complete, and carrying the fingerprint of the current render."""
    if not stack or not changes.succeeded(stack["StackStatus"]):
        return False
    deployed = cfn_yaml.load(aws.get_template_body(ws.region, stack["StackName"]))
    return changes.fingerprint_of(deployed) == stack_fingerprint(ws, key)


def sam_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SAM_CLI_TELEMETRY", "0")
    env.setdefault("SAM_CLI_POLL_DELAY", "1" if env.get("AWS_ENDPOINT_URL") else "5")
    return env


def unsupported_reason(log_text: str) -> str | None:
    """The emulator's refusal of resource types it cannot hold, if that is why sam failed."""
    for line in log_text.splitlines():
        if "Unrecognized resource types" in line:
            return "emulator: " + line[line.index("Unrecognized resource types"):].strip()
    return None


def _latest_event(region: str, name: str, since: dt.datetime) -> str:
    events = [e for e in aws.stack_events(region, name, limit=20) if e["Timestamp"] >= since]
    if not events:
        return ""
    event = events[0]
    if event["LogicalResourceId"] == name:
        return ""  # the stack's own line only repeats the status shown beside it
    reason = event.get("ResourceStatusReason") or ""
    return f"{event['LogicalResourceId']} {event['ResourceStatus']}{' (' + reason[:80] + ')' if reason else ''}"


@functools.lru_cache(maxsize=None)
def _local_refusal(region: str, resource_types: tuple[str, ...]) -> str | None:
    # A template of one bare resource per type: the emulator's type check answers it
    # without parsing (and spending seconds of CPU on) the whole rendered template.
    probe = {"AWSTemplateFormatVersion": "2010-09-09",
             "Resources": {f"Probe{i}": {"Type": t} for i, t in enumerate(resource_types)}}
    return unsupported_reason(aws.validation_error(region, json.dumps(probe)) or "")


def local_refusal(ws: Workspace, key: str) -> str | None:
    """Why the local AWS cannot hold this stack (it refuses unsupported types up front), or None."""
    template = cfn_yaml.load(ws.template_text(key))
    if template.get("Transform"):
        return None  # expanded server-side; the emulator checks the expanded types itself
    types = tuple(sorted({r.get("Type", "") for r in (template.get("Resources") or {}).values()}))
    return _local_refusal(ws.region, types)


def deploy_stack(ws: Workspace, key: str, progress: Progress, sam: SamRunner, changed: set[str]) -> Outcome:
    started = time.monotonic()
    name = ws.stacks[key]["name"]
    if ws.local and local_refusal(ws, key):
        return Outcome(key, "skipped", None, local_refusal(ws, key))
    before = aws.describe_stack(ws.region, name)
    if key not in changed:  # the check found it equal to what is deployed
        return Outcome(key, "unchanged", before["StackStatus"], "template, code and parameters equal what is deployed")
    if before and changes.in_progress(before["StackStatus"]):
        return Outcome(key, "failed", before["StackStatus"], "another operation is in progress on this stack")
    if before and before["StackStatus"] in changes.EMPTY_STATES:
        # A stack whose first create failed holds nothing but can only be deleted.
        progress.say(f"  [{key}] {before['StackStatus']}: deleting the empty stack left by a failed create")
        aws.delete_stack(ws.region, name)
        aws.wait_deleted(ws.region, name)

    missing = [str(p) for p in changes.code_dirs(ws.template_text(key), ws.template_path(key).parent) if not p.is_dir()]
    if missing:  # sam resolves CodeUri relative to the rendered template: render under build/<name>/
        return Outcome(key, "failed", before["StackStatus"] if before else None,
                       f"code folder {missing[0]} not found from {ws.template_path(key)} (render into build/<name>/)")
    log_path = ws.out_dir / "logs" / f"{key}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    arguments = ["deploy", "--config-file", str(ws.out_dir / ws.manifest["samconfig"]), "--config-env", key,
                 "--template-file", str(deploy_copy(ws, key)), "--no-progressbar",
                 "--tags", *[f"{k}={v}" for k, v in stack_tags(ws, key).items()]]
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=2)
    run = sam.start_run(arguments, log_path, sam_environment())
    progress.update(key, "packaging" if ws.stacks[key].get("sam") else "creating change set")
    while (returncode := run.wait(POLL_SECONDS)) is None:
        stack = aws.describe_stack(ws.region, name)
        if stack:
            progress.update(key, stack["StackStatus"], _latest_event(ws.region, name, since))
    progress.done(key)
    log_text = log_path.read_text(errors="replace")
    after = aws.describe_stack(ws.region, name)
    status = after["StackStatus"] if after else None
    seconds = time.monotonic() - started
    if returncode == 0 and changes.succeeded(status):
        return Outcome(key, "deployed", status, seconds=seconds)
    reason = unsupported_reason(log_text)
    if reason and ws.local:
        return Outcome(key, "skipped", status, reason, seconds=seconds)
    failure = changes.first_failure(aws.stack_events(ws.region, name), since) if after else None
    detail = "" if failure else _last_error_line(log_text)
    return Outcome(key, "failed", status, detail or f"sam deploy exited {returncode} (log: {log_path.relative_to(ROOT)})",
                   failure=failure, seconds=seconds, started_at=since)


def _last_error_line(log_text: str) -> str:
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("Error") or "error" in line.lower():
            return line[:400]
    return lines[-1][:400] if lines else ""


def protect_storage(ws: Workspace) -> str | None:
    """Turn termination protection on, set the stack policy, and read both back.
    Returns a problem, or None when both are verified."""
    name = ws.stacks[naming.STORAGE]["name"]
    policy = ws.stack_policy()
    aws.protect_stack(ws.region, name, policy)
    stack = aws.describe_stack(ws.region, name)
    if not stack or not stack.get("EnableTerminationProtection"):
        return "termination protection did not stay on"
    if aws.stack_policy(ws.region, name) != policy:
        return "the stack policy read back differs from storage-stack-policy.json"
    return None


def run_apply(ws: Workspace, only: list[str], progress: Progress, sam: SamRunner, changed: set[str]) -> list[Outcome]:
    outcomes: dict[str, Outcome] = {}
    skipped: set[str] = set()
    selected = set(only) if only else set(ws.stacks)
    for number, wave in enumerate(ws.manifest["waves"], start=1):
        blocked = changes.blocked(skipped, ws.depends_on)
        progress.say(f"wave {number}/{len(ws.manifest['waves'])}: {', '.join(wave)}")
        todo = []
        for key in wave:
            if key not in selected:
                outcomes[key] = Outcome(key, "not-selected")
            elif key in blocked:
                own = local_refusal(ws, key) if ws.local else None
                detail = f"needs {blocked[key]}, which was skipped" + (f"; and {own}" if own else "")
                outcomes[key] = Outcome(key, "blocked", detail=detail)
                progress.say(f"  [{key}] skipped: {detail}")
            else:
                todo.append(key)
        if not todo:
            continue
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            results = list(pool.map(lambda k: deploy_stack(ws, k, progress, sam, changed), todo))
        for outcome in results:
            outcomes[outcome.key] = outcome
            if outcome.result == "skipped":
                skipped.add(outcome.key)
            if outcome.key == naming.STORAGE and outcome.result in ("deployed", "unchanged"):
                problem = protect_storage(ws)
                if problem:
                    outcome.result, outcome.detail = "failed", f"storage protection: {problem}"
                else:
                    outcome.detail = (outcome.detail + "; " if outcome.detail else "") + "termination protection on, stack policy set (verified)"
            progress.say(f"  [{outcome.key}] {describe(outcome)}")
        if any(o.result == "failed" for o in results):
            for outcome in results:
                if outcome.result == "failed":
                    outcome.retained = ledger.after_failure(ws, outcome.key, outcome.started_at)
            break
    return [outcomes[k] for k in naming.STACK_KEYS if k in outcomes]


def describe(outcome: Outcome) -> str:
    text = outcome.result
    if outcome.status:
        text += f" ({outcome.status})"
    if outcome.seconds:
        text += f" in {outcome.seconds:.0f}s"
    if outcome.failure:
        f = outcome.failure
        text += f": first failed resource {f['LogicalResourceId']} ({f.get('ResourceType', '?')}): {f.get('ResourceStatusReason', '')}"
    elif outcome.detail:
        text += f": {outcome.detail}"
    return text
