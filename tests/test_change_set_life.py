"""A created change set is executed or deleted on the way out (gate/changesets.Executing),
on AWS's own answers through botocore's Stubber. What the user sees when ExecuteChangeSet
fails is that failure: the cleanup's own error is added as a note, never in its place."""
from __future__ import annotations

import pytest

from tooling.aws.session import ClientError, describe_error
from tooling.deploy.gate.changesets import Executing

pytestmark = pytest.mark.usefixtures("no_real_aws")

REGION = "us-east-1"
CS = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/deploy-py-abc/1111"
TOKEN = {"ChangeSetName": CS, "ClientRequestToken": "deploy-py-1111"}


def test_an_execute_error_is_reported_not_the_cleanup_error(stub):
    cfn = stub("cloudformation")
    # CloudFormation acted, then the answer failed; the change set is executing, so the delete is refused
    cfn.add_client_error("execute_change_set", "InternalFailure", "internal error", 500, expected_params=TOKEN)
    cfn.add_client_error("delete_change_set", "InvalidChangeSetStatus",
                         "Cannot delete ChangeSet in status EXECUTE_IN_PROGRESS", expected_params={"ChangeSetName": CS})
    with pytest.raises(ClientError) as raised:
        with Executing(REGION, CS) as run:
            run.execute()
    assert raised.value.operation_name == "ExecuteChangeSet"
    assert any("could not be deleted afterwards" in note and "EXECUTE_IN_PROGRESS" in note for note in raised.value.__notes__)
    shown = describe_error(raised.value)  # what apply's summary and adopt print
    assert shown.startswith("AWS ExecuteChangeSet: InternalFailure") and "could not be deleted afterwards" in shown
    cfn.assert_no_pending_responses()


def test_a_change_set_not_executed_is_deleted(stub):
    cfn = stub("cloudformation")
    cfn.add_response("delete_change_set", {}, {"ChangeSetName": CS})
    with Executing(REGION, CS):
        pass  # inspected and refused: never executed
    cfn.assert_no_pending_responses()


def test_an_executed_change_set_is_left_alone(stub):
    cfn = stub("cloudformation")
    cfn.add_response("execute_change_set", {}, TOKEN)
    with Executing(REGION, CS) as run:
        run.execute()
    cfn.assert_no_pending_responses()  # no delete was sent


def test_with_nothing_else_in_flight_a_cleanup_error_is_the_error(stub):
    cfn = stub("cloudformation")
    cfn.add_client_error("delete_change_set", "AccessDenied", "not allowed", 403, expected_params={"ChangeSetName": CS})
    with pytest.raises(ClientError, match="AccessDenied"):
        with Executing(REGION, CS):
            pass


def test_a_saved_plans_change_set_not_executed_is_left_for_the_plan(stub):
    cfn = stub("cloudformation")  # no delete_change_set answer is queued: a delete would fail the stub
    with Executing(REGION, CS, delete=False):
        pass  # apply --plan refused it at inspection: the plan's change set stays as it was
    cfn.assert_no_pending_responses()


def test_describe_change_set_answers_none_for_a_change_set_aws_does_not_know(stub):
    from tooling.aws import cloudformation

    cfn = stub("cloudformation")
    cfn.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{CS}] does not exist", 404,
                         expected_params={"ChangeSetName": CS})
    assert cloudformation.describe_change_set(REGION, CS) is None
    cfn.add_response("describe_change_set", {"ChangeSetId": CS, "Status": "CREATE_COMPLETE", "ExecutionStatus": "OBSOLETE"},
                     {"ChangeSetName": CS})
    assert cloudformation.describe_change_set(REGION, CS)["ExecutionStatus"] == "OBSOLETE"
    cfn.assert_no_pending_responses()
