"""destroy: delete the stateless stacks in reverse wave order; never the storage
stack unless asked and already unprotected; never empties a bucket."""
from __future__ import annotations

from ...render import naming
from . import ledger
from .. import interrupt, stacks, states
from ..workspace import Workspace

TIMEOUT_SECONDS = 3600


def delete_one(ws: Workspace, key: str, poll: float) -> tuple[str, str]:
    name, region = ws.stacks[key]["name"], ws.region_of(key)
    stack, state = stacks.current(region, name)
    if stack is None:
        return key, "absent"
    if state.action == states.BUSY:
        return key, f"{state.status}: another operation is running; not deleted"
    try:
        left = stacks.delete(region, name, TIMEOUT_SECONDS, poll)
    except interrupt.Stopped:
        return key, "interrupted: not deleted"
    if left is None:
        return key, "deleted"
    if interrupt.stopped() and left["StackStatus"].endswith("_IN_PROGRESS"):
        return key, f"in-progress: {left['StackStatus']} (CloudFormation goes on with it)"
    return key, f"{left['StackStatus']}: {left.get('StackStatusReason', '')}"


def run_destroy(ws: Workspace, include_storage: bool, log, poll: float = 2.0) -> tuple[dict[str, str], list[dict]]:
    """Results per stack key, and the ledger of what was left behind."""
    keys = [k for k in ws.stacks if k != naming.STORAGE or include_storage]
    before = ledger.snapshot(ws, keys)  # DeletionPolicy as deployed, read before anything goes
    results: dict[str, str] = {}
    for wave in reversed(ws.manifest["waves"]):
        todo = [k for k in wave if k in keys]
        if not todo or interrupt.stopped():
            continue
        log(f"destroy: {', '.join(todo)}")
        for key, result in interrupt.parallel(lambda k: delete_one(ws, k, poll), todo,
                                              on_abandoned=lambda k: (k, "interrupted: a call was still in flight")):
            results[key] = result
            log(f"  [{key}] {result}")
        if any(r not in ("deleted", "absent") for r in results.values()):
            break
    if not include_storage:
        log(f"destroy: kept {ws.stacks[naming.STORAGE]['name']} (storage is never destroyed without --include-storage)")
    retained = ledger.left_behind(ws, before, deleted=[k for k, r in results.items() if r == "deleted"])
    return results, retained
