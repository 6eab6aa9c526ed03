"""tooling/deploy/gate/changesets.py `inspect` on AWS's own answers (botocore Stubber):
what a change set says it does to a stateful resource, its early-validation events
(DescribeEvents) turned into the findings check prints, and the gate's parameter values
taken from the change set itself.

Stubbed on purpose: the local AWS runs no early validation (a change set that creates
an existing bucket is CREATE_COMPLETE there, and DescribeEvents answers an empty list),
so only AWS's answers can show these paths. The request and response shapes are those
of the pinned botocore's CloudFormation model, which the Stubber checks."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from aws_stubs import REGION
from tooling.deploy.gate import changesets, replacement
from tooling.deploy.workspace import Workspace
from tooling.render import naming

pytestmark = pytest.mark.usefixtures("no_real_aws")

ACCOUNT = "123456789012"
STACK = "acme-dev-storage"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/8e2d1f40-0000-11f0-9c3b-0a1b2c3d4e5f"
CHANGE_SET = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/deploy-py-0123/5d3f2a10-7b6c-4e2d-9f8a-1c2b3d4e5f60"
T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
FAILED_REASON = ("The following hook(s)/validation failed: [AWS::EarlyValidation::ResourceExistenceCheck]. "
                 "To troubleshoot Early Validation errors, use the DescribeEvents API for detailed failure information.")

TEMPLATE = {
    "Parameters": {"Prefix": {"Type": "String", "Default": "acme-dev"}},
    "Resources": {
        "MediaBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain",
                        "Properties": {"BucketName": "acme-dev-media"}},
        "SessionsTable": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "Properties": {
            "TableName": {"Fn::Sub": "${Prefix}-sessions"}, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}},
    },
}


@pytest.fixture
def ws(tmp_path):
    def make(local: bool = False, template: dict = TEMPLATE) -> Workspace:
        (tmp_path / "storage.yaml").write_text(json.dumps(template))
        manifest = {"stacks": [{"key": naming.STORAGE, "name": STACK, "template": "storage.yaml"}]}
        return Workspace(env="dev", region=REGION, account_id=ACCOUNT, out_dir=tmp_path, manifest=manifest, local=local)
    return make


def described(status: str, reason: str = "", changes: list | None = None, parameters: dict | None = None) -> dict:
    answer = {"ChangeSetName": "deploy-py-0123", "ChangeSetId": CHANGE_SET, "StackId": STACK_ID, "StackName": STACK,
              "CreationTime": T0, "ExecutionStatus": "AVAILABLE" if status == "CREATE_COMPLETE" else "UNAVAILABLE",
              "Status": status, "Changes": changes or []}
    if reason:
        answer["StatusReason"] = reason
    if parameters:
        answer["Parameters"] = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    return answer


def change_set_answers(cf, status: str, reason: str = "", changes: list | None = None, parameters: dict | None = None) -> None:
    """The waiter's describe, then wait_change_set's own."""
    answer = described(status, reason, changes, parameters)
    cf.add_response("describe_change_set", answer, {"ChangeSetName": CHANGE_SET})
    cf.add_response("describe_change_set", answer, {"ChangeSetName": CHANGE_SET})


def events(cf, *operation_events) -> None:
    cf.add_response("describe_events", {"OperationEvents": list(operation_events)}, {"ChangeSetName": CHANGE_SET})


def event(**fields) -> dict:
    return {"EventId": fields.pop("EventId", "e1"), "StackId": STACK_ID, "OperationId": "op-1", "OperationType": "CREATE_CHANGESET",
            "EventType": "VALIDATION_ERROR", "Timestamp": T0, "ValidationStatus": "FAILED",
            "ValidationFailureMode": "FAIL", **fields}


def no_owner(cf, physical: str) -> None:
    cf.add_client_error("describe_stack_resources", service_error_code="ValidationError", http_status_code=400,
                        service_message=f"Stack for {physical} does not exist", expected_params={"PhysicalResourceId": physical})


def inspect(ws: Workspace, deployed: dict | None = None, old=None, new=None):
    return changesets.inspect(ws, naming.STORAGE, CHANGE_SET, deployed, old, new, gate=deployed is not None)


# --- early validation ------------------------------------------------------------------------

def test_a_name_conflict_is_the_orphan_check_prints_with_its_adopt_fix(ws, stub):
    cf = stub("cloudformation")
    change_set_answers(cf, "FAILED", FAILED_REASON)
    events(cf, event(LogicalResourceId="MediaBucket", ResourceType="AWS::S3::Bucket",
                     ValidationName="AWS::EarlyValidation::ResourceExistenceCheck",
                     ValidationStatusReason="Resource of type 'AWS::S3::Bucket' with identifier 'acme-dev-media' already exists.",
                     ValidationPath="/Resources/MediaBucket/Properties/BucketName"))
    no_owner(cf, "acme-dev-media")
    found = inspect(ws())
    cf.assert_no_pending_responses()
    assert found.outcome == "failed"
    assert [(f.kind, f.subject, f.blocking) for f in found.findings] == [("orphan", "AWS::S3::Bucket acme-dev-media", True)]
    assert found.findings[0].fix.endswith("python deploy.py adopt --env dev")
    assert "already exists" in found.findings[0].detail and "ResourceExistenceCheck" in found.findings[0].detail
    assert "acme-dev-media" in found.reason  # apply's failed outcome names it too


def test_a_name_held_by_another_stack_is_the_other_owner_finding(ws, stub):
    cf = stub("cloudformation")
    change_set_answers(cf, "FAILED", FAILED_REASON)
    events(cf, event(LogicalResourceId="SessionsTable", ResourceType="AWS::DynamoDB::Table",
                     ValidationName="AWS::EarlyValidation::ResourceExistenceCheck",
                     ValidationStatusReason="Resource of type 'AWS::DynamoDB::Table' with identifier 'acme-dev-sessions' already exists."))
    cf.add_response("describe_stack_resources", {"StackResources": [{
        "StackName": "acme-old", "StackId": STACK_ID, "LogicalResourceId": "Sessions", "PhysicalResourceId": "acme-dev-sessions",
        "ResourceType": "AWS::DynamoDB::Table", "Timestamp": T0, "ResourceStatus": "CREATE_COMPLETE"}]},
        {"PhysicalResourceId": "acme-dev-sessions"})
    found = inspect(ws())
    cf.assert_no_pending_responses()
    assert [(f.kind, f.blocking) for f in found.findings] == [("other-owner", True)]
    assert "acme-old (Sessions)" in found.findings[0].detail


def test_a_property_error_is_a_change_set_finding_with_its_path(ws, stub):
    cf = stub("cloudformation")
    change_set_answers(cf, "FAILED", "The following hook(s)/validation failed: [AWS::EarlyValidation::PropertyValidation]")
    events(cf, event(LogicalResourceId="MediaBucket", ResourceType="AWS::S3::Bucket",
                     ValidationName="AWS::EarlyValidation::PropertyValidation",
                     ValidationStatusReason="#: extraneous key [CorsRule] is not permitted",
                     ValidationPath="/Resources/MediaBucket/Properties/CorsConfiguration"))
    found = inspect(ws())
    cf.assert_no_pending_responses()
    [finding] = found.findings
    assert (finding.kind, finding.subject, finding.blocking, finding.override) == ("change-set", "AWS::S3::Bucket MediaBucket", True, None)
    assert "/Resources/MediaBucket/Properties/CorsConfiguration" in finding.detail
    assert "extraneous key [CorsRule]" in finding.detail
    assert "/Resources/MediaBucket/Properties/CorsConfiguration" in finding.fix


def test_a_warning_on_a_ready_change_set_blocks(ws, stub):
    """WARN mode leaves the change set CREATE_COMPLETE: only DescribeEvents says so."""
    cf = stub("cloudformation")
    change_set_answers(cf, "CREATE_COMPLETE")
    events(cf, event(LogicalResourceId="OldBucket", ResourceType="AWS::S3::Bucket", ValidationFailureMode="WARN",
                     ValidationName="AWS::EarlyValidation::S3BucketEmptinessCheck",
                     ValidationStatusReason="Bucket acme-dev-old is not empty and cannot be deleted"))
    found = inspect(ws())
    cf.assert_no_pending_responses()
    assert found.outcome == "ready"
    assert [(f.kind, f.blocking) for f in found.findings] == [("change-set", True)]
    assert "not empty" in found.findings[0].detail and "Retain" in found.findings[0].fix


def test_a_skipped_validation_is_a_note(ws, stub):
    cf = stub("cloudformation")
    change_set_answers(cf, "CREATE_COMPLETE")
    events(cf, event(ValidationName="AWS::EarlyValidation::ResourceExistenceCheck", ValidationStatus="SKIPPED",
                     ValidationStatusReason="Skipped: missing permissions", LogicalResourceId="MediaBucket",
                     ResourceType="AWS::S3::Bucket"))
    found = inspect(ws())
    assert [(f.kind, f.blocking) for f in found.findings] == [("change-set", False)]


@pytest.mark.parametrize("code", ["InvalidAction", "AccessDenied"])
def test_a_failed_change_set_whose_events_cannot_be_read_keeps_its_own_reason(ws, stub, code):
    cf = stub("cloudformation")
    change_set_answers(cf, "FAILED", FAILED_REASON)
    cf.add_client_error("describe_events", service_error_code=code, http_status_code=400, service_message="no")
    found = inspect(ws())
    cf.assert_no_pending_responses()
    [finding] = found.findings
    assert (finding.kind, finding.blocking) == ("change-set", True)
    assert "ResourceExistenceCheck" in finding.detail
    assert f"DescribeEvents: {code}" in found.reason


@pytest.mark.parametrize("local,blocking", [(False, True), (True, False)])
def test_a_ready_change_set_whose_events_cannot_be_read_is_unknown(ws, stub, local, blocking):
    cf = stub("cloudformation")
    change_set_answers(cf, "CREATE_COMPLETE")
    cf.add_client_error("describe_events", service_error_code="InvalidAction", http_status_code=400, service_message="no")
    found = inspect(ws(local=local))
    assert [(f.kind, f.blocking) for f in found.findings] == [("unknown", blocking)]


def test_access_denied_on_describe_events_blocks_on_the_local_aws_too(ws, stub):
    cf = stub("cloudformation")
    change_set_answers(cf, "CREATE_COMPLETE")
    cf.add_client_error("describe_events", service_error_code="AccessDenied", http_status_code=403, service_message="no")
    assert [(f.kind, f.blocking) for f in inspect(ws(local=True)).findings] == [("unknown", True)]


# --- what the change set says of a stateful resource ---------------------------------------------

def modify(logical_id: str, kind: str, replacement_flag: str) -> dict:
    return {"Type": "Resource", "ResourceChange": {"Action": "Modify", "LogicalResourceId": logical_id,
                                                   "ResourceType": kind, "Replacement": replacement_flag, "Details": []}}


def resolver(**values):
    return replacement.resolver_for(TEMPLATE, STACK, ACCOUNT, REGION, values, physical={"MediaBucket": "acme-dev-media"})


def test_replacement_true_on_a_bucket_blocks_though_the_schema_says_modify(ws, stub):
    cf = stub("cloudformation")
    change_set_answers(cf, "CREATE_COMPLETE", changes=[modify("MediaBucket", "AWS::S3::Bucket", "True")])
    events(cf)
    found = inspect(ws(), TEMPLATE, resolver(), resolver())
    assert [(f.kind, f.subject, f.blocking) for f in found.findings] == [("stateful-change", "AWS::S3::Bucket MediaBucket", True)]
    assert found.notes == []  # no longer a mere note


def test_the_gate_uses_the_change_sets_own_parameter_values(ws, stub):
    """Deployed with Prefix acme-dev; the change set runs with Prefix acme-dev2: the
    table's name (!Sub ${Prefix}-sessions, written the same) changes, so it is replaced."""
    cf = stub("cloudformation")
    change_set_answers(cf, "CREATE_COMPLETE", parameters={"Prefix": "acme-dev2"})
    events(cf)
    found = inspect(ws(), TEMPLATE, resolver(Prefix="acme-dev"), resolver(Prefix="acme-dev"))
    assert [(f.kind, f.subject) for f in found.findings] == [("stateful-change", "AWS::DynamoDB::Table SessionsTable")]
    assert "TableName" in found.findings[0].detail
