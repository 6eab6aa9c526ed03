"""The plan file: what `deploy.py plan --out FILE` saves and `deploy.py apply --plan FILE`
executes, exactly. JSON, versioned; docs/deploying.md ("The plan file") describes it.

    {
      "format": "deploy.py plan", "version": 1,
      "created": "2026-12-06T09:00:00+00:00",         # the planner's clock: for people only
      "env": "dev", "account_id": "...", "region": "us-east-1",
      "waves": [["storage"], ...],                     # the manifest's, at plan time
      "overrides": ["--allow-orphans"],                # the override flags the plan was made with
      "kept": true,                                    # its change sets were kept (--out)
      "stacks": [                                      # every stack of the render, in wave order
        {
          "key": "backend", "name": "ai-social-media-dev-backend", "region": "us-east-1",
          "action": "create | update | unchanged | skipped | blocked",
          "reason": "",                                # why, for skipped, blocked or a failed change set
          "state": "UPDATE_COMPLETE",                  # its status when planned (NOT_DEPLOYED: none)
          "planned_stack": {"status": ..., "last_updated": ..., "stack_id": ...} | null,
          "change_set_id": "arn:aws:cloudformation:...:changeSet/deploy-py-.../..." | null,
          "fingerprint": "...",                        # template + parameters + tags + code, as planned
          "render_fingerprint": "...",                 # template + tags + code (no parameters)
          "parameters": {"ServedOrigin": "https://..."},
          "known_after_apply": "why" | null,           # its change set is made when apply reaches it
          "changes": [{"action": "add | modify | replace | replace? | remove | import", "logical_id": ...,
                       "type": ..., "replacement": "", "causes": [...], "properties": [...]}],
          "follows": [{"action": ..., "logical_id": ..., "type": ..., "caused_by": [...]}],
          "counts": {"modify": 1}, "schema_notes": [{"text": ...}],
          "findings": [{"kind": ..., "stack": ..., "subject": ..., "detail": ..., "fix": ...,
                        "blocking": true, "override": ...}]
        }
      ],
      "findings": [...], "notes": ["..."]              # every finding and note of the plan's check
    }

A stack with a change_set_id is executed from that change set and no other; a stack
marked known_after_apply gets its change set when apply reaches its wave (its inputs
come from a stack this plan changes); every other stack has nothing to do."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError

FORMAT = "deploy.py plan"
VERSION = 1
ACTIONS = ("create", "update", "unchanged", "skipped", "blocked")
_TOP = {"format": str, "version": int, "env": str, "account_id": str, "region": str, "waves": list, "overrides": list,
        "stacks": list, "findings": list}
_STACK = {"key": str, "name": str, "region": str, "action": str, "change_set_id": (str, type(None)),
          "render_fingerprint": str, "parameters": dict, "known_after_apply": (str, type(None)),
          "planned_stack": (dict, type(None)), "changes": list}


def load(path: str | Path) -> dict:
    """The plan, or a one-line refusal (status 2) naming the file and what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--plan {path}: no such file") from None
    except OSError as exc:
        raise UserError(f"--plan {path}: cannot be read ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--plan {path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"--plan {path}: not a deploy.py plan (no \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise UserError(f"--plan {path}: plan format version {doc.get('version')!r}; this deploy.py reads version {VERSION}")
    problem = _shape_problem(doc)
    if problem:
        raise UserError(f"--plan {path}: {problem}")
    return doc


def _shape_problem(doc: dict) -> str | None:
    for key, kind in _TOP.items():
        if not isinstance(doc.get(key), kind):
            return f"field {key!r} is missing or not a {kind.__name__}"
    seen = set()
    for number, entry in enumerate(doc["stacks"], start=1):
        if not isinstance(entry, dict):
            return f"stacks[{number}] is not an object"
        for key, kind in _STACK.items():
            if key not in entry or not isinstance(entry[key], kind):
                return f"stacks[{number}] ({entry.get('key', '?')}): field {key!r} is missing or of the wrong type"
        if entry["action"] not in ACTIONS:
            return f"stack {entry['key']}: action {entry['action']!r} is not one of {', '.join(ACTIONS)}"
        if entry["change_set_id"] and entry["known_after_apply"]:
            return f"stack {entry['key']}: has a change set and is known only after apply"
        if entry["change_set_id"] and not isinstance(entry.get("fingerprint"), str):
            return f"stack {entry['key']}: has a change set but no fingerprint"
        if entry["key"] in seen:
            return f"stack {entry['key']} is listed twice"
        seen.add(entry["key"])
    if doc.get("kept") is not True and any(e["change_set_id"] for e in doc["stacks"]):
        return "it names change sets but was made without --out (they were deleted): make it with plan --out"
    return None


def write(path: str | Path, doc: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def planned_change_sets(doc: dict) -> dict[str, str]:
    """stack key -> the change set apply executes for it."""
    return {e["key"]: e["change_set_id"] for e in doc["stacks"] if e["change_set_id"]}


def known_after_apply(doc: dict) -> dict[str, str]:
    """stack key -> why its change set is made only when apply reaches it."""
    return {e["key"]: e["known_after_apply"] for e in doc["stacks"] if e["known_after_apply"]}


def has_changes(doc: dict) -> bool:
    return bool(planned_change_sets(doc) or known_after_apply(doc))


def snapshot(stack: dict | None) -> dict | None:
    """What apply compares to tell whether a stack changed since the plan: its status, the
    time of its last operation (CloudFormation's clock) and its id."""
    if stack is None:
        return None
    return {"status": stack["StackStatus"], "last_updated": str(stack.get("LastUpdatedTime") or stack.get("CreationTime") or ""),
            "stack_id": stack.get("StackId", "")}
