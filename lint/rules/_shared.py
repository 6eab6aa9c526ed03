"""What the project's cfn-lint rules share: plain functions over the template
dict cfn-lint hands a rule (intrinsics in long form, SAM not transformed).

No cfnlint import here, so the project's own environment can test these
functions directly. cfn-lint loads only files that start with a letter or a
digit, so this module is never taken for a rule file itself."""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

TYPES_FILE = Path(__file__).resolve().parent.parent / "stateful-types.json"
STATEFUL_TYPES = frozenset(json.loads(TYPES_FILE.read_text(encoding="utf-8"))["types"])

STATEFUL, STATELESS = "stateful", "stateless"
ROLES = (STATEFUL, STATELESS)

# A value flattens to text in which every intrinsic that is not plain text
# becomes one marker character (Unicode private use, never in a real template),
# so a pattern can ask what stands at a given place: a literal, an import, ...
IMPORT = "\ue000"     # Fn::ImportValue
RESOURCE = "\ue001"   # Ref or GetAtt of a resource of this template
PARAMETER = "\ue002"  # Ref of a parameter
PSEUDO = "\ue003"     # AWS::StackName, AWS::Region, ...
OTHER = "\ue004"      # anything else that is not literal text
MARKERS = IMPORT + RESOURCE + PARAMETER + PSEUDO + OTHER
MARKER_NAMES = {IMPORT: "an import", RESOURCE: "a resource", PARAMETER: "a parameter", PSEUDO: "a pseudo parameter", OTHER: "a computed value"}

_MAX_VARIANTS = 32  # Fn::If branches multiply; a real template stays far below this
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def stack_role(template: dict):
    """The raw Metadata.StackRole of a template (None when absent)."""
    metadata = template.get("Metadata")
    return metadata.get("StackRole") if isinstance(metadata, dict) else None


def resources(template: dict, types=None):
    """(logical id, resource) for every well-formed resource, optionally of the given types."""
    found = template.get("Resources")
    if not isinstance(found, dict):
        return
    for logical_id, resource in found.items():
        if isinstance(resource, dict) and (types is None or resource.get("Type") in types):
            yield logical_id, resource


def properties(resource: dict) -> dict:
    props = resource.get("Properties")
    return props if isinstance(props, dict) else {}


def intrinsic(value):
    """(function name, argument) when value is an intrinsic function, else None."""
    if isinstance(value, dict) and len(value) == 1:
        (name, argument), = value.items()
        if name == "Ref" or name.startswith("Fn::") or name == "Condition":
            return name, argument
    return None


def contains(value, function: str) -> bool:
    """Whether the intrinsic `function` appears anywhere inside value."""
    if isinstance(value, dict):
        return function in value or any(contains(v, function) for v in value.values())
    if isinstance(value, list):
        return any(contains(v, function) for v in value)
    return False


def is_true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _name_marker(name: str, template: dict) -> str:
    if not isinstance(name, str):
        return OTHER
    if name.startswith("AWS::"):
        return PSEUDO
    if name in (template.get("Parameters") or {}):
        return PARAMETER
    if name.split(".", 1)[0] in (template.get("Resources") or {}):
        return RESOURCE
    return OTHER


def variants(value, template: dict) -> list:
    """Every text `value` can evaluate to, intrinsics replaced by markers.

    Fn::If gives one variant per branch; a branch that is AWS::NoValue gives
    None (the property is then absent)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (int, float)):
        return [str(value)]
    call = intrinsic(value)
    if call is None:
        return [OTHER]
    name, argument = call
    if name == "Ref":
        return [None] if argument == "AWS::NoValue" else [_name_marker(argument, template)]
    if name == "Fn::ImportValue":
        return [IMPORT]
    if name == "Fn::GetAtt":
        return [RESOURCE]
    if name == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        return (variants(argument[1], template) + variants(argument[2], template))[:_MAX_VARIANTS]
    if name == "Fn::Sub":
        return _sub_variants(argument, template)
    if name == "Fn::Join" and isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], list):
        separator = argument[0] if isinstance(argument[0], str) else ""
        parts = [[p for p in variants(part, template) if p is not None] or [""] for part in argument[1]]
        return [separator.join(combination) for combination in _product(parts)]
    return [IMPORT if contains(argument, "Fn::ImportValue") else OTHER]


def _sub_variants(argument, template: dict) -> list:
    if isinstance(argument, str):
        text, local = argument, {}
    elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str) and isinstance(argument[1], dict):
        text, local = argument
    else:
        return [OTHER]
    pieces: list[list[str]] = []
    position = 0
    for match in _SUB_VARIABLE.finditer(text):
        pieces.append([text[position:match.start()]])
        variable = match.group(1)
        if variable.startswith("!"):  # ${!Name} is the literal text ${Name}
            pieces.append(["${" + variable[1:] + "}"])
        elif variable in local:
            pieces.append([v for v in variants(local[variable], template) if v is not None] or [""])
        else:
            pieces.append([_name_marker(variable, template)])
        position = match.end()
    pieces.append([text[position:]])
    return ["".join(combination) for combination in _product(pieces)]


def _product(pieces: list[list[str]]) -> list[tuple[str, ...]]:
    return [tuple(c) for c in itertools.islice(itertools.product(*pieces), _MAX_VARIANTS)]


def describe(text: str) -> str:
    """A variant made readable for a message: markers shown as <import>, ..."""
    for marker, label in ((IMPORT, "<import>"), (RESOURCE, "<resource>"), (PARAMETER, "<parameter>"), (PSEUDO, "<pseudo>"), (OTHER, "<computed>")):
        text = text.replace(marker, label)
    return text


def walk(node, path: list):
    """(path, node) for node and everything inside it, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, path + [key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, path + [index])
