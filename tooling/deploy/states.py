"""The one table of CloudFormation stack states, and what every command does in each.

Every status CloudFormation documents is listed; a status not in the table is
"unknown", which blocks (a new status is never guessed at). Commands ask this
module, never compare status strings themselves."""
from __future__ import annotations

from dataclasses import dataclass

# What a deploy does with a stack in this state:
ABSENT = "absent"        # no stack: create it
REPLACE = "replace"      # an empty failed create: delete it, then create
UPDATE = "update"        # deployed and updatable (for storage: through the stateful gate)
BUSY = "busy"            # an operation is in progress: wait, change nothing
RECOVER = "recover"      # a *_FAILED state: stop before any change; print the recovery command
UNKNOWN = "unknown"      # not a documented status: stop


@dataclass(frozen=True)
class State:
    status: str
    action: str
    exports_live: bool  # its exports exist and can be imported
    succeeded: bool     # the last operation ended as asked (never a rollback)


def _row(status, action, exports_live=False, succeeded=False):
    return status, State(status, action, exports_live, succeeded)


TABLE: dict[str, State] = dict([
    _row("CREATE_IN_PROGRESS", BUSY),
    _row("CREATE_FAILED", RECOVER),              # only with rollback disabled
    _row("CREATE_COMPLETE", UPDATE, True, True),
    _row("ROLLBACK_IN_PROGRESS", BUSY),
    _row("ROLLBACK_FAILED", RECOVER),
    _row("ROLLBACK_COMPLETE", REPLACE),          # a failed first create: holds nothing
    _row("DELETE_IN_PROGRESS", BUSY),
    _row("DELETE_FAILED", RECOVER, True),        # its exports stay until the stack is gone
    _row("DELETE_COMPLETE", ABSENT),
    _row("UPDATE_IN_PROGRESS", BUSY, True),
    _row("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", BUSY, True),
    _row("UPDATE_COMPLETE", UPDATE, True, True),
    _row("UPDATE_FAILED", RECOVER, True),        # only with rollback disabled
    _row("UPDATE_ROLLBACK_IN_PROGRESS", BUSY, True),
    _row("UPDATE_ROLLBACK_FAILED", RECOVER, True),
    _row("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", BUSY, True),
    _row("UPDATE_ROLLBACK_COMPLETE", UPDATE, True),  # the usual state after a failed update
    _row("REVIEW_IN_PROGRESS", ABSENT),          # a change set never executed (see state_of)
    _row("IMPORT_IN_PROGRESS", BUSY, True),
    _row("IMPORT_COMPLETE", UPDATE, True, True),
    _row("IMPORT_ROLLBACK_IN_PROGRESS", BUSY, True),
    _row("IMPORT_ROLLBACK_FAILED", RECOVER, True),
    _row("IMPORT_ROLLBACK_COMPLETE", UPDATE, True),
])

NO_STACK = State("NOT_DEPLOYED", ABSENT, False, False)

# Every status of a stack that still exists: for ListStacks' filter.
LIVE_STATUSES = sorted(s for s in TABLE if s != "DELETE_COMPLETE")


def state_of(stack: dict | None, resource_count: int | None = None) -> State:
    """The state of a described stack (None: no stack). REVIEW_IN_PROGRESS counts
    as no stack only when it holds no resources (as sam treats it); with resources,
    or when the count is not known, it is not a state this table can vouch for."""
    if stack is None:
        return NO_STACK
    status = stack.get("StackStatus", "")
    state = TABLE.get(status)
    if state is None:
        return State(status, UNKNOWN, False, False)
    if status == "REVIEW_IN_PROGRESS" and resource_count != 0:
        return State(status, UNKNOWN, False, False)
    return state


def recovery(stack_name: str, status: str, failed_resources: list[str]) -> str:
    """The command that brings a stack out of a *_FAILED state, as one runs it."""
    skip = " ".join(failed_resources)
    if status == "UPDATE_ROLLBACK_FAILED":
        if failed_resources:
            return (f"fix what stopped the rollback of {skip}, then: aws cloudformation continue-update-rollback --stack-name {stack_name}; "
                    f"or skip them (CloudFormation then treats them as rolled back, whatever their real state): "
                    f"aws cloudformation continue-update-rollback --stack-name {stack_name} --resources-to-skip {skip}")
        return f"aws cloudformation continue-update-rollback --stack-name {stack_name}"
    if status in ("CREATE_FAILED", "UPDATE_FAILED"):
        return f"aws cloudformation rollback-stack --stack-name {stack_name}"
    if status == "ROLLBACK_FAILED":
        return f"aws cloudformation delete-stack --stack-name {stack_name}"
    if status == "DELETE_FAILED":
        retain = f" --retain-resources {skip}" if failed_resources else ""
        return f"aws cloudformation delete-stack --stack-name {stack_name}{retain}"
    if status == "IMPORT_ROLLBACK_FAILED":
        # ContinueUpdateRollback is documented for UPDATE_ROLLBACK_FAILED only, RollbackStack for
        # CREATE_FAILED and UPDATE_FAILED: a stack whose import rollback failed can only be deleted.
        # Resources kept on delete (Retain, RetainExceptOnCreate) stay, with their data.
        return (f"see what stopped the rollback{' of ' + skip if skip else ''} (aws cloudformation describe-stack-events "
                f"--stack-name {stack_name}); then delete the stack, which keeps every resource whose DeletionPolicy retains it: "
                f"aws cloudformation delete-stack --stack-name {stack_name}")
    return f"aws cloudformation describe-stack-events --stack-name {stack_name}"


def failed_resource_status(status: str) -> tuple[str, ...]:
    """The resource statuses that name what a stack in `status` is stuck on."""
    if status == "DELETE_FAILED":
        return ("DELETE_FAILED",)
    return ("UPDATE_FAILED", "CREATE_FAILED", "DELETE_FAILED", "IMPORT_FAILED")
