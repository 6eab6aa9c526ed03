"""Which resource types are stateful. The list is data (lint/stateful-types.json)
so that render.py and the cfn-lint rules, which run in different environments,
read one and the same list."""
from __future__ import annotations

import json

from ..paths import ROOT

TYPES_FILE = ROOT / "lint" / "stateful-types.json"
STATEFUL_TYPES = frozenset(json.loads(TYPES_FILE.read_text())["types"])


def stateful_resources(template: dict) -> dict[str, str]:
    """logical id -> type, for every stateful resource of a template."""
    return {
        logical_id: resource.get("Type")
        for logical_id, resource in (template.get("Resources") or {}).items()
        if isinstance(resource, dict) and resource.get("Type") in STATEFUL_TYPES
    }
