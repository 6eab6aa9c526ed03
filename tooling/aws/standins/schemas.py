"""The CloudFormation registry schemas of the stand-in types, read from the pinned
cfn-lint (which ships every type's schema), and the validation CloudFormation does
against them before a provider runs: required properties, types, enums, patterns,
lengths, no unknown and no read-only property. Like CloudFormation, a template's
string "true" or "12" is taken as the boolean or number the schema asks for.

Runs in the emulator's Python (jsonschema is pinned there, see ci/requirements/ministack.in)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from ...paths import TOOLS

REGION = "us-east-1"  # the region with the most types; these types' schemas do not differ by region


def schema_dir() -> Path:
    found = sorted((TOOLS / "cfn-lint").glob("lib/python3*/site-packages/cfnlint/data/schemas"))
    if not found:
        raise RuntimeError(f"the registry schemas are read from cfn-lint: {TOOLS / 'cfn-lint'} is not installed (run ./ci/setup.sh)")
    return found[-1]


@functools.lru_cache(maxsize=None)
def load(type_name: str) -> dict:
    base = schema_dir()
    digest = json.loads((base / "providers" / f"{REGION}.json").read_text())[type_name]
    schema = json.loads((base / "resources" / f"{digest}.json").read_text())
    if schema.get("typeName") != type_name:
        raise RuntimeError(f"cfn-lint's schema for {type_name} names {schema.get('typeName')}")
    return schema


def _resolve(schema: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        target = schema
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _types(node: dict) -> set[str]:
    kind = node.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else set()


def coerce(schema: dict, value, node: dict | None = None):
    """The value as CloudFormation hands it to a provider: strings turned into the
    booleans and numbers the schema declares (a Ref or a parameter is always a string)."""
    node = _resolve(schema, schema if node is None else node)
    types = _types(node)
    if isinstance(value, str) and "string" not in types:
        if "boolean" in types and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if "integer" in types and value.lstrip("-").isdigit():
            return int(value)
        if "number" in types:
            try:
                return float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                return value
        return value
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        return {key: coerce(schema, item, properties[key]) if key in properties else item for key, item in value.items()}
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [coerce(schema, item, node["items"]) for item in value]
    return value


def errors(type_name: str, properties: dict) -> list[str]:
    """What CloudFormation would refuse in these properties, one line each ([] when valid)."""
    from jsonschema import Draft7Validator

    schema = load(type_name)
    problems = []
    read_only = {p.split("/")[-1] for p in schema.get("readOnlyProperties", []) if p.count("/") == 2}
    for name in sorted(read_only & set(properties)):
        problems.append(f"#/{name}: is read-only (set by the service, not by the template)")
    document = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "id")}
    validator = Draft7Validator(document)
    for error in sorted(validator.iter_errors(coerce(schema, properties)), key=lambda e: list(map(str, e.absolute_path))):
        path = "/".join(str(p) for p in error.absolute_path)
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        problems.append(f"#/{path}: {message}")
    return problems
