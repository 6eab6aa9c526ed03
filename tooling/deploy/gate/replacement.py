"""The one replacement rule: whether changing a resource can replace it, decided by
its type's CloudFormation registry schema, not by a change set's flags.

  createOnlyProperties             a change replaces the resource ("replace")
  conditionalCreateOnlyProperties  a change may replace it ("replace?")
  anything else                    updated in place

The schemas come from cfn-lint's copy of the registry (data/resource-schemas.json,
written by ci/extract_schemas.py), so no network is needed. Values are compared
resolved: a Ref or GetAtt that resolves to the same physical value as a literal is
no change; a value that cannot be resolved is compared as written, and if it
differs that way, the rule cannot say it is unchanged ("unknown")."""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import attributes

SCHEMAS_FILE = Path(__file__).resolve().parent.parent / "data" / "resource-schemas.json"

NONE, MAY, ALWAYS, UNKNOWN = "none", "conditional", "always", "unknown"
_RANK = {NONE: 0, MAY: 1, UNKNOWN: 2, ALWAYS: 3}


@functools.lru_cache(maxsize=1)
def schemas() -> dict[str, dict]:
    return json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))["types"]


class Unresolved(Exception):
    """A value whose physical form is not known before the deploy."""


_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Resolver:
    """Resolves intrinsic functions to the physical values they have in one stack.

    variables:  parameter values and pseudo parameters (AWS::Region, ...)
    physical:   logical id -> physical id (Ref of a resource)
    types:      logical id -> resource type (for the GetAtt forms known offline)
    exports:    export name -> value (Fn::ImportValue)"""
    variables: dict[str, str] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)

    def ref(self, name: str) -> str:
        if name in self.variables:
            return self.variables[name]
        if name in self.physical:
            return self.physical[name]
        raise Unresolved(f"Ref {name}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.types.get(logical_id)
        if logical_id in self.physical:
            found = attributes.value(kind, self.physical[logical_id], attribute, self.variables.get("AWS::Region", ""),
                                     self.variables.get("AWS::AccountId", ""), self.variables.get("AWS::Partition", "aws"))
            if found is not None:
                return found
        raise Unresolved(f"GetAtt {logical_id}.{attribute}")

    def resolve(self, value):
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(target, attribute)
            if fn == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                scope = {k: self.resolve(v) for k, v in local.items()}

                def substitute(match):
                    name = match.group(1)
                    if name in scope:
                        return str(scope[name])
                    if "." in name:
                        return str(self.get_att(*name.split(".", 1)))
                    return str(self.ref(name))
                # ${!Literal} is CloudFormation's escape for a literal ${Literal}
                return _SUB_VAR.sub(substitute, text).replace("${!", "${")
            if fn == "Fn::Join":
                separator, parts = arg
                return separator.join(str(p) for p in self.resolve(parts))
            if fn == "Fn::ImportValue":
                name = self.resolve(arg)
                if name in self.exports:
                    return self.exports[name]
                raise Unresolved(f"ImportValue {name}")
            if fn.startswith("Fn::") or fn == "Condition":
                raise Unresolved(fn)
        return {k: self.resolve(v) for k, v in value.items()}


def _at(properties: dict, pointer: str):
    """The value at a schema pointer such as /properties/KeySchema (None if absent).
    A pointer into a list (/properties/A/*/B) is taken at its list: the whole list compares."""
    node = properties
    for part in pointer.split("/")[2:]:
        if part == "*" or not isinstance(node, dict) or _is_intrinsic(node):
            break  # a list, or an intrinsic (Fn::If, Ref, ...): compared whole
        node = node.get(part)
        if node is None:
            return None
    return node


def _is_intrinsic(node) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in ("Ref", "Condition") or (
        isinstance(node, dict) and len(node) == 1 and next(iter(node)).startswith("Fn::"))


def same_value(old, new, old_resolver: Resolver, new_resolver: Resolver) -> bool | None:
    """True/False when established; None when it cannot be (unresolved and written differently)."""
    if json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True):
        return True
    try:
        return json.dumps(old_resolver.resolve(old), sort_keys=True) == json.dumps(new_resolver.resolve(new), sort_keys=True)
    except Unresolved:
        return None


@dataclass(frozen=True)
class Verdict:
    replacement: str  # none | conditional | always | unknown
    properties: tuple[str, ...] = ()  # the properties that decide it
    reason: str = ""

    @property
    def label(self) -> str:
        return {NONE: "modify", MAY: "replace?", ALWAYS: "replace", UNKNOWN: "replace (unknown)"}[self.replacement]


def verdict(resource_type: str, old: dict | None, new: dict | None,
            old_resolver: Resolver | None = None, new_resolver: Resolver | None = None) -> Verdict:
    """Whether changing the resource from `old` to `new` (template resource
    definitions) can replace it, by its type's schema."""
    old_resolver = old_resolver or Resolver()
    new_resolver = new_resolver or Resolver()
    if old is not None and new is not None and old.get("Type") != new.get("Type"):
        return Verdict(ALWAYS, ("Type",), f"the type changes from {old.get('Type')} to {new.get('Type')}")
    old_props = (old or {}).get("Properties") or {}
    new_props = (new or {}).get("Properties") or {}
    if old is not None and new is not None and json.dumps(old_props, sort_keys=True) == json.dumps(new_props, sort_keys=True):
        return Verdict(NONE)  # nothing changes: no schema needed to say so
    schema = schemas().get(resource_type)
    if schema is None:
        return Verdict(UNKNOWN, (), f"no registry schema for {resource_type}")
    found: dict[str, str] = {}
    for pointers, kind in ((schema["createOnly"], ALWAYS), (schema["conditionalCreateOnly"], MAY)):
        for pointer in pointers:
            name = "/".join(pointer.split("/")[2:]).replace("/*", "")
            same = same_value(_at(old_props, pointer), _at(new_props, pointer), old_resolver, new_resolver)
            if same is True:
                continue
            this = kind if same is False else UNKNOWN
            if _RANK[this] > _RANK.get(found.get(name, NONE), 0):
                found[name] = this
    if not found:
        return Verdict(NONE)
    worst = max(found.values(), key=_RANK.get)
    names = tuple(sorted(n for n, k in found.items() if k == worst))
    reason = {
        ALWAYS: f"{', '.join(names)} cannot change without a new resource (createOnly in the {resource_type} schema)",
        MAY: f"{', '.join(names)} may need a new resource when changed (conditionalCreateOnly in the {resource_type} schema)",
        UNKNOWN: f"{', '.join(names)} (createOnly) is written differently and cannot be resolved before the deploy",
    }[worst]
    return Verdict(worst, names, reason)


def resolver_for(template: dict, stack_name: str, account_id: str, region: str, parameters: dict[str, str] | None = None,
                 physical: dict[str, str] | None = None, exports: dict[str, str] | None = None) -> Resolver:
    """A resolver for one stack's template: parameter defaults (overridden by the
    deployed values), pseudo parameters, and what is known of its resources."""
    variables = {"AWS::StackName": stack_name, "AWS::AccountId": account_id, "AWS::Region": region,
                 "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
    for name, spec in (template.get("Parameters") or {}).items():
        if isinstance(spec, dict) and "Default" in spec:
            variables[name] = str(spec["Default"])
    variables.update(parameters or {})
    types = {lid: (r or {}).get("Type", "") for lid, r in (template.get("Resources") or {}).items()}
    return Resolver(variables=variables, physical=dict(physical or {}), types=types, exports=dict(exports or {}))
