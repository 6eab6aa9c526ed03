"""apply: deploy the changed stacks wave by wave, each through a change set that is
inspected (the stateful gate included) and only then executed.

Stacks of one wave deploy in parallel; the first wave with a failure stops the
run, after every stack of that wave has been seen to its end. After the storage
stack, termination protection and the stack policy are set and read back. Only a
state whose operation succeeded counts as success (never a rollback)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...aws.sam_runner import SamRunner
from ...aws.session import BotoCoreError, ClientError, describe_error
from ...errors import UserError
from ...render import cfn_yaml, naming
from ..gate import changesets, check, inventory
from . import ledger, protection
from .. import interrupt, parameters, stacks, states
from ..progress import Progress
from ..workspace import Workspace

POLL_SECONDS = float(os.environ.get("DEPLOY_POLL_SECONDS", "2"))
STACK_TIMEOUT_SECONDS = float(os.environ.get("DEPLOY_STACK_TIMEOUT", "3600"))

# Results: deployed | unchanged | skipped (the local AWS cannot hold it) | blocked (needs
# a skipped stack) | refused (its change set did not pass inspection) | failed | not-selected
# | interrupted (an interrupt stopped it before its execute; nothing of it runs on)
# | in-progress (executed; CloudFormation was still working on it when the run stopped)
OK_RESULTS = ("deployed", "unchanged", "skipped", "blocked", "not-selected")


@dataclass
class Outcome:
    key: str
    result: str
    status: str | None = None
    detail: str = ""
    failure: dict | None = None
    seconds: float = 0.0
    retained: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: list = field(default_factory=list)  # blocking findings of its change set
    since: object = None  # CloudFormation's timestamp before this run's operation

    @property
    def ok(self) -> bool:
        return self.result in OK_RESULTS

    def as_json(self) -> dict:
        failure = None
        if self.failure:
            failure = {k: self.failure.get(k) for k in ("LogicalResourceId", "ResourceType", "ResourceStatus", "ResourceStatusReason")}
        return {"key": self.key, "result": self.result, "status": self.status, "detail": self.detail, "failure": failure,
                "seconds": round(self.seconds, 1), "retained": self.retained, "notes": self.notes,
                "refused": [f.as_json() for f in self.refused]}


@dataclass
class Options:
    overrides: set[str] = field(default_factory=set)  # override flags given, e.g. {"--allow-orphans"}
    orphans: dict[str, set[str]] = field(default_factory=dict)  # stack key -> logical ids taken over (ImportExistingResources)

    before_wave: object = None  # called before each wave after the first (the lock, once the bucket exists)

    @classmethod
    def given(cls, overrides: set[str], report: check.Report) -> "Options":
        """The run's options from the override flags: --allow-orphans takes over each orphan check found."""
        orphans: dict[str, set[str]] = {}
        if "--allow-orphans" in overrides:
            for item in report.named:
                if item.state == inventory.ORPHAN:
                    orphans.setdefault(item.resource.stack, set()).add(item.resource.logical_id)
        return cls(overrides=overrides, orphans=orphans)


def _latest_event(region: str, name: str, since) -> str:
    events = cfn.stack_events(region, name, since=since, limit=20)
    if not events or events[0]["LogicalResourceId"] == name:
        return ""  # the stack's own line only repeats the status shown beside it
    event = events[0]
    reason = event.get("ResourceStatusReason") or ""
    return f"{event['LogicalResourceId']} {event['ResourceStatus']}{' (' + reason[:80] + ')' if reason else ''}"


def deploy_stack(ws: Workspace, facts: check.StackFacts, exports: dict, progress: Progress, sam: SamRunner, options: Options,
                 outputs: parameters.Outputs | None = None) -> Outcome:
    """One stack to its end. Whatever goes wrong is this stack's failed outcome: an
    error here never abandons the other stacks of the wave."""
    started = time.monotonic()
    try:
        outcome = _deploy_stack(ws, facts, exports, progress, sam, options, outputs or parameters.Outputs(ws))
    except interrupt.Stopped as exc:
        outcome = Outcome(facts.key, "interrupted", detail=f"{exc}; nothing of it was executed")
    except (UserError, ClientError, BotoCoreError) as exc:
        if interrupt.stopped():  # e.g. sam package ended by the same Ctrl-C: not a failure of the stack
            outcome = Outcome(facts.key, "interrupted", detail="stopped by the interrupt before its execute")
        else:
            outcome = Outcome(facts.key, "failed", detail=str(exc) if isinstance(exc, UserError) else describe_error(exc))
    except Exception as exc:  # noqa: BLE001 - reported with the wave, never lost
        outcome = Outcome(facts.key, "failed", detail=f"{type(exc).__name__}: {exc}")
    finally:
        progress.done(facts.key)
    if outcome.status is None:
        try:
            stack = cfn.describe_stack(ws.region_of(facts.key), facts.name)
            outcome.status = stack["StackStatus"] if stack else None
        except (ClientError, BotoCoreError):
            pass
    outcome.seconds = time.monotonic() - started
    return outcome


