"""The one replacement rule: whether changing a resource can replace it, decided by
its type's CloudFormation registry schema, not by a change set's flags.

  createOnlyProperties             a change replaces the resource ("replace")
  conditionalCreateOnlyProperties  a change may replace it ("replace?")
  anything else                    updated in place

The schemas come from cfn-lint's copy of the registry (data/resource-schemas.json,
written by ci/extract_schemas.py), so no network is needed. Values are compared
resolved, with each side's own parameter values: a Ref or GetAtt that resolves to the
same physical value as a literal is no change, and `!Sub ${Prefix}-x` is a change when
Prefix changes. Conditions (Fn::Equals, Not, And, Or, Condition) are evaluated, so
Fn::If takes its branch and Ref AWS::NoValue drops the property. A value that cannot be
resolved is the same only when it is written the same and every parameter and condition
it reads has the same value on both sides; otherwise the rule cannot say it is
unchanged ("unknown")."""
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


class _NoValue:
    """Ref AWS::NoValue: the property (or list item) is left out."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Resolver:
    """Resolves intrinsic functions to the physical values they have in one stack.

    variables:  parameter values and pseudo parameters (AWS::Region, ...)
    physical:   logical id -> physical id (Ref of a resource)
    types:      logical id -> resource type (for the GetAtt forms known offline)
    exports:    export name -> value (Fn::ImportValue)
    conditions: condition name -> its definition (the template's Conditions)"""
    variables: dict[str, str] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    conditions: dict = field(default_factory=dict)

    def with_parameters(self, parameters: dict[str, str]) -> "Resolver":
        """The same stack with these parameter values (e.g. a change set's own)."""
        return Resolver({**self.variables, **parameters}, dict(self.physical), dict(self.types), dict(self.exports),
                        dict(self.conditions))

    def condition(self, name: str, _seen: tuple[str, ...] = ()) -> bool:
        """A named condition, evaluated with these parameter values; Unresolved when it
        cannot be (an undefined name, a cycle, a function conditions may not use)."""
        if name not in self.conditions:
            raise Unresolved(f"Condition {name} (not defined)")
        if name in _seen:
            raise Unresolved(f"Condition {name} (refers to itself)")
        return self._truth(self.conditions[name], _seen + (name,))

    def _truth(self, node, seen: tuple[str, ...]) -> bool:
        if isinstance(node, bool):
            return node
        if isinstance(node, str) and node.lower() in ("true", "false"):
            return node.lower() == "true"
        if not (isinstance(node, dict) and len(node) == 1):
            raise Unresolved(f"condition {json.dumps(node, sort_keys=True)[:80]}")
        (fn, arg), = node.items()
        if fn == "Condition" and isinstance(arg, str):
            return self.condition(arg, seen)
        if fn == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = (_canonical(self.resolve(a, seen)) for a in arg)
            return left == right
        if fn == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            return not self._truth(arg[0], seen)
        if fn == "Fn::And" and isinstance(arg, list):
            return all([self._truth(a, seen) for a in arg])  # every operand evaluated: an unknown one is unknown
        if fn == "Fn::Or" and isinstance(arg, list):
            return any([self._truth(a, seen) for a in arg])
        raise Unresolved(f"condition function {fn}")

    def ref(self, name: str) -> str:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.variables:
            return self.variables[name]
        if name in self.physical:
            return self.physical[name]
        raise Unresolved(f"Ref {name}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.types.get(logical_id)
        if logical_id in self.physical:
            region, account = self.variables.get("AWS::Region", ""), self.variables.get("AWS::AccountId", "")
            found = attributes.value(kind, self.physical[logical_id], attribute, region, account,
                                     self.variables.get("AWS::Partition") or "aws")
            if found is not None:  # the forms known offline (gate/attributes.py); None where region or account is unknown
                return found
        raise Unresolved(f"GetAtt {logical_id}.{attribute}")

    def resolve(self, value, _seen: tuple[str, ...] = ()):
        """The value with every intrinsic function resolved; NO_VALUE for a value left out."""
        if isinstance(value, list):
            return [v for v in (self.resolve(v, _seen) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::If":
                if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
                    raise Unresolved("Fn::If (malformed)")
                return self.resolve(arg[1] if self.condition(arg[0], _seen) else arg[2], _seen)
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
                return separator.join(str(p) for p in self.resolve(parts, _seen))
            if fn == "Fn::ImportValue":
                name = self.resolve(arg, _seen)
                if name in self.exports:
                    return self.exports[name]
                raise Unresolved(f"ImportValue {name}")
            if fn.startswith("Fn::") or (fn == "Condition" and isinstance(arg, str)):
                raise Unresolved(fn)
        resolved = {k: self.resolve(v, _seen) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def inputs_agree(self, value, other: "Resolver") -> bool | None:
        """Whether every parameter and condition `value` reads has the same value here and
        in `other` (True), differs (False), or cannot be told (None). References to
        resources are not inputs: written the same, they name the same resource."""
        verdict = True
        for kind, name in _inputs(value):
            try:
                if kind == "condition":
                    same = self.condition(name) == other.condition(name)
                elif name in self.types and name not in self.variables:
                    continue  # a resource of the stack
                elif name == "AWS::NoValue":
                    continue
                else:
                    same = self.ref(name) == other.ref(name)
            except Unresolved:
                return None
            if not same:
                verdict = False
        return verdict


def _plain(value):
    return None if value is NO_VALUE else value


def _canonical(value) -> str:
    """How Fn::Equals compares: parameter values are strings, so 1 and "1" are equal."""
    value = _plain(value)
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) or value is None else str(value)


def _inputs(value) -> list[tuple[str, str]]:
    """(kind, name) of what a value reads: ("ref", parameter or logical id), ("condition", name).
    GetAtt reads a resource only, so it is not listed."""
    found: list[tuple[str, str]] = []
    if isinstance(value, list):
        for v in value:
            found += _inputs(v)
        return found
    if not isinstance(value, dict):
        return found
    if len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref" and isinstance(arg, str):
            return [("ref", arg)]
        if fn == "Fn::GetAtt":
            return []
        if fn == "Condition" and isinstance(arg, str):
            return [("condition", arg)]
        if fn == "Fn::If" and isinstance(arg, list) and arg and isinstance(arg[0], str):
            return [("condition", arg[0])] + _inputs(arg[1:])
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
            found += _inputs(list(local.values()) if isinstance(local, dict) else [])
            for name in _SUB_VAR.findall(text if isinstance(text, str) else ""):
                if name not in local and "." not in name:
                    found.append(("ref", name))
            return found
    for v in value.values():
        found += _inputs(v)
    return found


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
    """True/False when established; None when it cannot be. Each side is resolved with
    its own resolver (its own parameter values and conditions). A value that cannot be
    resolved is the same only when written the same and reading the same inputs."""
    try:
        before, after = _plain(old_resolver.resolve(old)), _plain(new_resolver.resolve(new))
        return json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
    except Unresolved:
        pass
    if json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True):
        return True if old_resolver.inputs_agree(old, new_resolver) is True else None
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
    if old is not None and new is not None and same_value(old_props, new_props, old_resolver, new_resolver) is True:
        return Verdict(NONE)  # nothing changes, resolved: no schema needed to say so
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
        UNKNOWN: f"{', '.join(names)} (createOnly) cannot be resolved before the deploy, and is written differently "
                 f"or reads a parameter or condition whose value cannot be compared",
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
    return Resolver(variables=variables, physical=dict(physical or {}), types=types, exports=dict(exports or {}),
                    conditions=dict(template.get("Conditions") or {}))


def exists(resource: dict, resolver: Resolver) -> bool:
    """Whether a template resource is created: its Condition, if any, evaluated with the
    resolver's parameter values (Unresolved when it cannot be)."""
    name = (resource or {}).get("Condition")
    return True if name is None else resolver.condition(name)
