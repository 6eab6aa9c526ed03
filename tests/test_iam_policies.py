"""The two sets of rights of a reviewed deploy (docs/iam/): the planner's policy, as
written, cannot execute a change set or change a stack any other way; the executor's can
execute only change sets deploy.py made (deploy-py-*) on the project's stacks, and cannot
make one. The statements are evaluated as IAM evaluates them (an explicit Deny wins, else
an Allow whose Action, Resource and Condition all match); a condition operator this
evaluator does not know fails the test rather than being guessed."""
from __future__ import annotations

import fnmatch
import json

import pytest

from conftest import ROOT

PLANNER = json.loads((ROOT / "docs" / "iam" / "planner-policy.json").read_text())
EXECUTOR = json.loads((ROOT / "docs" / "iam" / "executor-policy.json").read_text())
STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/ai-social-media-prod-backend/0f1e2d3c"
STORAGE = "arn:aws:cloudformation:eu-west-1:123456789012:stack/ai-social-media-prod-storage/0f1e2d3c"
OURS = {"cloudformation:ChangeSetName": "deploy-py-5f0c9a"}
# Every way to change a stack or run what a change set holds.
CHANGING = ["cloudformation:ExecuteChangeSet", "cloudformation:CreateStack", "cloudformation:UpdateStack",
            "cloudformation:DeleteStack", "cloudformation:RollbackStack", "cloudformation:ContinueUpdateRollback",
            "cloudformation:CancelUpdateStack", "cloudformation:UpdateTerminationProtection", "cloudformation:SetStackPolicy",
            "cloudformation:ImportStacksToStackSet", "cloudformation:CreateStackRefactor", "cloudformation:ExecuteStackRefactor"]


def _listed(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def _action_matches(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(fnmatch.fnmatch(action.lower(), p.lower()) for p in _listed(statement["NotAction"]))
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _listed(statement["Action"]))


def _resource_matches(statement: dict, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(fnmatch.fnmatchcase(resource, p) for p in _listed(statement["NotResource"]))
    return any(fnmatch.fnmatchcase(resource, p) for p in _listed(statement["Resource"]))


def _conditions_hold(conditions: dict | None, context: dict) -> bool:
    for operator, tests in (conditions or {}).items():
        for key, wanted in tests.items():
            value = context.get(key)
            if operator == "StringLike":
                ok = value is not None and any(fnmatch.fnmatchcase(value, p) for p in _listed(wanted))
            elif operator == "StringEquals":
                ok = value is not None and value in _listed(wanted)
            else:
                raise AssertionError(f"condition operator {operator} is not known to this evaluator")
            if not ok:
                return False
    return True


def allowed(policy: dict, action: str, resource: str, context: dict | None = None) -> bool:
    verdict = False
    for statement in policy["Statement"]:
        if _action_matches(statement, action) and _resource_matches(statement, resource) \
                and _conditions_hold(statement.get("Condition"), context or {}):
            if statement["Effect"] == "Deny":
                return False
            verdict = True
    return verdict


def test_the_evaluator_tells_allowed_from_not():
    assert allowed(PLANNER, "cloudformation:CreateChangeSet", STACK, OURS)
    assert allowed(PLANNER, "CloudFormation:createChangeSet", STACK, OURS)  # actions are case-insensitive
    assert not allowed(PLANNER, "cloudformation:CreateChangeSet", STACK, {"cloudformation:ChangeSetName": "someone-elses"})
    assert not allowed(PLANNER, "cloudformation:CreateChangeSet", STACK.replace("ai-social-media", "other-app"), OURS)
    deny = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                          {"Effect": "Deny", "Action": "cloudformation:Execute*", "Resource": "*"}]}
    assert allowed(deny, "cloudformation:CreateChangeSet", STACK) and not allowed(deny, "cloudformation:ExecuteChangeSet", STACK)


def test_no_planner_statement_names_execute_or_any_change_to_a_stack():
    for statement in PLANNER["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        for action in CHANGING:
            assert not _action_matches(statement, action), f"{statement.get('Sid')}: its Action covers {action}"


@pytest.mark.parametrize("action", CHANGING)
@pytest.mark.parametrize("resource", [STACK, STORAGE, "*"])
@pytest.mark.parametrize("context", [{}, OURS])
def test_the_planner_cannot_execute_nor_change_a_stack(action, resource, context):
    assert not allowed(PLANNER, action, resource, context)


# What `plan --out` calls (tooling/aws): the planner can do each.
PLAN_CALLS = [("cloudformation:DescribeStacks", STACK, {}), ("cloudformation:GetTemplate", STACK, {}),
              ("cloudformation:ListExports", "*", {}), ("cloudformation:ListImports", "*", {}),
              ("cloudformation:DescribeStackEvents", STACK, {}), ("cloudformation:ListStackResources", STACK, {}),
              ("cloudformation:CreateChangeSet", STACK, OURS), ("cloudformation:DescribeChangeSet", STACK, OURS),
              ("cloudformation:DeleteChangeSet", STACK, OURS), ("sts:GetCallerIdentity", "*", {}),
              ("s3:PutObject", "arn:aws:s3:::ai-social-media-prod-be-artifacts-123456789012/backend/abc", {}),
              ("s3:ListBucket", "arn:aws:s3:::ai-social-media-prod-media-123456789012", {}),
              ("dynamodb:DescribeTable", "arn:aws:dynamodb:eu-west-1:123456789012:table/media-selection-sessions-prod", {})]


@pytest.mark.parametrize("action,resource,context", PLAN_CALLS, ids=[c[0] for c in PLAN_CALLS])
def test_the_planner_can_do_what_plan_out_does(action, resource, context):
    assert allowed(PLANNER, action, resource, context)


def test_the_executor_executes_only_deploy_py_change_sets_of_the_projects_stacks_and_makes_none():
    assert allowed(EXECUTOR, "cloudformation:ExecuteChangeSet", STACK, OURS)
    assert not allowed(EXECUTOR, "cloudformation:ExecuteChangeSet", STACK, {"cloudformation:ChangeSetName": "hand-made"})
    assert not allowed(EXECUTOR, "cloudformation:ExecuteChangeSet", STACK.replace("ai-social-media", "other-app"), OURS)
    for action in ("cloudformation:CreateChangeSet", "cloudformation:CreateStack", "cloudformation:UpdateStack",
                   "cloudformation:DeleteStack", "cloudformation:DeleteChangeSet"):
        assert not allowed(EXECUTOR, action, STACK, OURS), action
    # after the storage stack: termination protection and the stack policy, on storage only
    assert allowed(EXECUTOR, "cloudformation:UpdateTerminationProtection", STORAGE)
    assert not allowed(EXECUTOR, "cloudformation:UpdateTerminationProtection", STACK)
