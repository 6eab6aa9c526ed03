"""A rename in the storage render: a stateful resource the deployed template holds and
the render does not, and one the render adds that the deployed template does not hold,
of the same type and with the same physical name. Deployed as it is, CloudFormation
would delete the one and create the other under the name still taken (the stack policy
denies the delete; a create under a taken name fails). It is one finding, kind
`rename`, whose fix is `deploy.py rename OLD=NEW`, which moves the resource under its
new logical id without touching it (recover/rename.py).

A pair that also changes a createOnly property (by the one replacement rule) or the
type is not a rename: it is one `stateful-change` finding naming both, and the rename
command refuses it.

Physical name: the type's naming property, resolved (a bucket's BucketName, a table's
TableName). A KMS key has none: it is known by the alias of the same template that
points at it (TargetKeyId: Ref <key>), as the inventory finds it."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ...render import naming, stateful
from . import inventory, replacement
from .findings import Finding, command

# Stateful types whose naming property the inventory does not list (it looks up only
# the types the renders use); a name is enough to pair a type change.
_MORE_NAMES = {"AWS::DynamoDB::GlobalTable": "TableName", "AWS::Serverless::SimpleTable": "TableName",
               "AWS::S3Express::DirectoryBucket": "BucketName"}
KEY, ALIAS = "AWS::KMS::Key", "AWS::KMS::Alias"


def name_property(resource_type: str) -> str | None:
    return inventory.NAME_PROPERTIES.get(resource_type) or _MORE_NAMES.get(resource_type)


@dataclass(frozen=True)
class Pair:
    old: str
    new: str
    old_type: str
    new_type: str
    identity: str  # the physical name both resolve to ("alias/..." for a key)
    physical_id: str = ""  # OLD's physical id in the deployed stack, when known
    problem: str = ""  # why it cannot be renamed safely; "" when it can

    @property
    def safe(self) -> bool:
        return not self.problem

    @property
    def argument(self) -> str:
        return f"{self.old}={self.new}"

    def as_json(self) -> dict:
        return dict(self.__dict__)


def identity(template: dict, logical_id: str, resolver: replacement.Resolver) -> str | None:
    """The physical name a resource of the template resolves to, or None when it has none
    known before the deploy."""
    resources = template.get("Resources") or {}
    resource = resources.get(logical_id) or {}
    kind = resource.get("Type")
    try:
        prop = name_property(kind)
        if prop:
            value = (resource.get("Properties") or {}).get(prop)
            return None if value is None else str(resolver.resolve(value))
        if kind == KEY:
            aliases = sorted(str(resolver.resolve((r.get("Properties") or {}).get("AliasName")))
                             for r in resources.values() if (r or {}).get("Type") == ALIAS
                             and (r.get("Properties") or {}).get("TargetKeyId") == {"Ref": logical_id})
            return aliases[0] if aliases else None
    except replacement.Unresolved:
        return None
    return None


def problem_of(old: dict, new: dict, old_resolver: replacement.Resolver, new_resolver: replacement.Resolver) -> str:
    """Why moving `old` under the new logical id would not leave it as the render defines
    `new` without a new resource; "" when nothing but the logical id changes that way."""
    if old.get("Type") != new.get("Type"):
        return f"its type changes too ({old.get('Type')} -> {new.get('Type')}): that is a new resource, not a rename"
    verdict = replacement.verdict(old["Type"], old, new, old_resolver, new_resolver)
    if verdict.replacement == replacement.NONE:
        return ""
    if verdict.replacement == replacement.UNKNOWN:
        return f"it cannot be established that it is not replaced: {verdict.reason}"
    return f"it also changes {', '.join(verdict.properties)}: {verdict.reason}"


def recognise(deployed: dict, rendered: dict, old_resolver: replacement.Resolver,
              new_resolver: replacement.Resolver) -> list[Pair]:
    """The renames between the deployed storage template and its render: each stateful
    resource removed whose physical name is that of exactly one stateful resource added."""
    old_resources, new_resources = deployed.get("Resources") or {}, rendered.get("Resources") or {}
    removed = [lid for lid in sorted(old_resources) if (old_resources[lid] or {}).get("Type") in stateful.STATEFUL_TYPES
               and lid not in new_resources]
    added: dict[str, list[str]] = {}
    for lid in sorted(new_resources):
        if (new_resources[lid] or {}).get("Type") in stateful.STATEFUL_TYPES and lid not in old_resources:
            name = identity(rendered, lid, new_resolver)
            if name:
                added.setdefault(name, []).append(lid)
    pairs = []
    for lid in removed:
        name = identity(deployed, lid, old_resolver)
        candidates = added.get(name, []) if name else []
        if len(candidates) != 1:
            continue  # nothing, or more than one, takes its name: no rename to recognise
        new_lid = candidates[0]
        old, new = old_resources[lid], new_resources[new_lid]
        pairs.append(Pair(lid, new_lid, old["Type"], new["Type"], name, old_resolver.physical.get(lid, ""),
                          problem_of(old, new, old_resolver, new_resolver)))
    return pairs


def as_deployed(value, pairs: list[Pair]):
    """`value` of the render with every reference to a safe pair's NEW (Ref, GetAtt, Sub)
    written as a reference to its OLD: what refers to a renamed resource (an export's value)
    then compares equal to the deployed value it keeps."""
    names = {p.new: p.old for p in pairs if p.safe}
    if not names:
        return value
    if isinstance(value, list):
        return [as_deployed(v, pairs) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in names:
        return {"Ref": names[value["Ref"]]}
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        if isinstance(target, list) and target and target[0] in names:
            return {"Fn::GetAtt": [names[target[0]], *target[1:]]}
        if isinstance(target, str) and target.split(".", 1)[0] in names:
            head, _, attribute = target.partition(".")
            return {"Fn::GetAtt": f"{names[head]}.{attribute}"}
    if set(value) == {"Fn::Sub"}:
        text, local = (value["Fn::Sub"], None) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        text = _SUB.sub(lambda m: "${" + names.get(m.group(1), m.group(1)) + (m.group(2) or "") + "}", text)
        return {"Fn::Sub": text if local is None else [text, as_deployed(local, pairs)]}
    return {k: as_deployed(v, pairs) for k, v in value.items()}


_SUB = re.compile(r"\$\{([A-Za-z0-9]+)(\.[^}]*)?\}")


def rename_findings(pairs: list[Pair], env: str, local: bool) -> list[Finding]:
    """One finding per pair: `rename` with the command that does it (all the safe pairs in
    one run), or, for a pair that is not only a rename, `stateful-change` with the reason."""
    safe = [p for p in pairs if p.safe]
    fix = command(env, local, "rename", *[p.argument for p in safe]) if safe else ""
    found = []
    for p in pairs:
        subject = f"{p.old_type} {p.old} -> {p.new}"
        if p.safe:
            found.append(Finding("rename", naming.STORAGE, subject,
                                 f"the new render renames {p.old} to {p.new} (same type, same physical resource {p.identity}): "
                                 f"deployed as it is, CloudFormation would delete {p.old} and create {p.new} under a name "
                                 f"still taken (and the deployed stack policy names {p.old}, the render's {p.new}); the rename "
                                 f"moves it under its new logical id, data and settings kept, and sets the render's stack policy",
                                 fix))
        else:
            found.append(Finding("stateful-change", naming.STORAGE, subject,
                                 f"the new render looks like a rename of {p.old} to {p.new} ({p.identity}), but {p.problem}; "
                                 f"deployed, CloudFormation would delete one and create the other, and the rename command refuses it",
                                 f"rename only: define {p.new} as the deployed {p.old} is (logical id aside) and run the rename "
                                 f"check then prints; make the other change separately, as a reviewed operation"))
    return found


POLICY_DIFFERS = "the stack policy differs from storage-stack-policy.json"


def covered(finding: Finding, pairs: list[Pair], policy_explained: bool = False) -> bool:
    """What a pair's own finding says already: the inventory's other-owner finding for NEW
    (its resource is owned by this stack under OLD), the change set's removal of OLD, and,
    when `policy_explained`, the read-back's "the stack policy differs" (it names OLD where
    the render names NEW)."""
    if finding.stack != naming.STORAGE:
        return False
    if finding.kind == "unprotected":
        return policy_explained and finding.detail == POLICY_DIFFERS
    for p in pairs:
        if finding.kind == "stateful-change" and finding.subject == f"{p.old_type} {p.old}":
            return True
        subject = f"{p.new_type} {p.physical_id}"
        if finding.kind == "other-owner" and p.physical_id and (finding.subject == subject or finding.subject.startswith(subject + " (")):
            return True
    return False


def _statements_with(policy: dict, pairs: list[tuple[str, str]], how: str) -> dict:
    result = json.loads(json.dumps(policy))
    for statement in result.get("Statement", []):
        resources = statement.get("Resource")
        if resources is None:
            continue
        original = [resources] if isinstance(resources, str) else list(resources)
        listed = list(original)
        for old, new in pairs:
            if f"LogicalResourceId/{new}" in listed:
                if how == "swap":
                    listed = [f"LogicalResourceId/{old}" if r == f"LogicalResourceId/{new}" else r for r in listed]
                elif f"LogicalResourceId/{old}" not in listed:
                    listed.append(f"LogicalResourceId/{old}")
        if listed != original:
            statement["Resource"] = listed
    return result


def guard_policy(policy: dict, pairs: list[tuple[str, str]]) -> dict:
    """`policy` (the render's, which names NEW) with OLD protected wherever NEW is."""
    return _statements_with(policy, pairs, "add")


def policy_explained(deployed: dict | None, rendered: dict, pairs: list[Pair]) -> bool:
    """The deployed stack policy differs from the render's only by the renames: it is the
    render's with OLD in NEW's place (the policy before the rename), or with OLD beside NEW
    (a rename under way)."""
    if deployed is None:
        return False
    names = [(p.old, p.new) for p in pairs]
    return deployed in (_statements_with(rendered, names, "swap"), guard_policy(rendered, names))
