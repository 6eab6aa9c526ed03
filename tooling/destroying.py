"""destroy: delete the stateless stacks in reverse wave order; never the storage
stack unless asked and already unprotected; never empties a bucket."""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from . import aws, naming
from .workspace import Workspace


def delete_one(ws: Workspace, key: str) -> tuple[str, str]:
    name = ws.stacks[key]["name"]
    if aws.describe_stack(ws.region, name) is None:
        return key, "absent"
    aws.delete_stack(ws.region, name)
    left = aws.wait_deleted(ws.region, name)
    if left is None:
        return key, "deleted"
    return key, f"{left['StackStatus']}: {left.get('StackStatusReason', '')}"


def run_destroy(ws: Workspace, include_storage: bool, log, as_json: bool) -> int:
    from . import ledger

    before = ledger.snapshot(ws)  # what each stack holds, to name what is left behind
    results: dict[str, str] = {}
    for wave in reversed(ws.manifest["waves"]):
        keys = [k for k in wave if k != naming.STORAGE or include_storage]
        if not keys:
            continue
        log(f"destroy: {', '.join(keys)}")
        with ThreadPoolExecutor(max_workers=len(keys)) as pool:
            for key, result in pool.map(lambda k: delete_one(ws, k), keys):
                results[key] = result
                log(f"  [{key}] {result}")
        if any(r not in ("deleted", "absent") for r in results.values()):
            break
    if not include_storage:
        log(f"destroy: kept {ws.stacks[naming.STORAGE]['name']} (storage is never destroyed without --include-storage)")
    retained = ledger.left_behind(ws, before, deleted=[k for k, r in results.items() if r == "deleted"])
    ledger.print_ledger(retained, log)
    failed = [k for k, r in results.items() if r not in ("deleted", "absent")]
    if as_json:
        print(json.dumps({"env": ws.env, "results": results, "retained": retained}, indent=2), file=sys.stdout)
    return 1 if failed else 0
