"""The storage stack's protection: termination protection and the stack policy
(which denies Update:Replace and Update:Delete on every stateful resource), set
and then read back, so that "protected" is a verified statement.

When: before the change set that creates (or updates) storage executes, so that an
interrupted first deploy never leaves storage unprotected; again after it, verified;
and at the start of every apply, even `--only` without storage (restore_first).

Termination protection can be set "on a stack with any status except
DELETE_IN_PROGRESS or DELETE_COMPLETE" (CloudFormation's guide), REVIEW_IN_PROGRESS
included. For SetStackPolicy AWS documents no status limit and no refusal; nothing
documented says whether it works on a REVIEW_IN_PROGRESS stack (the local AWS
accepts it). So it is tried there, and if AWS refuses it the policy is set after the
create, as before: a stack policy governs updates only, never the create itself, and
check and status report a storage stack without it as a blocking finding."""
from __future__ import annotations

from ...aws import cloudformation as cfn
from ...aws.session import ClientError, error_code, error_message
from ...errors import UserError
from ...render import naming
from ..gate import drift
from ..workspace import Workspace


def protect_storage(ws: Workspace) -> str | None:
    """Turn termination protection on, set the stack policy, read both back.
    Returns the problem, or None when both are verified."""
    name = ws.stacks[naming.STORAGE]["name"]
    policy = ws.stack_policy()
    cfn.enable_termination_protection(ws.region, name)
    cfn.set_stack_policy(ws.region, name, policy)
    stack = cfn.describe_stack(ws.region, name)
    if not stack or not stack.get("EnableTerminationProtection"):
        return "termination protection did not stay on"
    if cfn.stack_policy(ws.region, name) != policy:
        return "the stack policy read back differs from storage-stack-policy.json"
    return None


def before_execute(ws: Workspace, key: str) -> list[str]:
    """Before storage's change set executes: termination protection, then the stack
    policy if CloudFormation takes it in this state. Notes for the outcome."""
    if key != naming.STORAGE:
        return []
    name = ws.stacks[naming.STORAGE]["name"]
    cfn.enable_termination_protection(ws.region, name)
    try:
        cfn.set_stack_policy(ws.region, name, ws.stack_policy())
    except ClientError as exc:
        if error_code(exc) != "ValidationError":
            raise
        return [f"CloudFormation refused the stack policy before the change set executed ({error_message(exc)}); "
                f"it is set right after, and check reports storage until it is"]
    return []


def restore_first(ws: Workspace, log) -> None:
    """At the start of every apply: a deployed storage stack without its protection
    gets it back (verified) before anything else happens."""
    stack = cfn.describe_stack(ws.region, ws.stacks[naming.STORAGE]["name"])
    if stack is None or stack["StackStatus"].startswith("DELETE_"):
        return
    problems = drift.stack_protection_problems(ws, stack)
    if not problems:
        return
    problem = protect_storage(ws)
    if problem:
        raise UserError(f"storage protection could not be restored: {problem}", status=1)
    log(f"apply: storage was unprotected ({'; '.join(problems)}): termination protection and stack policy restored (verified)")
