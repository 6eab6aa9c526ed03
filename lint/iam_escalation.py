"""Can a principal of these templates raise its own rights? Every IAM statement, read one by one.

Used by tests/test_iam.py on the SAM-expanded renders (the roles SAM generates included).
A template is judged as CloudFormation creates it: each role's inline policies, and each
AWS::IAM::Policy / RolePolicy / ManagedPolicy attached to a role. A managed policy attached
to no one grants nothing (the permissions boundary is one: its own checks are below).

A statement that allows one of these is a finding:
  - "*", or any IAM action through a wildcard (iam:*, iam:Put*, ...);
  - an action that sets what a role may do (CreateRole, PutRolePolicy, AttachRolePolicy,
    PutRolePermissionsBoundary, DeleteRolePolicy, DetachRolePolicy) without an
    iam:PermissionsBoundary condition naming the environment's boundary;
  - an action that no boundary condition can hold (changing a policy version, removing a
    boundary, users, groups, new managed policies);
  - any IAM write or iam:PassRole on a resource that covers the principal's own role, or on "*".
Pure: no AWS, no subprocess."""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

PARTITION = "aws"

# Set what a role may do: allowed only with the boundary condition.
BOUNDED = {"iam:createrole", "iam:putrolepolicy", "iam:attachrolepolicy", "iam:putrolepermissionsboundary",
           "iam:deleterolepolicy", "iam:detachrolepolicy"}
# Raise rights with no boundary condition to hold them.
NEVER = {"iam:createpolicyversion", "iam:setdefaultpolicyversion", "iam:deleterolepermissionsboundary",
         "iam:createpolicy", "iam:deletepolicy", "iam:deletepolicyversion",
         "iam:createuser", "iam:putuserpolicy", "iam:attachuserpolicy", "iam:putuserpermissionsboundary",
         "iam:deleteuserpermissionsboundary", "iam:createaccesskey", "iam:createloginprofile",
         "iam:updateloginprofile", "iam:addusertogroup", "iam:putgrouppolicy", "iam:attachgrouppolicy",
         "iam:createservicelinkedrole", "iam:updateassumerolepolicy"}
# Writes on a role (and PassRole): never on the holder's own role, never on "*".
ROLE_WRITES = BOUNDED | {"iam:updateassumerolepolicy", "iam:deleterole", "iam:updaterole", "iam:updateroledescription",
                         "iam:tagrole", "iam:untagrole", "iam:passrole"}
# Of NEVER, what the stacks' own deploying role may do on its scoped role paths only.
SCOPED_ONLY = {"iam:updateassumerolepolicy"}

BOUNDARY_EXPORT = "-PermissionsBoundaryArn"


@dataclass(frozen=True)
class Finding:
    stack: str
    principal: str   # logical id of the role
    statement: str   # Sid, or the index
    problem: str

    def line(self) -> str:
        return f"{self.stack}/{self.principal} [{self.statement}]: {self.problem}"


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


class Resolver:
    """Intrinsics to text: pseudo parameters and parameter defaults resolved, an import as
    import:<export name>, a GetAtt as getatt:<id>.<attribute>, a Ref to a resource as ref:<id>."""

    def __init__(self, template: dict, stack_name: str, account_id: str, region: str):
        self.variables = {"AWS::AccountId": account_id, "AWS::Region": region, "AWS::Partition": PARTITION,
                          "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com"}
        for name, parameter in (template.get("Parameters") or {}).items():
            if "Default" in parameter:
                self.variables[name] = str(parameter["Default"])
        self.resources = set(template.get("Resources") or {})

    def text(self, value) -> str:
        if isinstance(value, (str, int, float, bool)):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                if arg in self.variables:
                    return self.variables[arg]
                return f"ref:{arg}"
            if fn == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else arg.split(".", 1)
                return f"getatt:{parts[0]}.{parts[1]}"
            if fn == "Fn::ImportValue":
                return f"import:{self.text(arg)}"
            if fn == "Fn::Join":
                return self.text(arg[0]).join(self.text(v) for v in arg[1])
            if fn == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                values = {name: self.text(v) for name, v in local.items()}

                def one(match):
                    name = match.group(1)
                    if name in values:
                        return values[name]
                    if name in self.variables:
                        return self.variables[name]
                    head, _, attribute = name.partition(".")
                    return f"getatt:{head}.{attribute}" if attribute else f"ref:{head}"
                return re.sub(r"\$\{([^}!]+)\}", one, text)
        return repr(value)


@dataclass
class Principal:
    stack: str
    logical_id: str
    path: str
    boundary: str | None          # resolved PermissionsBoundary, or None
    statements: list[dict]
    own_arn: str                  # an ARN CloudFormation could give the role

    def covers_self(self, resource: str) -> bool:
        return resource == "*" or fnmatch.fnmatchcase(self.own_arn, resource) or resource == f"getatt:{self.logical_id}.Arn"


