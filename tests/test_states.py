"""tooling/deploy/states.py: the one table of CloudFormation stack states.

Covers the action, exports_live and succeeded of every documented status (and that
the table lists exactly the statuses botocore's CloudFormation model knows), the
unknown and no-stack states, REVIEW_IN_PROGRESS by resource count, LIVE_STATUSES,
and the recovery commands, each checked against the CloudFormation API model so a
printed command names a real operation with real parameters."""
from __future__ import annotations

import re
import shlex

import botocore.session
import pytest

from tooling.deploy import states
from tooling.deploy.states import ABSENT, BUSY, RECOVER, REPLACE, UNKNOWN, UPDATE

STACK = "acme-dev-storage"

# status -> (action, exports_live, succeeded), written out from the CloudFormation docs.
EXPECTED = {
    "CREATE_IN_PROGRESS": (BUSY, False, False),
    "CREATE_FAILED": (RECOVER, False, False),
    "CREATE_COMPLETE": (UPDATE, True, True),
    "ROLLBACK_IN_PROGRESS": (BUSY, False, False),
    "ROLLBACK_FAILED": (RECOVER, False, False),
    "ROLLBACK_COMPLETE": (REPLACE, False, False),
    "DELETE_IN_PROGRESS": (BUSY, False, False),
    "DELETE_FAILED": (RECOVER, True, False),  # its exports stay until the stack is gone
    "DELETE_COMPLETE": (ABSENT, False, False),
    "UPDATE_IN_PROGRESS": (BUSY, True, False),
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": (BUSY, True, False),
    "UPDATE_COMPLETE": (UPDATE, True, True),
    "UPDATE_FAILED": (RECOVER, True, False),
    "UPDATE_ROLLBACK_IN_PROGRESS": (BUSY, True, False),
    "UPDATE_ROLLBACK_FAILED": (RECOVER, True, False),
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": (BUSY, True, False),
    "UPDATE_ROLLBACK_COMPLETE": (UPDATE, True, False),
    "REVIEW_IN_PROGRESS": (ABSENT, False, False),
    "IMPORT_IN_PROGRESS": (BUSY, True, False),
    "IMPORT_COMPLETE": (UPDATE, True, True),
    "IMPORT_ROLLBACK_IN_PROGRESS": (BUSY, True, False),
    "IMPORT_ROLLBACK_FAILED": (RECOVER, True, False),
    "IMPORT_ROLLBACK_COMPLETE": (UPDATE, True, False),
}

RECOVER_STATUSES = sorted(s for s, (action, _, _) in EXPECTED.items() if action == RECOVER)


@pytest.fixture(scope="module")
def cfn_model():
    return botocore.session.get_session().get_service_model("cloudformation")


# --- the table ------------------------------------------------------------------------------

def test_expected_covers_23_statuses_and_the_table_lists_exactly_them():
    assert len(EXPECTED) == 23
    assert set(states.TABLE) == set(EXPECTED)


def test_table_equals_botocore_stack_status_enum(cfn_model):
    """A status AWS adds (or removes) shows up here, never silently as "unknown"."""
    enum = set(cfn_model.shape_for("StackStatus").enum)
    assert set(states.TABLE) == enum, (
        f"missing from the table: {sorted(enum - set(states.TABLE))}; not in AWS: {sorted(set(states.TABLE) - enum)}")


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_every_status_has_its_documented_row(status):
    action, exports_live, succeeded = EXPECTED[status]
    row = states.TABLE[status]
    assert (row.status, row.action, row.exports_live, row.succeeded) == (status, action, exports_live, succeeded)
    # state_of a described stack gives the same row (REVIEW_IN_PROGRESS needs its count: 0 here).
    assert states.state_of({"StackName": STACK, "StackStatus": status}, resource_count=0) == row


@pytest.mark.parametrize("status", sorted(s for s in EXPECTED if s.endswith("_FAILED")))
def test_failed_statuses_recover(status):
    assert states.TABLE[status].action == RECOVER


@pytest.mark.parametrize("status", sorted(s for s in EXPECTED if s.endswith("_IN_PROGRESS") and s != "REVIEW_IN_PROGRESS"))
def test_in_progress_statuses_are_busy(status):
    assert states.TABLE[status].action == BUSY
    assert not states.TABLE[status].succeeded