def _deploy_stack(ws: Workspace, facts: check.StackFacts, exports: dict, progress: Progress, sam: SamRunner, options: Options,
                  outputs: parameters.Outputs) -> Outcome:
    key, name, region = facts.key, facts.name, ws.region_of(facts.key)
    # after the waves before this one: their outputs exist now
    filled = parameters.fill(ws, key, outputs, parameters.deployed_values(cfn.describe_stack(region, name)))
    if filled.missing:
        return Outcome(key, "failed", facts.state.status if facts.stack else None,
                       f"needs {'; '.join(filled.missing)}, which does not exist")
    _, state = stacks.current(region, name)
    if state.action == states.REPLACE:
        progress.say(f"  [{key}] {state.status}: deleting the empty stack its failed create left")
        left = stacks.delete(region, name, STACK_TIMEOUT_SECONDS, POLL_SECONDS)
        if left is not None:
            return Outcome(key, "failed", left["StackStatus"], "the empty stack of a failed create could not be deleted")
        state = states.NO_STACK
    if state.action not in (states.ABSENT, states.UPDATE):
        return Outcome(key, "failed", state.status, f"{state.status}: not a state a deploy can act on")
    exists = state.action == states.UPDATE

    interrupt.checkpoint("preparing its change set")
    progress.update(key, "packaging" if ws.stacks[key].get("sam") else "preparing")
    prepared = changesets.prepare(ws, key, sam, options.orphans.get(key, ()), filled.values)
    if prepared.retained_for_import:
        progress.say(f"  [{key}] taking over {', '.join(prepared.retained_for_import)}: DeletionPolicy RetainExceptOnCreate "
                     f"for this deploy (CloudFormation imports only what it would keep); the next apply restores the render's")
    since = cfn.last_event_time(region, name) if exists else None
    interrupt.checkpoint("creating its change set")
    progress.update(key, "creating change set")
    change_set = changesets.create(ws, prepared, stack_exists=exists, import_existing=bool(options.orphans.get(key)))
    with changesets.Executing(region, change_set) as run:
        old = new = None
        if exists:
            facts.filled = filled
            old, new = check.resolvers(ws, facts, exports)
        inspection = changesets.inspect(ws, key, change_set, facts.deployed_template if exists else None, old, new)
        notes = [n["text"] for n in inspection.notes]
        if inspection.outcome == "no-changes":
            return Outcome(key, "unchanged", state.status, "CloudFormation found nothing to change", notes=notes)
        if inspection.outcome != "ready":
            return Outcome(key, "failed", state.status, f"change set {inspection.outcome}: {inspection.reason}", notes=notes)
        refused = [f for f in inspection.blocking if not (f.override and f.override in options.overrides)]
        if refused:
            return Outcome(key, "refused", state.status, "its change set did not pass inspection; nothing was executed",
                           notes=notes, refused=refused)
        notes += protection.before_execute(ws, key)
        run.execute("executing its change set")

    def watch(stack: dict) -> None:
        progress.update(key, stack["StackStatus"], _latest_event(region, name, since))

    ended = stacks.wait_executed(region, name, since, STACK_TIMEOUT_SECONDS, POLL_SECONDS, on_poll=watch)
    if interrupt.stopped() and ended.status and ended.status.endswith("_IN_PROGRESS"):
        return Outcome(key, "in-progress", ended.status, "CloudFormation goes on with it", notes=notes, since=since)
    if ended.succeeded:
        return Outcome(key, "deployed", ended.status, notes=notes, since=since)
    detail = "" if ended.failure else f"ended {ended.status or 'deleted'}"
    if ended.status and ended.status.endswith("_IN_PROGRESS"):
        detail = f"still {ended.status} after {STACK_TIMEOUT_SECONDS:.0f}s; it goes on in CloudFormation (deploy.py status)"
    return Outcome(key, "failed", ended.status, detail, failure=ended.failure, notes=notes, since=since)


def blocked_by_skipped(skipped: set[str], depends_on: dict[str, list[str]]) -> dict[str, str]:
    """Stacks that cannot deploy because a stack they need was skipped: key -> the skipped one."""
    result: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for key, deps in depends_on.items():
            if key in skipped or key in result:
                continue
            for dep in deps:
                if dep in skipped or dep in result:
                    result[key] = dep if dep in skipped else result[dep]
                    changed = True
                    break
    return result


