"""Drift-aware change sets (REVERT_DRIFT) on AWS's documented response shapes, through
botocore's Stubber (the local AWS accepts REVERT_DRIFT but finds no changes, so only
these shapes can show AWS's side); storage protection before execute when AWS takes,
or refuses, SetStackPolicy on a REVIEW_IN_PROGRESS stack; and the pure rules of drift
and convergence."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from botocore.stub import ANY

from aws_stubs import REGION
from tooling.deploy.execute import converge, protection, revert
from tooling.deploy.gate import drift

pytestmark = pytest.mark.usefixtures("no_real_aws")

STACK = "app-dev-storage"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/{STACK}/1"
CHANGE_SET = f"arn:aws:cloudformation:{REGION}:123456789012:changeSet/deploy-py-{'a' * 32}/1"
NOW = datetime(2026, 12, 6, tzinfo=timezone.utc)
POLICY = {"Statement": [{"Effect": "Deny", "Action": "Update:Replace", "Principal": "*", "Resource": "*"}]}


def workspace(local=False):
    return SimpleNamespace(region=REGION, stacks={"storage": {"name": STACK}}, local=local, env="dev",
                           stack_policy=lambda: POLICY)


def drifted_versioning(action="Modify", replacement="False", drift_status="MODIFIED", kind="AWS::S3::Bucket"):
    """One ResourceChange of a drift-aware change set, as the API reference documents it."""
    return {"Type": "Resource", "ResourceChange": {
        "Action": action, "LogicalResourceId": "MediaBucket", "PhysicalResourceId": "media", "ResourceType": kind,
        "Replacement": replacement, "Scope": ["Properties"], "ResourceDriftStatus": drift_status,
        "Details": [{"Target": {"Attribute": "Properties", "Name": "VersioningConfiguration", "Path": "/Properties/VersioningConfiguration/Status",
                                "RequiresRecreation": "Never", "BeforeValue": "Suspended", "AfterValue": "Enabled",
                                "BeforeValueFrom": "ACTUAL_STATE", "AfterValueFrom": "TEMPLATE", "AttributeChangeType": "Modify",
                                "Drift": {"PreviousValue": "Enabled", "ActualValue": "Suspended"}},
                     "Evaluation": "Static", "ChangeSource": "DirectModification"}]}}


def stack(status="UPDATE_COMPLETE"):
    return {"Stacks": [{"StackName": STACK, "StackId": STACK_ID, "StackStatus": status, "CreationTime": NOW,
                        "Capabilities": ["CAPABILITY_IAM"], "Tags": [{"Key": "app", "Value": "x"}],
                        "Parameters": [{"ParameterKey": "ServedOrigin", "ParameterValue": ""}]}]}


def change_set(changes):
    return {"ChangeSetId": CHANGE_SET, "ChangeSetName": f"deploy-py-{'a' * 32}", "StackName": STACK, "StackId": STACK_ID,
            "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "DeploymentMode": "REVERT_DRIFT", "Changes": changes}


def test_revert_drift_sends_a_drift_aware_change_set_and_executes_what_it_shows(stub):
    cf = stub("cloudformation")
    cf.add_response("describe_stacks", stack(), {"StackName": STACK})
    cf.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, {
        "StackName": STACK, "ChangeSetName": ANY, "ClientToken": ANY, "ChangeSetType": "UPDATE", "Capabilities": ["CAPABILITY_IAM"],
        "Tags": [{"Key": "app", "Value": "x"}], "UsePreviousTemplate": True, "DeploymentMode": "REVERT_DRIFT",
        "Parameters": [{"ParameterKey": "ServedOrigin", "UsePreviousValue": True}]})
    cf.add_response("describe_change_set", change_set([drifted_versioning()]), {"ChangeSetName": CHANGE_SET})  # the waiter
    cf.add_response("describe_change_set", change_set([drifted_versioning()]), {"ChangeSetName": CHANGE_SET})
    cf.add_response("describe_stack_events", {"StackEvents": [{"StackId": STACK_ID, "EventId": "e", "StackName": STACK,
                                                               "LogicalResourceId": STACK, "Timestamp": NOW}]}, {"StackName": STACK})
    cf.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET, "ClientRequestToken": ANY})
    cf.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    result = revert._by_change_set(workspace(), print, poll=0)
    cf.assert_no_pending_responses()
    assert result.error is None and result.method == "REVERT_DRIFT change set"
    assert result.done == ["MediaBucket: Modify (MODIFIED)"]
    assert any("Suspended -> Enabled" in n for n in result.notes)


@pytest.mark.parametrize("change, refusal", [
    (drifted_versioning(action="Remove"), "would be removed"),
    (drifted_versioning(replacement="Conditional"), "would be replaced"),
])
def test_revert_drift_that_would_remove_or_replace_storage_is_not_executed(stub, change, refusal):
    cf = stub("cloudformation")
    cf.add_response("describe_stacks", stack(), {"StackName": STACK})
    cf.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, None)
    cf.add_response("describe_change_set", change_set([change]), {"ChangeSetName": CHANGE_SET})
    cf.add_response("describe_change_set", change_set([change]), {"ChangeSetName": CHANGE_SET})
    cf.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})  # never executed
    result = revert._by_change_set(workspace(), print, poll=0)
    cf.assert_no_pending_responses()
    assert refusal in result.error and "not executed" in result.error


def test_a_phantom_change_on_an_in_sync_resource_is_named():
    problems, notes = revert.revert_problems([drifted_versioning(drift_status="IN_SYNC")])
    assert problems == []
    assert any("IN_SYNC" in n and "no drift behind it" in n for n in notes)


def test_storage_gets_both_protections_before_its_change_set_executes_where_aws_takes_them(stub):
    cf = stub("cloudformation")
    cf.add_response("update_termination_protection", {"StackId": STACK_ID}, {"StackName": STACK, "EnableTerminationProtection": True})
    cf.add_response("set_stack_policy", {}, {"StackName": STACK, "StackPolicyBody": json.dumps(POLICY)})
    assert protection.before_execute(workspace(), "storage") == []
    cf.assert_no_pending_responses()


def test_a_refused_stack_policy_on_review_in_progress_is_set_after_and_said(stub):
    cf = stub("cloudformation")
    cf.add_response("update_termination_protection", {"StackId": STACK_ID}, None)
    cf.add_client_error("set_stack_policy", "ValidationError", f"Stack {STACK} is in REVIEW_IN_PROGRESS state and can not be updated.")
    notes = protection.before_execute(workspace(), "storage")
    assert len(notes) == 1 and "set right after" in notes[0]
    assert protection.before_execute(workspace(), "frontend") == []  # only storage


def test_only_this_tools_never_executed_change_sets_are_stale():
    own, inspected, other = f"deploy-py-{'b' * 32}", f"deploy-py-check-{'c' * 32}", "someone-elses"
    summaries = [
        {"ChangeSetName": own, "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE", "CreationTime": NOW},
        {"ChangeSetName": own, "ExecutionStatus": "EXECUTE_COMPLETE", "Status": "CREATE_COMPLETE", "CreationTime": NOW},
        {"ChangeSetName": inspected, "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE", "CreationTime": NOW},
        {"ChangeSetName": inspected + "x", "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE", "CreationTime": NOW - timedelta(hours=2)},
        {"ChangeSetName": inspected, "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE", "CreationTime": NOW - timedelta(hours=2)},
        {"ChangeSetName": other, "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE", "CreationTime": NOW - timedelta(days=2)},
    ]
    stale = converge.stale_change_sets(summaries, NOW)
    assert [(s["ChangeSetName"], s["CreationTime"]) for s in stale] == [(own, NOW), (inspected, NOW - timedelta(hours=2))]


def test_read_back_differences_name_resource_and_property():
    template = {"Resources": {
        "Media": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "media", "VersioningConfiguration": {"Status": "Enabled"},
                                                            "CorsConfiguration": {"Fn::If": ["C", "a", "b"]}}},
        "MediaPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Media"},
                                                                       "PolicyDocument": {"Statement": [{"Sid": "DenyInsecureTransport"}]}}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "t", "DeletionProtectionEnabled": True}}}}
    from tooling.deploy.gate import replacement

    resolver = replacement.resolver_for(template, STACK, "123456789012", REGION, physical={"Media": "media"})
    expected, unresolved = drift.expectations(template, resolver)
    assert unresolved == []  # an Fn::If in a property not read back does not matter
    found = drift.differences(expected, {"media": {"exists": True, "VersioningConfiguration.Status": "Suspended", "BucketPolicy.Sids": []},
                                         "t": {"exists": False}})
    assert {(d.expected.logical_id, d.expected.path, json.dumps(d.actual)) for d in found} == {
        ("Media", "VersioningConfiguration.Status", '"Suspended"'), ("MediaPolicy", "BucketPolicy.Sids", '"no bucket policy"'),
        ("Table", "exists", "false")}