def test_rollback_complete_is_replaced_and_holds_no_exports():
    state = states.state_of({"StackStatus": "ROLLBACK_COMPLETE"})
    assert state.action == REPLACE
    assert not state.exports_live and not state.succeeded


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"])
def test_rolled_back_update_is_updatable_but_not_a_success(status):
    state = states.state_of({"StackStatus": status})
    assert state.action == UPDATE
    assert state.exports_live
    assert state.succeeded is False


def test_only_complete_create_update_import_succeeded():
    assert {s for s, row in states.TABLE.items() if row.succeeded} == {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def test_delete_complete_is_absent():
    assert states.state_of({"StackStatus": "DELETE_COMPLETE"}).action == ABSENT


# --- states outside the table ---------------------------------------------------------------

@pytest.mark.parametrize("stack", [{"StackStatus": "UPDATE_PAUSED"}, {"StackStatus": ""}, {"StackName": STACK}])
def test_undocumented_status_is_unknown(stack):
    state = states.state_of(stack)
    assert state.action == UNKNOWN
    assert state.status == stack.get("StackStatus", "")
    assert not state.exports_live and not state.succeeded


def test_no_stack():
    state = states.state_of(None)
    assert state is states.NO_STACK
    assert state.action == ABSENT
    assert state.status == "NOT_DEPLOYED"
    assert not state.exports_live and not state.succeeded


def test_review_in_progress_without_resources_is_absent():
    assert states.state_of({"StackStatus": "REVIEW_IN_PROGRESS"}, resource_count=0).action == ABSENT


@pytest.mark.parametrize("count", [3, None])
def test_review_in_progress_with_resources_or_unknown_count_is_unknown(count):
    state = states.state_of({"StackStatus": "REVIEW_IN_PROGRESS"}, resource_count=count)
    assert state.action == UNKNOWN
    assert state.status == "REVIEW_IN_PROGRESS"


def test_resource_count_matters_only_for_review_in_progress():
    assert states.state_of({"StackStatus": "UPDATE_COMPLETE"}, resource_count=None).action == UPDATE
    assert states.state_of({"StackStatus": "CREATE_COMPLETE"}, resource_count=7).action == UPDATE


# --- LIVE_STATUSES ----------------------------------------------------------------------------

def test_live_statuses_are_every_status_but_delete_complete(cfn_model):
    assert "DELETE_COMPLETE" not in states.LIVE_STATUSES
    assert set(states.LIVE_STATUSES) == set(EXPECTED) - {"DELETE_COMPLETE"}
    assert len(states.LIVE_STATUSES) == len(set(states.LIVE_STATUSES)) == 22
    # usable as ListStacks' StackStatusFilter
    assert set(states.LIVE_STATUSES) <= set(cfn_model.shape_for("StackStatus").enum)


# --- recovery ----------------------------------------------------------------------------------

_CLI = re.compile(r"aws cloudformation [^;()]*")


def cli_commands(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Every `aws cloudformation <op> --opt value...` in a text: (op, {option: values})."""
    found = []
    for match in _CLI.finditer(text):
        words = shlex.split(match.group(0))
        assert words[:2] == ["aws", "cloudformation"] and len(words) > 2, match.group(0)
        options: dict[str, list[str]] = {}
        current = None
        for word in words[3:]:
            if word.startswith("--"):
                current = word
                options[current] = []
            else:
                assert current is not None, f"a word before any option in {match.group(0)!r}"
                options[current].append(word)
        found.append((words[2], options))
    return found


def assert_runnable(cfn_model, op: str, options: dict[str, list[str]]) -> None:
    """The command names a real CloudFormation operation, with real parameters, each with a value."""
    name = "".join(part.title() for part in op.split("-"))
    assert name in cfn_model.operation_names, f"no CloudFormation operation {op}"
    members = cfn_model.operation_model(name).input_shape.members
    given = {}
    for option, values in options.items():
        member = "".join(part.title() for part in option[2:].split("-"))
        assert member in members, f"{op} has no option {option}"
        shape = members[member]
        if shape.type_name == "list":
            assert values, f"{option} needs values"
        else:
            assert len(values) == 1, f"{option} takes one value, got {values}"
        given[member] = values
    missing = set(cfn_model.operation_model(name).input_shape.required_members) - set(given)
    assert not missing, f"{op} lacks required {missing}"


@pytest.mark.parametrize("failed", [[], ["MediaBucket", "SessionsTable"]], ids=["no-resources", "with-resources"])
@pytest.mark.parametrize("status", RECOVER_STATUSES)
def test_recovery_gives_runnable_commands_naming_the_stack(cfn_model, status, failed):
    text = states.recovery(STACK, status, failed)
    commands = cli_commands(text)
    assert commands, f"no aws command in {text!r}"
    for op, options in commands:
        assert_runnable(cfn_model, op, options)
        assert options["--stack-name"] == [STACK]


def test_update_rollback_failed_with_resources_continues_or_skips():
    text = states.recovery(STACK, "UPDATE_ROLLBACK_FAILED", ["MediaBucket", "SessionsTable"])
    assert f"continue-update-rollback --stack-name {STACK}" in text
    assert "--resources-to-skip MediaBucket SessionsTable" in text
    ops = cli_commands(text)
    assert ("continue-update-rollback", {"--stack-name": [STACK]}) in ops
    assert ("continue-update-rollback", {"--stack-name": [STACK], "--resources-to-skip": ["MediaBucket", "SessionsTable"]}) in ops


def test_update_rollback_failed_without_resources_is_a_plain_continue():
    assert states.recovery(STACK, "UPDATE_ROLLBACK_FAILED", []) == f"aws cloudformation continue-update-rollback --stack-name {STACK}"


def test_delete_failed_retains_the_stuck_resources():
    text = states.recovery(STACK, "DELETE_FAILED", ["LogsBucket"])
    assert cli_commands(text) == [("delete-stack", {"--stack-name": [STACK], "--retain-resources": ["LogsBucket"]})]
    assert "--retain-resources" not in states.recovery(STACK, "DELETE_FAILED", [])


@pytest.mark.parametrize("status", ["CREATE_FAILED", "UPDATE_FAILED"])
def test_failed_with_rollback_disabled_rolls_back(status):
    assert cli_commands(states.recovery(STACK, status, ["X"])) == [("rollback-stack", {"--stack-name": [STACK]})]


def test_rollback_failed_deletes_the_stack():
    assert [op for op, _ in cli_commands(states.recovery(STACK, "ROLLBACK_FAILED", []))] == ["delete-stack"]


def test_import_rollback_failed_names_the_resources_and_deletes_the_stack():
    text = states.recovery(STACK, "IMPORT_ROLLBACK_FAILED", ["Imported"])
    assert "Imported" in text
    assert [op for op, _ in cli_commands(text)] == ["describe-stack-events", "delete-stack"]


# The operations that act on a stack only in some states: AWS's own documentation of each
# (botocore's service model) names the states it takes.
STATE_BOUND_OPERATIONS = {"continue-update-rollback": "ContinueUpdateRollback", "rollback-stack": "RollbackStack"}


@pytest.mark.parametrize("status", sorted(s for s, st in states.TABLE.items() if st.action == RECOVER))
def test_every_recovery_uses_an_operation_aws_documents_for_that_state(cfn_model, status):
    for op, _ in cli_commands(states.recovery(STACK, status, ["A"])):
        if op in STATE_BOUND_OPERATIONS:
            documentation = cfn_model.operation_model(STATE_BOUND_OPERATIONS[op]).documentation
            assert f"<code>{status}</code>" in documentation, f"{op} is not documented for {status}"


def test_failed_resource_status():
    assert states.failed_resource_status("DELETE_FAILED") == ("DELETE_FAILED",)
    for status in ("UPDATE_ROLLBACK_FAILED", "CREATE_FAILED", "UPDATE_FAILED", "IMPORT_ROLLBACK_FAILED"):
        assert set(states.failed_resource_status(status)) >= {"UPDATE_FAILED", "CREATE_FAILED", "DELETE_FAILED", "IMPORT_FAILED"}