def run_apply(ws: Workspace, report: check.Report, selected: list[str], progress: Progress, sam: SamRunner,
              options: Options) -> list[Outcome]:
    outcomes: dict[str, Outcome] = {}
    skipped: set[str] = set()
    selected = set(selected)
    outputs = parameters.Outputs(ws)
    waves = [list(w) for w in ws.manifest["waves"]]
    for number, wave in enumerate(waves, start=1):
        if interrupt.stopped():
            for key in wave:
                outcomes[key] = Outcome(key, "not-started" if key in selected else "not-selected", detail="the run was interrupted")
            continue
        if number > 1 and options.before_wave:
            options.before_wave()
        blocked = blocked_by_skipped(skipped, ws.depends_on)
        progress.say(f"wave {number}/{len(waves)}: {', '.join(wave)}")
        todo = []
        for key in wave:
            facts = report.facts.get(key)
            if key not in selected or facts is None:
                outcomes[key] = Outcome(key, "not-selected")
            elif facts.refused_locally:
                outcomes[key] = Outcome(key, "skipped", facts.state.status if facts.stack else None, facts.refused_locally)
                skipped.add(key)
            elif key in blocked:
                outcomes[key] = Outcome(key, "blocked", detail=f"needs {blocked[key]}, which was skipped")
                skipped.add(key)
            elif not facts.target:
                outcomes[key] = Outcome(key, "unchanged", facts.state.status, "template, code, tags and parameters equal what is deployed")
            else:
                todo.append(key)
        if not _run_wave(ws, report, wave, todo, outcomes, progress, sam, options, outputs):
            return [outcomes[k] for k in naming.STACK_KEYS if k in outcomes]
    if interrupt.stopped():
        return [outcomes[k] for k in naming.STACK_KEYS if k in outcomes]
    settle = settling(ws, report, outcomes, outputs)
    if settle:
        progress.say(f"settle: {', '.join(settle)} again, now that what their late parameters come from exists")
        _run_wave(ws, report, settle, settle, outcomes, progress, sam, options, outputs, again=True)
    return [outcomes[k] for k in naming.STACK_KEYS if k in outcomes]


def settling(ws: Workspace, report: check.Report, outcomes: dict[str, Outcome], outputs: parameters.Outputs) -> list[str]:
    """Stacks deployed (or unchanged) whose late parameters now have other values than
    they were deployed with: their sources were created or changed by this run."""
    again = []
    for key, outcome in outcomes.items():
        sources = parameters.late_sources(ws, key)
        if not sources or outcome.result not in ("deployed", "unchanged"):
            continue
        outputs.refresh(sources)
        filled = parameters.fill(ws, key, outputs)
        stack = cfn.describe_stack(ws.region_of(key), ws.stacks[key]["name"]) or {}
        deployed = parameters.deployed_values(stack)
        if any(deployed.get(p) != v for p, v in filled.values.items()):
            facts = report.facts[key]
            facts.stack, facts.state = stack, states.state_of(stack, None)
            facts.deployed_template = cfn_yaml.load(cfn.get_template_body(ws.region_of(key), facts.name))
            again.append(key)
    return again


def _run_wave(ws, report, wave, todo, outcomes, progress, sam, options, outputs, again: bool = False) -> bool:
    """Deploy `todo` in parallel; protect storage; False when the wave failed (the run stops)."""
    if todo:
        exports = {n: e["Value"] for n, e in cfn.list_exports(ws.region).items()}  # earlier waves add some
        outputs.refresh(ws.stacks)
        for outcome in interrupt.parallel(lambda k: deploy_stack(ws, report.facts[k], exports, progress, sam, options, outputs), todo,
                                          on_abandoned=abandoned):
            if again and outcomes.get(outcome.key) and outcome.result == "unchanged":
                outcome.result, outcome.detail = outcomes[outcome.key].result, outcomes[outcome.key].detail
            elif again:
                outcome.detail = (outcome.detail + "; " if outcome.detail else "") + "deployed again with its late parameters"
            outcomes[outcome.key] = outcome
    for key in wave:
        outcome = outcomes[key]
        if key == naming.STORAGE and outcome.result in ("deployed", "unchanged"):
            problem = protection.protect_storage(ws)
            if problem:
                outcome.result, outcome.detail = "failed", f"storage protection: {problem}"
            elif "verified" not in outcome.detail:
                outcome.detail = (outcome.detail + "; " if outcome.detail else "") + "termination protection on, stack policy set (verified)"
        if outcome.result != "not-selected":
            progress.say(f"  [{key}] {describe(outcome)}")
    failed = [outcomes[k] for k in wave if outcomes[k].result in ("failed", "refused")]
    for outcome in failed:
        if outcome.result == "failed":
            outcome.retained = ledger.after_failure(ws, outcome.key, outcome.since)
    return not failed


def abandoned(key: str) -> Outcome:
    """A stack whose call was still in flight when the interrupt's grace ran out."""
    return Outcome(key, "interrupted", detail="a call to AWS was still in flight when the run stopped; "
                                             "where it stands is shown by deploy.py status")


def describe(outcome: Outcome) -> str:
    text = outcome.result
    if outcome.status:
        text += f" ({outcome.status})"
    if outcome.seconds >= 0.5:
        text += f" in {outcome.seconds:.0f}s"
    if outcome.failure:
        f = outcome.failure
        text += f": first failed resource {f['LogicalResourceId']} ({f.get('ResourceType', '?')}): {f.get('ResourceStatusReason', '')}"
    elif outcome.detail:
        text += f": {outcome.detail}"
    return text


def local_note(outcomes: list[Outcome]) -> str | None:
    skipped = [o.key for o in outcomes if o.result in ("skipped", "blocked")]
    if not skipped:
        return None
    return f"skipped on the local AWS: {', '.join(skipped)} (the emulator cannot hold them; deploy them to a real account)"

