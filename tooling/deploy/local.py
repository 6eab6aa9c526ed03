"""What the local AWS (the emulator) cannot hold, and what it holds only through a
stand-in. It refuses a template with a resource type it lacks up front ("Unrecognized
resource types"), before creating anything; such a stack is skipped on the local AWS
and said to be skipped. The emulator started by this project has stand-ins for the
types it lacks (tooling/aws/standins), so every stack deploys there; what each
stand-in makes real and what not is said wherever a stand-in is used."""
from __future__ import annotations

import functools
import json
import os
from urllib.parse import urlparse

from ..aws import cloudformation as cfn
from ..aws import standins
from .workspace import Workspace


def on_emulator(ws: Workspace) -> bool:
    """Talking to the local AWS: --local, or an endpoint on this machine (the backend
    pipeline's commands, run as its buildspec runs them against the emulator in the tests,
    carry no --local). Only what the emulator demonstrably does not apply is excused by it."""
    host = urlparse(os.environ.get("AWS_ENDPOINT_URL", "")).hostname or ""
    return ws.local or host in ("127.0.0.1", "localhost", "::1")


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
    return _refusal(ws.region_of(key), types)


def stand_ins(ws: Workspace, keys) -> dict[str, list[tuple[str, str]]]:
    """Per stack key: (logical id, type) of its resources that the local AWS provides
    through a stand-in, not through the emulator's own provider."""
    found = {key: standins.stood_in(ws.template(key).get("Resources")) for key in keys}
    return {key: resources for key, resources in found.items() if resources}


def stand_in_legend(found: dict[str, list[tuple[str, str]]]) -> list[str]:
    """What is real and what is not, once per stood-in type."""
    types = sorted({kind for resources in found.values() for _, kind in resources})
    return [f"{kind}: {standins.describe(kind)}" for kind in types]


# Protections the local AWS's CloudFormation does not apply when it creates the
# resource (ministack 1.5.33, measured: a table created with PointInTimeRecoveryEnabled
# and SSEEnabled true reads back PITR DISABLED and no SSEDescription; the DynamoDB API
# itself sets both). The read-back of storage does not compare them on the local AWS,
# and says so; on AWS it does.
NOT_APPLIED_ON_CREATE = frozenset({
    ("AWS::DynamoDB::Table", "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled"),
    ("AWS::DynamoDB::Table", "SSESpecification.SSEEnabled"),
})
