"""The storage stack's protection: termination protection and the stack policy
(which denies Update:Replace and Update:Delete on every stateful resource), set
and then read back, so that "protected" is a verified statement."""
from __future__ import annotations

from ...aws import cloudformation as cfn
from ...render import naming
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