def principals(key: str, stack_name: str, template: dict, account_id: str, region: str) -> list[Principal]:
    """Every role of the template with every statement that applies to it."""
    r = Resolver(template, stack_name, account_id, region)
    resources = template.get("Resources") or {}
    found: dict[str, Principal] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        props = resource.get("Properties") or {}
        path = r.text(props.get("Path", "/"))
        name = r.text(props["RoleName"]) if "RoleName" in props else f"{stack_name}-{logical_id}-ABCDEF123456"[:64]
        statements = [s for policy in props.get("Policies") or [] for s in _list((policy.get("PolicyDocument") or {}).get("Statement") or [])]
        boundary = r.text(props["PermissionsBoundary"]) if "PermissionsBoundary" in props else None
        found[logical_id] = Principal(key, logical_id, path, boundary, statements,
                                      f"arn:{PARTITION}:iam::{account_id}:role{path}{name}")
    for logical_id, resource in resources.items():
        if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy"):
            props = resource.get("Properties") or {}
            roles = _list(props.get("Roles") or []) + ([props["RoleName"]] if "RoleName" in props else [])
            document = props.get("PolicyDocument") or {}
            for role in roles:
                target = r.text(role)
                target = target[4:] if target.startswith("ref:") else target
                if target in found:
                    found[target].statements.extend(_list(document.get("Statement") or []))
    for principal in found.values():
        principal.statements = [_resolved(s, r) for s in principal.statements]
    return list(found.values())


def _resolved(statement: dict, r: Resolver) -> dict:
    def walk(node):
        if isinstance(node, dict):
            if len(node) == 1 and next(iter(node)) in ("Ref", "Fn::GetAtt", "Fn::ImportValue", "Fn::Sub", "Fn::Join"):
                return r.text(node)
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    return walk(statement)


def _actions(statement: dict) -> list[str]:
    return [a.lower() for a in _list(statement.get("Action") or [])]


def _boundary_condition(statement: dict) -> set[str]:
    """The boundaries an iam:PermissionsBoundary condition of the statement demands."""
    demanded = set()
    for operator, block in (statement.get("Condition") or {}).items():
        if operator.removesuffix("IfExists") not in ("ArnEquals", "StringEquals", "ArnLike", "StringLike") or operator.startswith(("ForAnyValue", "ForAllValues")):
            continue
        for key, value in block.items():
            if key.lower() == "iam:permissionsboundary":
                demanded |= {str(v) for v in _list(value)}
    return demanded


def judge(principal: Principal, boundary: str) -> list[Finding]:
    """Every way this principal's Allow statements let it raise its own rights."""
    findings = []
    for index, statement in enumerate(principal.statements):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid") or f"statement {index + 1}"
        actions = _actions(statement)
        if "NotAction" in statement:
            findings.append(Finding(principal.stack, principal.logical_id, sid, "NotAction in an Allow grants everything else"))
            continue
        resources = [str(v) for v in _list(statement.get("Resource") or [])]
        if "NotResource" in statement:
            resources = ["*"]
        for action in actions:
            wildcard = "*" in action or "?" in action
            if action == "*" or (wildcard and (action.startswith("iam:") or fnmatch.fnmatchcase("iam:putrolepolicy", action))):
                findings.append(Finding(principal.stack, principal.logical_id, sid, f"allows {action}: every IAM action, its own role's included"))
                continue
            if action in NEVER and action not in SCOPED_ONLY:
                findings.append(Finding(principal.stack, principal.logical_id, sid, f"allows {action}, which no boundary condition can hold"))
                continue
            if action in BOUNDED and boundary not in _boundary_condition(statement):
                findings.append(Finding(principal.stack, principal.logical_id, sid,
                                        f"allows {action} without an iam:PermissionsBoundary condition naming the boundary"))
            if action in ROLE_WRITES:
                for resource in resources:
                    if principal.covers_self(resource):
                        findings.append(Finding(principal.stack, principal.logical_id, sid,
                                                f"allows {action} on {resource}, which covers its own role ({principal.own_arn})"))
    return findings


def boundary_problems(document: dict, pattern: str, execution_roles: str) -> list[str]:
    """What a permissions boundary must deny, checked on its resolved document: no role or
    role policy without it, no boundary removed, no change to it or to the execution role."""
    statements = _list(document.get("Statement") or [])
    denies = [s for s in statements if s.get("Effect") == "Deny"]
    problems = []

    def denied(action: str, resource: str, unless_boundary: bool = False) -> bool:
        for s in denies:
            if not any(fnmatch.fnmatchcase(action, a.lower()) for a in _list(s.get("Action") or [])):
                continue
            if not any(fnmatch.fnmatchcase(resource, str(r)) for r in _list(s.get("Resource") or [])):
                continue
            condition = s.get("Condition") or {}
            if unless_boundary:
                if condition == {"ArnNotLike": {"iam:PermissionsBoundary": pattern}}:
                    return True
            elif not condition:
                return True
        return False

    for action in sorted(BOUNDED):
        if not denied(action, "arn:aws:iam::000000000000:role/any", unless_boundary=True):
            problems.append(f"does not deny {action} unless the role carries it")
    if not denied("iam:deleterolepermissionsboundary", "arn:aws:iam::000000000000:role/any"):
        problems.append("does not deny iam:DeleteRolePermissionsBoundary")
    for action in ("iam:createpolicyversion", "iam:setdefaultpolicyversion", "iam:deletepolicy", "iam:deletepolicyversion"):
        if not denied(action, pattern.replace("*", "x")):
            problems.append(f"does not deny {action} on itself")
    for action in sorted(ROLE_WRITES):
        if not denied(action, execution_roles.replace("*", "x")):
            problems.append(f"does not deny {action} on the execution role")
    return problems


def allowed_by(document: dict) -> list[str]:
    """The action patterns a boundary's Allow statements leave open."""
    return [a.lower() for s in _list(document.get("Statement") or []) if s.get("Effect") == "Allow"
            for a in _list(s.get("Action") or [])]
