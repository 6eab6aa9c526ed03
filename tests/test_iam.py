"""No principal of the stacks can raise its own rights (lint/iam_escalation.py), and every role
carries the environment's permissions boundary, which holds what it must.

Every IAM statement of the dev and prod renders is read, after the SAM transform (the roles SAM
would generate included, as CloudFormation creates them). The same judge fails on the backend
pipeline's deploy role as it was before the CloudFormation execution role
(tests/fixtures/iam/deploy-role-before.json): iam:PutRolePolicy on role/<prefix>-*, which
covers its own name."""
from __future__ import annotations

import copy
import fnmatch
import json
import sys

import pytest

from conftest import ACCOUNT, ROOT

sys.path.insert(0, str(ROOT))
from lint import guard  # noqa: E402
from lint import iam_escalation as iam  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "iam" / "deploy-role-before.json"


@pytest.fixture(scope="module")
def renders(rendered):
    loaded = [guard.load_render(rendered[env][0]) for env in ("dev", "prod")]
    guard.expand_sam(loaded, guard.SAM_PYTHON)
    return {r.manifest["env"]: r for r in loaded}


def boundary_arn(render) -> str:
    return f"import:{render.manifest['stacks'][0]['name']}{iam.BOUNDARY_EXPORT}"


def all_principals(render):
    found = []
    for stack in render.manifest["stacks"]:
        found += iam.principals(stack["key"], stack["name"], render.templates[stack["key"]], render.manifest["account_id"],
                                stack.get("region", render.manifest["region"]))
    return found


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_principal_of_the_renders_can_raise_its_own_rights(renders, env):
    render = renders[env]
    principals = all_principals(render)
    assert len(principals) >= 14   # 5 function roles, 4 backend pipeline, 3 frontend pipeline, 4 operations (dev: fewer)
    findings = [f.line() for p in principals for f in iam.judge(p, boundary_arn(render))]
    assert findings == []


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_role_carries_the_boundary_and_sam_generates_none(renders, env):
    render = renders[env]
    principals = all_principals(render)
    assert {p.boundary for p in principals} == {boundary_arn(render)}
    # SAM generates a role (with AWSLambdaBasicExecutionRole) only for a function without Role.
    for template in render.templates.values():
        for logical_id, resource in template["Resources"].items():
            assert "ManagedPolicyArns" not in (resource.get("Properties") or {}), logical_id


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_functions_write_only_to_their_own_log_group(renders, env):
    render = renders[env]
    for p in all_principals(render):
        if p.stack not in ("backend", "webhook"):
            continue
        logs = [s for s in p.statements if any(a.startswith("logs:") for a in iam._actions(s))]
        assert len(logs) == 1, p.logical_id
        function = p.logical_id.removesuffix("Role")
        group = render.templates[p.stack]["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]
        assert logs[0]["Resource"] == f"getatt:{group['Ref']}.Arn"


def boundary_document(render):
    storage = render.templates["storage"]
    resolver = iam.Resolver(storage, render.manifest["stacks"][0]["name"], render.manifest["account_id"], render.manifest["region"])
    return iam._resolved(storage["Resources"]["PermissionsBoundary"]["Properties"]["PolicyDocument"], resolver)


def prefix_of(render) -> str:
    return render.env["naming"]["prefix"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_boundary_denies_what_it_must(renders, env):
    render = renders[env]
    prefix = prefix_of(render)
    pattern = f"arn:aws:iam::{ACCOUNT}:policy/{prefix}/boundary/*"
    assert iam.boundary_problems(boundary_document(render), pattern, f"arn:aws:iam::{ACCOUNT}:role/{prefix}/cloudformation/*") == []
    storage = render.templates["storage"]["Resources"]["PermissionsBoundary"]["Properties"]
    assert storage["Path"] == f"/{prefix}/boundary/"   # what the pattern above matches, and nothing else can be created at


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_action_a_role_is_given_falls_inside_the_boundary(renders, env):
    """A boundary that left out an action a role needs would break that role on AWS."""
    render = renders[env]
    ceiling = iam.allowed_by(boundary_document(render))
    outside = sorted({f"{p.stack}/{p.logical_id}: {action}" for p in all_principals(render) for s in p.statements
                      if s.get("Effect") == "Allow" for action in iam._actions(s)
                      if not any(fnmatch.fnmatchcase(action, allowed) for allowed in ceiling)})
    assert outside == []


def test_the_execution_role_is_outside_its_own_rights_and_only_it_is_passed(renders):
    render = renders["prod"]
    by_id = {p.logical_id: p for p in all_principals(render) if p.stack == "backend-pipeline"}
    execution, deploy = by_id["ExecutionRole"], by_id["DeployRole"]
    assert execution.path == "/ai-social-media-prod/cloudformation/"
    trust = render.templates["backend-pipeline"]["Resources"]["ExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    passes = [s for s in deploy.statements if "iam:passrole" in iam._actions(s)]
    assert passes == [{"Sid": "PassOnlyTheExecutionRoleToCloudFormation", "Effect": "Allow", "Action": "iam:PassRole",
                       "Resource": "getatt:ExecutionRole.Arn",
                       "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}}]
    assert not [a for s in deploy.statements for a in iam._actions(s) if a.startswith(("iam:", "lambda:Create", "apigateway:"))
                and a != "iam:passrole"]


def test_apigateway_and_log_rights_are_this_environments(renders):
    render = renders["dev"]
    execution = next(p for p in all_principals(render) if p.logical_id == "ExecutionRole")
    for statement in execution.statements:
        actions = iam._actions(statement)
        if any(a.startswith("apigateway:") for a in actions):
            keys = {k for block in statement["Condition"].values() for k in block}
            assert keys <= {"aws:RequestTag/environment", "aws:ResourceTag/environment"} and keys
            assert {v for block in statement["Condition"].values() for v in block.values()} == {"ai-social-media-dev"}
        if any(a.startswith("logs:") for a in actions) and statement["Resource"] != "*":
            for resource in iam._list(statement["Resource"]):
                assert "ai-social-media-dev-" in resource or resource.endswith("log-group:*") and actions == ["logs:describeloggroups"]
    for key in ("backend", "webhook"):
        api = next(r for r in render.templates[key]["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
        assert api["Properties"]["Tags"] == {"environment": "ai-social-media-dev"}


# --- the judge itself: the case it exists for, and each rule ------------------------------

def fixture_principal(document=None):
    template = document or json.loads(FIXTURE.read_text())
    return iam.principals("backend-pipeline", "ai-social-media-dev-backend-pipeline", template, ACCOUNT, "us-east-1")[0]


BOUNDARY = "import:ai-social-media-dev-storage-PermissionsBoundaryArn"


def test_the_deploy_role_as_it_was_can_make_itself_an_administrator():
    problems = [f.problem for f in iam.judge(fixture_principal(), BOUNDARY)]
    own = "covers its own role (arn:aws:iam::123456789012:role/ai-social-media-dev-backend-pipeline-DeployRole-ABCDEF123456)"
    assert "allows iam:putrolepolicy without an iam:PermissionsBoundary condition naming the boundary" in problems
    assert "allows iam:createrole without an iam:PermissionsBoundary condition naming the boundary" in problems
    assert "allows iam:attachrolepolicy without an iam:PermissionsBoundary condition naming the boundary" in problems
    assert f"allows iam:putrolepolicy on arn:aws:iam::123456789012:role/ai-social-media-dev-*, which {own}" in problems
    assert f"allows iam:updateassumerolepolicy on arn:aws:iam::123456789012:role/ai-social-media-dev-*, which {own}" in problems


def role(statements, path="/deployed/", boundary=True):
    props = {"Path": path, "AssumeRolePolicyDocument": {},
             "Policies": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]}
    if boundary:
        props["PermissionsBoundary"] = {"Fn::ImportValue": "ai-social-media-dev-storage-PermissionsBoundaryArn"}
    return {"Resources": {"Holder": {"Type": "AWS::IAM::Role", "Properties": props}}}


WITH_BOUNDARY = {"ArnEquals": {"iam:PermissionsBoundary": {"Fn::ImportValue": "ai-social-media-dev-storage-PermissionsBoundaryArn"}}}
FUNCTION_ROLES = f"arn:aws:iam::{ACCOUNT}:role/fn/*"


@pytest.mark.parametrize("statement, problem", [
    ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "allows *"),
    ({"Effect": "Allow", "Action": "iam:*", "Resource": FUNCTION_ROLES}, "allows iam:*"),
    ({"Effect": "Allow", "Action": "iam:Put*", "Resource": FUNCTION_ROLES}, "allows iam:put*"),
    ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, "NotAction"),
    ({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": FUNCTION_ROLES}, "without an iam:PermissionsBoundary"),
    ({"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": FUNCTION_ROLES,
      "Condition": {"ArnEquals": {"iam:PermissionsBoundary": "arn:aws:iam::123456789012:policy/other"}}}, "without an iam:PermissionsBoundary"),
    ({"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "*"}, "no boundary condition can hold"),
    ({"Effect": "Allow", "Action": "iam:DeleteRolePermissionsBoundary", "Resource": FUNCTION_ROLES}, "no boundary condition can hold"),
    ({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}, "no boundary condition can hold"),
    # with the boundary condition, but on its own role: it carries the boundary, so IAM would allow it
    ({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": f"arn:aws:iam::{ACCOUNT}:role/deployed/*",
      "Condition": WITH_BOUNDARY}, "covers its own role"),
    ({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}, "covers its own role"),
    ({"Effect": "Allow", "Action": "iam:UpdateAssumeRolePolicy", "Resource": {"Fn::GetAtt": ["Holder", "Arn"]}}, "covers its own role"),
])
def test_each_way_to_raise_ones_rights_is_found(statement, problem):
    findings = iam.judge(fixture_principal(role([statement])), BOUNDARY)
    assert findings and all(problem in f.problem for f in findings), [f.problem for f in findings]


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:PutRolePolicy"], "Resource": FUNCTION_ROLES, "Condition": WITH_BOUNDARY},
    {"Effect": "Allow", "Action": "iam:UpdateAssumeRolePolicy", "Resource": FUNCTION_ROLES},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": FUNCTION_ROLES,
     "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
    {"Effect": "Deny", "Action": "*", "Resource": "*"},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
])
def test_what_cannot_raise_ones_rights_passes(statement):
    assert iam.judge(fixture_principal(role([statement])), BOUNDARY) == []


def test_a_separate_policy_on_the_role_is_read_too():
    template = role([])
    template["Resources"]["Extra"] = {"Type": "AWS::IAM::Policy", "Properties": {
        "Roles": [{"Ref": "Holder"}], "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}}}
    assert [f.problem for f in iam.judge(fixture_principal(template), BOUNDARY)][0].startswith("allows iam:*")


def test_a_boundary_missing_a_deny_is_found(renders):
    document = copy.deepcopy(boundary_document(renders["dev"]))
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "TheExecutionRoleIsFixed"]
    problems = iam.boundary_problems(document, f"arn:aws:iam::{ACCOUNT}:policy/ai-social-media-dev/boundary/*",
                                     f"arn:aws:iam::{ACCOUNT}:role/ai-social-media-dev/cloudformation/*")
    assert "does not deny iam:putrolepolicy on the execution role" in problems
