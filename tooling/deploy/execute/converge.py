"""What a run does first, so that a plain apply after any interruption finishes the job:

- stacks CloudFormation is still working on (an earlier run was interrupted, or
  someone else's operation): wait for them, bounded, a line per change of state; or,
  with --no-wait, refuse with the busy status;
- change sets this tool made and never executed (a run killed between creating and
  executing one): delete them, saying so. Only while holding the environment's lock,
  so that a change set of a run in progress is never taken for a stale one. Change
  sets of check and plan (inspected, never executed) count as stale after an hour;
  change sets not made by this tool are left alone.

Whatever was interrupted is then just the state apply starts from: check sees the
stacks as they are, and apply deploys what still differs."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from ...aws import cloudformation as cfn
from ...errors import UserError
from .. import interrupt, stacks, states
from ..workspace import Workspace
from .lock import BUSY

WAIT_SECONDS = 3600
OWN_CHANGE_SET = re.compile(rf"^{re.escape(cfn.CHANGE_SET_PREFIX)}[0-9a-f]{{32}}$")
INSPECTED_CHANGE_SET = re.compile(rf"^{re.escape(cfn.CHANGE_SET_PREFIX + cfn.INSPECT_PREFIX)}[0-9a-f]{{32}}$")
INSPECTED_STALE_AFTER = timedelta(hours=1)
NEVER_EXECUTED = ("AVAILABLE", "UNAVAILABLE")


def stale_change_sets(summaries: list[dict], now: datetime) -> list[dict]:
    """This tool's change sets that were never executed and belong to no run in progress."""
    stale = []
    for summary in summaries:
        name = summary.get("ChangeSetName", "")
        if summary.get("ExecutionStatus") not in NEVER_EXECUTED and summary.get("Status") != "FAILED":
            continue
        if OWN_CHANGE_SET.match(name):
            stale.append(summary)
        elif INSPECTED_CHANGE_SET.match(name):
            created = summary.get("CreationTime")
            if created is not None and now - created > INSPECTED_STALE_AFTER:
                stale.append(summary)
    return stale


def wait_for_busy(ws: Workspace, keys, log, wait: bool, poll: float, timeout: float = WAIT_SECONDS) -> None:
    """Wait until none of the stacks is in progress; refuse (busy status) with wait=False."""
    for key in keys:
        name, region = ws.stacks[key]["name"], ws.region_of(key)
        stack, state = stacks.current(region, name)
        if state.action != states.BUSY:
            continue
        if not wait:
            raise UserError(f"busy: {key} ({name}) is {state.status}: CloudFormation is still working on it; "
                            f"try again when it ends, or run without --no-wait to wait for it", status=BUSY)
        log(f"converge: {key} is {state.status}; waiting for CloudFormation (up to {timeout:.0f}s)")
        started = time.monotonic()
        last = state.status

        def seen(described, key=key):
            nonlocal last
            if described["StackStatus"] != last:
                last = described["StackStatus"]
                log(f"  [{key}] {last}")

        final = cfn.wait_stack(region, name, timeout, poll, on_poll=seen, stop=interrupt.STOP)
        if interrupt.stopped():
            raise interrupt.Stopped(f"interrupted while waiting for {key}")
        status = final["StackStatus"] if final else "gone"
        if status.endswith("_IN_PROGRESS"):
            raise UserError(f"busy: {key} ({name}) is still {status} after {timeout:.0f}s; try again later", status=BUSY)
        log(f"  [{key}] {status} after {time.monotonic() - started:.0f}s")


def delete_stale_change_sets(ws: Workspace, keys, log) -> list[str]:
    """Delete this tool's stale change sets on the stacks; their names."""
    now = datetime.now(timezone.utc)
    deleted = []

    def one(key):
        region, name = ws.region_of(key), ws.stacks[key]["name"]
        found = []
        for summary in stale_change_sets(cfn.list_change_sets(region, name), now):
            interrupt.checkpoint("deleting stale change sets")
            cfn.delete_change_set(region, summary["ChangeSetId"])
            found.append((key, summary))
        return found

    for found in interrupt.parallel(one, list(keys), on_abandoned=lambda k: []):
        for key, summary in found:
            created = summary.get("CreationTime")
            log(f"converge: deleted change set {summary['ChangeSetName']} of {key}, created "
                f"{created.strftime('%Y-%m-%d %H:%M:%S') if created else 'earlier'} by a run that never executed it")
            deleted.append(summary["ChangeSetName"])
    return deleted


def in_progress(ws: Workspace) -> list[tuple[str, str, str]]:
    """(key, name, status) of the environment's stacks CloudFormation is working on now."""
    def one(key):
        stack = cfn.describe_stack(ws.region_of(key), ws.stacks[key]["name"])
        return key, ws.stacks[key]["name"], stack["StackStatus"] if stack else "NOT_DEPLOYED"

    rows = interrupt.parallel(one, list(ws.stacks), on_abandoned=lambda k: (k, ws.stacks[k]["name"], "UNKNOWN (no answer in time)"))
    return [row for row in rows if (row[2].endswith("_IN_PROGRESS") and row[2] != "REVIEW_IN_PROGRESS")
            or row[2].startswith("UNKNOWN")]


class Session:
    """What a command that changes stacks holds while it runs: the environment's lock
    (when the bucket exists) and the knowledge that stale change sets are cleaned."""

    def __init__(self, ws: Workspace, command: str, log, wait: bool, poll: float):
        from .lock import Lock

        self.ws, self.log, self.wait, self.poll = ws, log, wait, poll
        self.lock = Lock(ws, command, log)
        self.cleaned = False

    def start(self, keys) -> "Session":
        """Lock, wait for stacks in progress, delete stale change sets (only under the lock)."""
        interrupt.checkpoint("taking the deploy lock")
        if not self.lock.acquire(self.wait):
            self.log("lock: none yet: the storage stack's artifacts bucket, which holds it, does not exist "
                     "(first deploy); it is taken once storage has created it")
        wait_for_busy(self.ws, keys, self.log, self.wait, self.poll)
        self.clean()
        return self

    def clean(self) -> None:
        if self.lock.held and not self.cleaned:
            delete_stale_change_sets(self.ws, self.ws.stacks, self.log)
            self.cleaned = True

    def retry_lock(self) -> None:
        """Between waves of a first deploy: take the lock once the bucket exists."""
        if not self.lock.held and self.lock.acquire(self.wait):
            self.log("lock: taken now that the storage stack's artifacts bucket exists")
            self.clean()

    def end(self) -> None:
        self.lock.release()
