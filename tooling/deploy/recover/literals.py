"""The literal physical value a reference to a bucket or the table stands for, as AWS
documents it, and the rewrite of a template's references into those values: a resource
that leaves a template (migrate's removal) or stands in one without its neighbours
(adopt's import) must not refer to what is not there."""
from __future__ import annotations

import re

from ..gate import attributes

# ${Name} or ${Name.Attribute} in Fn::Sub (${!Literal} is CloudFormation's escape for a literal)
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Unmovable(Exception):
    """A reference with no literal form known in advance: nothing is changed."""


def literal(resource_type: str, name: str, attribute: str | None, region: str, account_id: str) -> str:
    """The physical value of Ref (attribute None) or GetAtt of a bucket or table, as AWS documents them."""
    if attribute is None:
        return name
    found = attributes.value(resource_type, name, attribute, region, account_id)
    if found is None:
        raise Unmovable(f"GetAtt {attribute} of {resource_type} {name} has no literal form known before the move")
    return found


def rewrite(value, targets: dict[str, tuple[str, str]], region: str, account_id: str, keep_unknown: bool = False):
    """`value` with every Ref, GetAtt and ${...} of Sub that names one of `targets` (logical id
    -> (type, physical name)) replaced by its literal value. An attribute with no literal
    form raises Unmovable, or with keep_unknown stays as written."""
    if isinstance(value, list):
        return [rewrite(v, targets, region, account_id, keep_unknown) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in targets:
        kind, name = targets[value["Ref"]]
        return literal(kind, name, None, region, account_id)
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        target, attribute = (target[0], target[1]) if isinstance(target, list) else str(target).split(".", 1)
        if target in targets:
            kind, name = targets[target]
            try:
                return literal(kind, name, attribute, region, account_id)
            except Unmovable:
                if not keep_unknown:
                    raise
    if set(value) == {"Fn::Sub"}:
        text, local = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        for lid, (kind, name) in targets.items():
            text = text.replace("${" + lid + "}", literal(kind, name, None, region, account_id))
            for attribute in ("Arn", "DomainName", "RegionalDomainName", "DualStackDomainName", "KeyId"):
                if "${" + f"{lid}.{attribute}" + "}" in text:
                    text = text.replace("${" + f"{lid}.{attribute}" + "}", literal(kind, name, attribute, region, account_id))
        local = rewrite(local, targets, region, account_id, keep_unknown)
        return {"Fn::Sub": text if not local else [text, local]}
    return {k: rewrite(v, targets, region, account_id, keep_unknown) for k, v in value.items()}
