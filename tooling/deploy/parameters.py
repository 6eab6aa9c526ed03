"""Parameters that deploy.py fills from other stacks' outputs (the manifest's
`parameters`, from each template's Metadata.ParameterSources): exports do not cross
regions, and a value known only after a later stack deploys (late) cannot be imported.

A late parameter is filled with what its source says now, or with the template's
default while the source does not exist yet; apply then deploys the stack once more
after the source (the settle wave)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..aws import cloudformation as cfn
from .workspace import Workspace


@dataclass
class Outputs:
    """Each source stack's outputs, read once per run (and again with refresh())."""
    ws: Workspace
    _seen: dict[str, dict[str, str] | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, key: str) -> dict[str, str] | None:
        with self._lock:
            if key not in self._seen:
                stack = cfn.describe_stack(self.ws.region_of(key), self.ws.stacks[key]["name"])
                self._seen[key] = None if stack is None else {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            return self._seen[key]

    def refresh(self, keys) -> None:
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)


@dataclass
class Filled:
    values: dict[str, str]  # parameter -> value to deploy with
    missing: list[str]  # what a parameter that must have a value lacks ("Param: stack output X")
    pending: list[str]  # late parameters whose source does not exist yet (the default is used)


def fill(ws: Workspace, key: str, outputs: Outputs, deployed: dict[str, str] | None = None) -> Filled:
    """The values to deploy `key` with. `deployed`: its parameters as deployed now; a late
    parameter whose source does not exist (yet, or any more) keeps that value, so that a
    stack is not updated twice in one run (once without it, once more in the settle step)."""
    values, missing, pending = {}, [], []
    for parameter, source in sorted((ws.stacks[key].get("parameters") or {}).items()):
        found = outputs.of(source["stack"])
        value = (found or {}).get(source["output"])
        if value is not None:
            values[parameter] = value
        elif source["late"]:
            pending.append(parameter)
            if deployed and parameter in deployed:
                values[parameter] = deployed[parameter]
        else:
            missing.append(f"{parameter}: output {source['output']} of stack {source['stack']}"
                           f"{'' if found is not None else ' (not deployed)'}")
    return Filled(values, missing, pending)


def deployed_values(stack: dict | None) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters", [])}


def late_sources(ws: Workspace, key: str) -> set[str]:
    return {s["stack"] for s in (ws.stacks[key].get("parameters") or {}).values() if s["late"]}
