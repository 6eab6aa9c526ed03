"""What the local AWS (the emulator) cannot hold. It refuses a template with a
resource type it lacks up front ("Unrecognized resource types"), before creating
anything; such a stack is skipped on the local AWS and said to be skipped."""
from __future__ import annotations

import functools
import json

from ..aws import cloudformation as cfn
from .workspace import Workspace


def unsupported_reason(text: str) -> str | None:
    """The emulator's refusal of resource types it cannot hold, if `text` holds one."""
    for line in text.splitlines():
        if "Unrecognized resource types" in line:
            return "emulator: " + line[line.index("Unrecognized resource types"):].strip()
    return None


@functools.lru_cache(maxsize=None)
def _refusal(region: str, resource_types: tuple[str, ...]) -> str | None:
    # A template of one bare resource per type: the emulator's type check answers it
    # without parsing (and spending seconds of CPU on) the whole rendered template.
    probe = {"AWSTemplateFormatVersion": "2010-09-09",
             "Resources": {f"Probe{i}": {"Type": t} for i, t in enumerate(resource_types)}}
    return unsupported_reason(cfn.validation_error(region, json.dumps(probe)) or "")


def refusal(ws: Workspace, key: str) -> str | None:
    """Why the local AWS cannot hold this stack, or None."""
    template = ws.template(key)
    if template.get("Transform"):
        return None  # expanded server-side; the emulator checks the expanded types itself
    types = tuple(sorted({(r or {}).get("Type", "") for r in (template.get("Resources") or {}).values()}))
    return _refusal(ws.region, types)
