"""The AWS layer (tooling/aws: cloudformation, lookups, session) against AWS's own
answers, replayed with botocore's Stubber: no server, no network.

The error codes and messages are the ones AWS documents (or answers with), which is
where the local emulator (ministack) differs: these tests prove the code is right
on AWS itself, not only on the emulator."""
from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.exceptions
import pytest
from botocore.stub import ANY, Stubber

from aws_stubs import REGION
from tooling.aws import cloudformation as cfn
from tooling.aws import lookups, session
from tooling.errors import UserError

pytestmark = pytest.mark.usefixtures("no_real_aws")

ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/app/8e2d1f40-0000-11f0-9c3b-0a1b2c3d4e5f"
CHANGE_SET_ID = (f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/deploy-py-0123456789abcdef0123456789abcdef/"
                 "5d3f2a10-7b6c-4e2d-9f8a-1c2b3d4e5f60")
T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


# --- fixtures ---------------------------------------------------------------------------

def capture(stubber: Stubber, operation: str) -> list[dict]:
    """The parameters of every call of `operation` (PascalCase) on the stubbed client."""
    seen: list[dict] = []
    stubber.client.meta.events.register(
        f"provide-client-params.{stubber.client.meta.service_model.service_id.hyphenize()}.{operation}",
        lambda params, **_: seen.append(dict(params)))
    return seen


def stack(status: str, name: str = "app") -> dict:
    return {"StackName": name, "StackId": STACK_ID, "CreationTime": T0, "StackStatus": status}


# --- describe_stack -----------------------------------------------------------------------

def test_describe_stack_returns_the_live_stack(stub):
    cf = stub("cloudformation")
    cf.add_response("describe_stacks", {"Stacks": [stack("UPDATE_COMPLETE")]}, {"StackName": "app"})
    assert cfn.describe_stack(REGION, "app")["StackStatus"] == "UPDATE_COMPLETE"
    cf.assert_no_pending_responses()


def test_describe_stack_missing_is_none(stub):
    cf = stub("cloudformation")
    cf.add_client_error("describe_stacks", service_error_code="ValidationError",
                        service_message="Stack with id app does not exist", http_status_code=400)
    assert cfn.describe_stack(REGION, "app") is None
    cf.assert_no_pending_responses()


def test_describe_stack_deleted_is_none(stub):
    """Described by its id, a deleted stack is still listed, as DELETE_COMPLETE."""
    cf = stub("cloudformation")
    cf.add_response("describe_stacks", {"Stacks": [stack("DELETE_COMPLETE")]}, {"StackName": STACK_ID})
    assert cfn.describe_stack(REGION, STACK_ID) is None
    cf.assert_no_pending_responses()


@pytest.mark.parametrize("code,message,status", [
    ("AccessDenied", "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
                     "cloudformation:DescribeStacks on resource: arn:aws:cloudformation:us-east-1:123456789012:stack/app/*", 403),
    ("Throttling", "Rate exceeded", 400),
    ("ValidationError", "1 validation error detected: Value 'app!' at 'stackName' failed to satisfy constraint: "
                        "Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*", 400),
])
def test_describe_stack_other_errors_propagate(stub, code, message, status):
    cf = stub("cloudformation")
    cf.add_client_error("describe_stacks", service_error_code=code, service_message=message, http_status_code=status)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cfn.describe_stack(REGION, "app")
    assert session.error_code(raised.value) == code
    cf.assert_no_pending_responses()


# --- create_change_set --------------------------------------------------------------------

def create_params(**overrides) -> dict:
    params = {"StackName": "app", "ChangeSetName": ANY, "ClientToken": ANY, "ChangeSetType": "UPDATE",
              "Capabilities": ["CAPABILITY_IAM"], "Tags": [{"Key": "env", "Value": "dev"}], "TemplateBody": ANY}
    params.update(overrides)
    return params


def test_create_change_set_sends_a_unique_name_and_its_token(stub):
    cf = stub("cloudformation")
    sent = capture(cf, "CreateChangeSet")
    for _ in range(2):
        cf.add_response("create_change_set", {"Id": CHANGE_SET_ID, "StackId": STACK_ID}, create_params())
    for _ in range(2):
        assert cfn.create_change_set(REGION, "app", "UPDATE", ["CAPABILITY_IAM"], template_body="{}",
                                     tags={"env": "dev"}) == CHANGE_SET_ID
    cf.assert_no_pending_responses()
    for params in sent:
        token = params["ClientToken"]
        assert re.fullmatch(r"[0-9a-f]{32}", token)
        assert params["ChangeSetName"] == f"deploy-py-{token}"
        assert params["TemplateBody"] == "{}" and "TemplateURL" not in params
    assert sent[0]["ClientToken"] != sent[1]["ClientToken"]


def test_create_change_set_by_url_with_import(stub):
    cf = stub("cloudformation")
    resources = [{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Media",
                  "ResourceIdentifier": {"BucketName": "media-123456789012"}}]
    params = create_params(ChangeSetType="IMPORT", Tags=[], ResourcesToImport=resources,
                           TemplateURL="https://s3.amazonaws.com/b/t.yaml")
    del params["TemplateBody"]
    cf.add_response("create_change_set", {"Id": CHANGE_SET_ID}, params)
    assert cfn.create_change_set(REGION, "app", "IMPORT", ["CAPABILITY_IAM"], template_url="https://s3.amazonaws.com/b/t.yaml",
                                 resources_to_import=resources) == CHANGE_SET_ID
    cf.assert_no_pending_responses()


def test_create_change_set_already_exists_is_the_earlier_attempt(stub):
    """The first attempt reached CloudFormation and its answer was lost: the retry
    is told the (unique) name exists, and the existing change set is the result."""
    cf = stub("cloudformation")
    created = capture(cf, "CreateChangeSet")
    described = capture(cf, "DescribeChangeSet")
    cf.add_client_error("create_change_set", service_error_code="AlreadyExistsException",
                        service_message="ChangeSet deploy-py-x already exists", http_status_code=400)
    cf.add_response("describe_change_set", {"ChangeSetId": CHANGE_SET_ID, "StackName": "app", "Status": "CREATE_PENDING"},
                    {"ChangeSetName": ANY, "StackName": "app"})
    assert cfn.create_change_set(REGION, "app", "UPDATE", ["CAPABILITY_IAM"], template_body="{}", tags={"env": "dev"}) == CHANGE_SET_ID
    cf.assert_no_pending_responses()
    assert described[0]["ChangeSetName"] == created[0]["ChangeSetName"]


@pytest.mark.parametrize("code,message", [
    ("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_NAMED_IAM]"),
    ("LimitExceededException", "ChangeSet limit exceeded for stack app"),
    ("ValidationError", "Template format error: unsupported structure."),
])
def test_create_change_set_other_errors_propagate(stub, code, message):
    cf = stub("cloudformation")
    cf.add_client_error("create_change_set", service_error_code=code, service_message=message, http_status_code=400)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cfn.create_change_set(REGION, "app", "UPDATE", ["CAPABILITY_IAM"], template_body="{}")
    assert session.error_code(raised.value) == code
    cf.assert_no_pending_responses()  # and no DescribeChangeSet was asked for


# --- execute_change_set --------------------------------------------------------------------

EXECUTE_PARAMS = {"ChangeSetName": CHANGE_SET_ID, "ClientRequestToken": "deploy-py-5d3f2a10-7b6c-4e2d-9f8a-1c2b3d4e5f60"}


def test_execute_change_set_sends_a_request_token(stub):
    cf = stub("cloudformation")
    cf.add_response("execute_change_set", {}, EXECUTE_PARAMS)
    cfn.execute_change_set(REGION, CHANGE_SET_ID)
    cf.assert_no_pending_responses()


def invalid_status(cf: Stubber, execution_status: str) -> None:
    cf.add_client_error("execute_change_set", service_error_code="InvalidChangeSetStatus",
                        service_message=f"ChangeSet [{CHANGE_SET_ID}] cannot be executed in its current execution status of [{execution_status}]",
                        http_status_code=400, expected_params=EXECUTE_PARAMS)
    cf.add_response("describe_change_set", {"ChangeSetId": CHANGE_SET_ID, "Status": "CREATE_COMPLETE",
                                            "ExecutionStatus": execution_status}, {"ChangeSetName": CHANGE_SET_ID})


@pytest.mark.parametrize("execution_status", ["EXECUTE_IN_PROGRESS", "EXECUTE_COMPLETE"])
def test_execute_retried_after_a_lost_answer_is_success(stub, execution_status):
    cf = stub("cloudformation")
    invalid_status(cf, execution_status)
    cfn.execute_change_set(REGION, CHANGE_SET_ID)  # returns normally
    cf.assert_no_pending_responses()


@pytest.mark.parametrize("execution_status", ["AVAILABLE", "UNAVAILABLE", "EXECUTE_FAILED", "OBSOLETE"])
def test_execute_refused_in_other_states_raises(stub, execution_status):
    cf = stub("cloudformation")
    invalid_status(cf, execution_status)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cfn.execute_change_set(REGION, CHANGE_SET_ID)
    assert session.error_code(raised.value) == "InvalidChangeSetStatus"
    cf.assert_no_pending_responses()


def test_execute_other_errors_propagate_without_a_describe(stub):
    cf = stub("cloudformation")
    cf.add_client_error("execute_change_set", service_error_code="ChangeSetNotFound",
                        service_message=f"ChangeSet [{CHANGE_SET_ID}] does not exist", http_status_code=404)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cfn.execute_change_set(REGION, CHANGE_SET_ID)
    assert session.error_code(raised.value) == "ChangeSetNotFound"
    cf.assert_no_pending_responses()


# --- wait_change_set -----------------------------------------------------------------------

def change(logical_id: str) -> dict:
    return {"Type": "Resource", "ResourceChange": {"Action": "Add", "LogicalResourceId": logical_id,
                                                   "ResourceType": "AWS::SNS::Topic"}}


def described(status: str, **more) -> dict:
    return {"ChangeSetId": CHANGE_SET_ID, "StackName": "app", "Status": status, **more}


def test_wait_change_set_concatenates_every_page_of_changes(stub):
    cf = stub("cloudformation")
    # the waiter's polls
    cf.add_response("describe_change_set", described("CREATE_PENDING"), {"ChangeSetName": CHANGE_SET_ID})
    cf.add_response("describe_change_set", described("CREATE_IN_PROGRESS"), {"ChangeSetName": CHANGE_SET_ID})
    cf.add_response("describe_change_set", described("CREATE_COMPLETE"), {"ChangeSetName": CHANGE_SET_ID})
    # the description, page by page
    cf.add_response("describe_change_set", described("CREATE_COMPLETE", Changes=[change("A"), change("B")], NextToken="p2"),
                    {"ChangeSetName": CHANGE_SET_ID})
    cf.add_response("describe_change_set", described("CREATE_COMPLETE", Changes=[change("C")], NextToken="p3"),
                    {"ChangeSetName": CHANGE_SET_ID, "NextToken": "p2"})
    cf.add_response("describe_change_set", described("CREATE_COMPLETE", Changes=[change("D")]),
                    {"ChangeSetName": CHANGE_SET_ID, "NextToken": "p3"})
    result = cfn.wait_change_set(REGION, CHANGE_SET_ID, timeout=1, poll=0.001)
    assert result["Status"] == "CREATE_COMPLETE"
    assert [c["ResourceChange"]["LogicalResourceId"] for c in result["Changes"]] == ["A", "B", "C", "D"]
    cf.assert_no_pending_responses()


def test_wait_change_set_returns_a_failed_change_set_with_its_reason(stub):
    cf = stub("cloudformation")
    reason = "The submitted information didn't contain changes. Submit different information to create a change set."
    cf.add_response("describe_change_set", described("FAILED", StatusReason=reason), {"ChangeSetName": CHANGE_SET_ID})
    cf.add_response("describe_change_set", described("FAILED", StatusReason=reason), {"ChangeSetName": CHANGE_SET_ID})
    result = cfn.wait_change_set(REGION, CHANGE_SET_ID, timeout=1, poll=0.001)
    assert (result["Status"], result["StatusReason"], result["Changes"]) == ("FAILED", reason, [])
    cf.assert_no_pending_responses()


def test_wait_change_set_at_the_deadline_returns_it_still_computing(stub):
    cf = stub("cloudformation")
    for _ in range(3):  # two polls (timeout / poll), then the description
        cf.add_response("describe_change_set", described("CREATE_IN_PROGRESS"), {"ChangeSetName": CHANGE_SET_ID})
    result = cfn.wait_change_set(REGION, CHANGE_SET_ID, timeout=0.002, poll=0.001)
    assert result["Status"] == "CREATE_IN_PROGRESS"
    cf.assert_no_pending_responses()


# --- list_imports, stack_events ------------------------------------------------------------

def test_list_imports_none_is_empty(stub):
    cf = stub("cloudformation")
    cf.add_client_error("list_imports", service_error_code="ValidationError",
                        service_message="Export 'app-storage-BucketName' is not imported by any stack.", http_status_code=400)
    assert cfn.list_imports(REGION, "app-storage-BucketName") == []
    cf.assert_no_pending_responses()


def test_list_imports_every_page(stub):
    cf = stub("cloudformation")
    cf.add_response("list_imports", {"Imports": ["app-backend", "app-frontend"], "NextToken": "n2"}, {"ExportName": "e"})
    cf.add_response("list_imports", {"Imports": ["app-operations"]}, {"ExportName": "e", "NextToken": "n2"})
    assert cfn.list_imports(REGION, "e") == ["app-backend", "app-frontend", "app-operations"]
    cf.assert_no_pending_responses()


def test_list_imports_other_errors_propagate(stub):
    cf = stub("cloudformation")
    cf.add_client_error("list_imports", service_error_code="ValidationError",
                        service_message="Export 'e' does not exist", http_status_code=400)
    with pytest.raises(botocore.exceptions.ClientError):
        cfn.list_imports(REGION, "e")
    cf.assert_no_pending_responses()


def stack_event(seconds: float, logical_id: str) -> dict:
    return {"StackId": STACK_ID, "EventId": f"{logical_id}-{seconds}", "StackName": "app", "LogicalResourceId": logical_id,
            "Timestamp": T0 + dt.timedelta(seconds=seconds), "ResourceStatus": "UPDATE_COMPLETE"}


def test_stack_events_since_keeps_only_later_events_and_stops_paging(stub):
    cf = stub("cloudformation")
    cf.add_response("describe_stack_events", {"StackEvents": [stack_event(30, "D"), stack_event(20, "C")], "NextToken": "n2"},
                    {"StackName": "app"})
    # T0 itself is not after T0; the page reaches older events, so no further page is asked for
    cf.add_response("describe_stack_events", {"StackEvents": [stack_event(10, "B"), stack_event(0, "A"), stack_event(-5, "Z")],
                                              "NextToken": "n3"},
                    {"StackName": "app", "NextToken": "n2"})
    events = cfn.stack_events(REGION, "app", since=T0)
    assert [e["LogicalResourceId"] for e in events] == ["D", "C", "B"]
    cf.assert_no_pending_responses()


def test_stack_events_without_since_reads_every_page(stub):
    cf = stub("cloudformation")
    cf.add_response("describe_stack_events", {"StackEvents": [stack_event(30, "D")], "NextToken": "n2"}, {"StackName": "app"})
    cf.add_response("describe_stack_events", {"StackEvents": [stack_event(-30, "A")]}, {"StackName": "app", "NextToken": "n2"})
    assert [e["LogicalResourceId"] for e in cfn.stack_events(REGION, "app")] == ["D", "A"]
    cf.assert_no_pending_responses()


def test_stack_events_of_a_missing_stack_are_none(stub):
    cf = stub("cloudformation")
    cf.add_client_error("describe_stack_events", service_error_code="ValidationError",
                        service_message="Stack [app] does not exist", http_status_code=400)
    assert cfn.stack_events(REGION, "app", since=T0) == []
    cf.assert_no_pending_responses()


def change_set_summary(name: str) -> dict:
    return {"StackName": "app", "ChangeSetName": name, "ChangeSetId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/{name}/1",
            "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE"}


def test_list_change_sets_reads_every_page(stub):
    cf = stub("cloudformation")
    cf.add_response("list_change_sets", {"Summaries": [change_set_summary("a")], "NextToken": "n2"}, {"StackName": "app"})
    cf.add_response("list_change_sets", {"Summaries": [change_set_summary("b")]}, {"StackName": "app", "NextToken": "n2"})
    assert [c["ChangeSetName"] for c in cfn.list_change_sets(REGION, "app")] == ["a", "b"]
    cf.assert_no_pending_responses()


def test_list_change_sets_of_a_missing_stack_is_empty(stub):
    cf = stub("cloudformation")
    cf.add_client_error("list_change_sets", service_error_code="ValidationError",
                        service_message="Stack [app] does not exist", http_status_code=400)
    assert cfn.list_change_sets(REGION, "app") == []
    cf.assert_no_pending_responses()


# --- resources_by_physical_id --------------------------------------------------------------

def test_resources_by_physical_id_unowned_on_aws_is_empty(stub):
    cf = stub("cloudformation")
    cf.add_client_error("describe_stack_resources", service_error_code="ValidationError",
                        service_message="Stack for my-bucket does not exist", http_status_code=400,
                        expected_params={"PhysicalResourceId": "my-bucket"})
    assert cfn.resources_by_physical_id(REGION, "my-bucket") == []
    cf.assert_no_pending_responses()


def test_resources_by_physical_id_emulator_answer_is_none(stub):
    """The local AWS answers every such call this way, owned or not: it cannot tell."""
    cf = stub("cloudformation")
    cf.add_client_error("describe_stack_resources", service_error_code="ValidationError",
                        service_message="Stack [] does not exist", http_status_code=400)
    assert cfn.resources_by_physical_id(REGION, "my-bucket") is None
    cf.assert_no_pending_responses()


def test_resources_by_physical_id_owner(stub):
    cf = stub("cloudformation")
    held = [{"StackName": "app", "StackId": STACK_ID, "LogicalResourceId": "Media", "PhysicalResourceId": "my-bucket",
             "ResourceType": "AWS::S3::Bucket", "Timestamp": T0, "ResourceStatus": "CREATE_COMPLETE"}]
    cf.add_response("describe_stack_resources", {"StackResources": held}, {"PhysicalResourceId": "my-bucket"})
    assert cfn.resources_by_physical_id(REGION, "my-bucket") == held
    cf.assert_no_pending_responses()


@pytest.mark.parametrize("code,message", [
    ("ValidationError", "Stack for other-bucket does not exist"),  # an answer about another id is not ours
    ("AccessDenied", "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: cloudformation:DescribeStackResources"),
])
def test_resources_by_physical_id_other_errors_propagate(stub, code, message):
    cf = stub("cloudformation")
    cf.add_client_error("describe_stack_resources", service_error_code=code, service_message=message, http_status_code=400)
    with pytest.raises(botocore.exceptions.ClientError):
        cfn.resources_by_physical_id(REGION, "my-bucket")
    cf.assert_no_pending_responses()


# --- lookups -------------------------------------------------------------------------------

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
NAME = "app-dev-thing"
DENIED = f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform this action"


def error(code: str, message: str, status: int = 400) -> dict:
    return {"service_error_code": code, "service_message": message, "http_status_code": status}


# type -> how its lookup asks, and AWS's answers: service, method, Operation, params,
# an "exists" answer, a "missing" answer (an error, or an answer that lists nothing),
# the service's access-denied error, and an unimplemented-operation error.
CASES = {
    "AWS::DynamoDB::Table": dict(
        service="dynamodb", method="describe_table", op="DescribeTable", params={"TableName": NAME},
        exists={"Table": {"TableName": NAME, "TableStatus": "ACTIVE"}},
        missing=error("ResourceNotFoundException", f"Requested resource not found: Table: {NAME} not found"),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::Logs::LogGroup": dict(
        service="logs", method="describe_log_groups", op="DescribeLogGroups", params={"logGroupNamePrefix": NAME},
        exists={"logGroups": [{"logGroupName": NAME}]}, missing={"logGroups": []},
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::Lambda::Function": dict(
        service="lambda", method="get_function", op="GetFunction", params={"FunctionName": NAME},
        exists={"Configuration": {"FunctionName": NAME}},
        missing=error("ResourceNotFoundException", f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{NAME}", 404),
        denied=error("AccessDeniedException", DENIED, 403), unsupported=error("UnknownOperationException", "", 404)),
    "AWS::CloudWatch::Alarm": dict(
        service="cloudwatch", method="describe_alarms", op="DescribeAlarms",
        params={"AlarmNames": [NAME], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
        exists={"MetricAlarms": [{"AlarmName": NAME}], "CompositeAlarms": []},
        missing={"MetricAlarms": [], "CompositeAlarms": []},
        denied=error("AccessDenied", DENIED, 403), unsupported=error("InvalidAction", "")),
    "AWS::CloudWatch::Dashboard": dict(
        service="cloudwatch", method="get_dashboard", op="GetDashboard", params={"DashboardName": NAME},
        exists={"DashboardName": NAME, "DashboardBody": "{}"},
        missing=error("ResourceNotFound", f"Dashboard {NAME} does not exist", 404),
        denied=error("AccessDenied", DENIED, 403), unsupported=error("InvalidAction", "")),
    "AWS::CloudWatch::MetricStream": dict(
        service="cloudwatch", method="get_metric_stream", op="GetMetricStream", params={"Name": NAME},
        exists={"Name": NAME, "State": "running"},
        missing=error("ResourceNotFoundException", f"Metric stream {NAME} not found", 404),
        denied=error("AccessDenied", DENIED, 403), unsupported=error("InvalidAction", "")),
    "AWS::SNS::Topic": dict(
        service="sns", method="get_topic_attributes", op="GetTopicAttributes",
        params={"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{NAME}"},
        exists={"Attributes": {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{NAME}"}},
        missing=error("NotFound", "Topic does not exist", 404),
        denied=error("AuthorizationError", DENIED, 403), unsupported=error("InvalidAction", "")),
    "AWS::KinesisFirehose::DeliveryStream": dict(
        service="firehose", method="describe_delivery_stream", op="DescribeDeliveryStream", params={"DeliveryStreamName": NAME},
        exists={"DeliveryStreamDescription": {
            "DeliveryStreamName": NAME, "DeliveryStreamARN": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{NAME}",
            "DeliveryStreamStatus": "ACTIVE", "DeliveryStreamType": "DirectPut", "VersionId": "1", "Destinations": [],
            "HasMoreDestinations": False}},
        missing=error("ResourceNotFoundException", f"Firehose {NAME} under account {ACCOUNT} not found."),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::CodeBuild::Project": dict(
        service="codebuild", method="batch_get_projects", op="BatchGetProjects", params={"names": [NAME]},
        exists={"projects": [{"name": NAME}]},
        missing={"projects": [], "projectsNotFound": [NAME]},
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::CodePipeline::Pipeline": dict(
        service="codepipeline", method="get_pipeline", op="GetPipeline", params={"name": NAME},
        exists={"pipeline": {"name": NAME, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/p", "stages": []}},
        missing=error("PipelineNotFoundException", f"Account '{ACCOUNT}' does not have a pipeline with name '{NAME}'"),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::IAM::Role": dict(
        service="iam", method="get_role", op="GetRole", params={"RoleName": NAME},
        exists={"Role": {"Path": "/", "RoleName": NAME, "RoleId": "AROAEXAMPLEEXAMPLE01", "Arn": f"arn:aws:iam::{ACCOUNT}:role/{NAME}",
                         "CreateDate": T0}},
        missing=error("NoSuchEntity", f"The role with name {NAME} cannot be found.", 404),
        denied=error("AccessDenied", DENIED, 403), unsupported=error("InvalidAction", "")),
    "AWS::Events::Rule": dict(
        service="events", method="describe_rule", op="DescribeRule", params={"Name": NAME},
        exists={"Name": NAME, "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{NAME}"},
        missing=error("ResourceNotFoundException", f"Rule {NAME} does not exist on EventBus default."),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::Logs::DeliverySource": dict(
        service="logs", method="get_delivery_source", op="GetDeliverySource", params={"name": NAME},
        exists={"deliverySource": {"name": NAME}},
        missing=error("ResourceNotFoundException", "Delivery source not found"),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::Logs::DeliveryDestination": dict(
        service="logs", method="get_delivery_destination", op="GetDeliveryDestination", params={"name": NAME},
        exists={"deliveryDestination": {"name": NAME}},
        missing=error("ResourceNotFoundException", "Delivery destination not found"),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::KMS::Alias": dict(
        service="kms", method="describe_key", op="DescribeKey", params={"KeyId": NAME},
        exists={"KeyMetadata": {"KeyId": KEY_ID, "KeyState": "Enabled"}},
        missing=error("NotFoundException", f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:{NAME} is not found."),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::KMS::Key": dict(
        service="kms", method="describe_key", op="DescribeKey", params={"KeyId": NAME},
        exists={"KeyMetadata": {"KeyId": KEY_ID, "KeyState": "PendingDeletion"}},  # still there: it still encrypts
        missing=error("NotFoundException", f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{NAME}' does not exist"),
        denied=error("AccessDeniedException", DENIED), unsupported=error("UnknownOperationException", "")),
    "AWS::S3::Bucket": dict(
        service="s3", method="head_bucket", op="HeadBucket", params={"Bucket": NAME},
        exists={"BucketRegion": REGION},
        missing=error("404", "Not Found", 404),  # HEAD has no body: the code is the status
        denied=None, unsupported=error("NotImplemented", "", 501)),
}


def test_a_key_is_found_by_its_alias(stub):
    stubber = stub("kms")
    stubber.add_response("describe_key", {"KeyMetadata": {"KeyId": KEY_ID, "KeyState": "Enabled"}}, {"KeyId": "alias/x-storage"})
    found = lookups.key_behind_alias(REGION, "alias/x-storage")
    assert (found.lookup.state, found.key_id, found.key_state) == ("exists", KEY_ID, "Enabled")
    stubber.add_client_error("describe_key", "NotFoundException", "Alias arn:aws:kms:eu-west-1:1:alias/y is not found.",
                             expected_params={"KeyId": "alias/y"})
    assert lookups.key_behind_alias(REGION, "alias/y").lookup.state == "missing"
    stubber.add_client_error("describe_key", "AccessDeniedException", DENIED, expected_params={"KeyId": "alias/z"})
    denied = lookups.key_behind_alias(REGION, "alias/z")
    assert denied.lookup.state == "unknown" and denied.key_id == ""


def test_every_lookup_has_a_case():
    assert set(CASES) == set(lookups.LOOKUPS)


def answer(stubber: Stubber, case: dict, outcome) -> None:
    if "service_error_code" in outcome:
        stubber.add_client_error(case["method"], expected_params=case["params"], **outcome)
    else:
        stubber.add_response(case["method"], outcome, case["params"])


@pytest.mark.parametrize("resource_type", sorted(CASES))
def test_lookup_exists(stub, resource_type):
    case = CASES[resource_type]
    stubber = stub(case["service"])
    answer(stubber, case, case["exists"])
    assert lookups.lookup(REGION, ACCOUNT, resource_type, NAME).state == "exists"
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("resource_type", sorted(CASES))
def test_lookup_missing_in_the_services_own_words(stub, resource_type):
    case = CASES[resource_type]
    stubber = stub(case["service"])
    answer(stubber, case, case["missing"])
    assert lookups.lookup(REGION, ACCOUNT, resource_type, NAME) == lookups.MISSING
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("resource_type", sorted(t for t in CASES if CASES[t]["denied"]))
def test_lookup_access_denied_is_unknown_naming_the_operation(stub, resource_type):
    case = CASES[resource_type]
    stubber = stub(case["service"])
    answer(stubber, case, case["denied"])
    found = lookups.lookup(REGION, ACCOUNT, resource_type, NAME)
    assert (found.state, found.unsupported) == ("unknown", False)
    assert f"AWS {case['op']}: {case['denied']['service_error_code']}" in found.reason
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("resource_type", sorted(CASES))
def test_lookup_unimplemented_operation_is_unknown_and_unsupported(stub, resource_type):
    """S3 included: a HEAD answer has no body, so its code is the status (501)."""
    case = CASES[resource_type]
    stubber = stub(case["service"])
    answer(stubber, case, case["unsupported"])
    found = lookups.lookup(REGION, ACCOUNT, resource_type, NAME)
    assert (found.state, found.unsupported) == ("unknown", True)
    assert case["op"] in found.reason
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("code,status,state", [
    ("404", 404, "missing"),
    ("500", 500, "unknown"),
    ("400", 400, "unknown"),
])
def test_bucket_head_status(stub, code, status, state):
    s3 = stub("s3")
    s3.add_client_error("head_bucket", service_error_code=code, service_message="", http_status_code=status,
                        expected_params={"Bucket": NAME})
    found = lookups.lookup(REGION, ACCOUNT, "AWS::S3::Bucket", NAME)
    assert found.state == state
    if state == "unknown":
        assert f"AWS HeadBucket: {code}" in found.reason
    s3.assert_no_pending_responses()


# HeadBucket's 403 says only "you do not have permission" (AWS's HeadBucket reference:
# "If the bucket does not exist or you do not have permission to access it, the HEAD
# request returns a generic 400 Bad Request, 403 Forbidden or 404 Not Found code"). It
# holds for this account's own bucket under a restrictive policy as much as for another
# account's. ListBuckets "returns a list of all buckets owned by the authenticated sender
# of the request": that decides which.

def head_denied(s3: Stubber) -> None:
    s3.add_client_error("head_bucket", service_error_code="403", service_message="", http_status_code=403,
                        expected_params={"Bucket": NAME})


OWNER = {"DisplayName": "dev", "ID": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}


def test_bucket_403_not_among_this_accounts_buckets_is_foreign(stub):
    s3 = stub("s3")
    head_denied(s3)
    s3.add_response("list_buckets", {"Buckets": [{"Name": f"{NAME}-logs", "CreationDate": T0}], "Owner": OWNER, "Prefix": NAME},
                    {"Prefix": NAME})
    found = lookups.lookup(REGION, ACCOUNT, "AWS::S3::Bucket", NAME)
    assert found.state == "foreign"
    assert "403" in found.reason and "ListBuckets" in found.reason
    s3.assert_no_pending_responses()


def test_bucket_403_among_this_accounts_buckets_exists(stub):
    """The caller may not read it, but the account owns it: not another account's."""
    s3 = stub("s3")
    head_denied(s3)
    s3.add_response("list_buckets", {"Buckets": [{"Name": f"{NAME}-a", "CreationDate": T0}], "Owner": OWNER,
                                     "ContinuationToken": "next", "Prefix": NAME}, {"Prefix": NAME})
    s3.add_response("list_buckets", {"Buckets": [{"Name": NAME, "CreationDate": T0}], "Owner": OWNER, "Prefix": NAME},
                    {"Prefix": NAME, "ContinuationToken": "next"})
    assert lookups.lookup(REGION, ACCOUNT, "AWS::S3::Bucket", NAME).state == "exists"
    s3.assert_no_pending_responses()


def test_bucket_403_when_listbuckets_is_denied_too_is_unknown_with_the_reason(stub):
    s3 = stub("s3")
    head_denied(s3)
    s3.add_client_error("list_buckets", service_error_code="AccessDenied", http_status_code=403,
                        service_message=f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: s3:ListAllMyBuckets",
                        expected_params={"Prefix": NAME})
    found = lookups.lookup(REGION, ACCOUNT, "AWS::S3::Bucket", NAME)
    assert (found.state, found.unsupported) == ("unknown", False)
    assert "AWS HeadBucket: 403" in found.reason and "AWS ListBuckets: AccessDenied" in found.reason
    s3.assert_no_pending_responses()


def test_log_group_prefix_match_is_not_the_group(stub):
    logs = stub("logs")
    logs.add_response("describe_log_groups", {"logGroups": [{"logGroupName": "/aws/lambda/x-other"}]},
                      {"logGroupNamePrefix": "/aws/lambda/x"})
    assert lookups.lookup(REGION, ACCOUNT, "AWS::Logs::LogGroup", "/aws/lambda/x") == lookups.MISSING
    logs.assert_no_pending_responses()


def test_log_group_found_on_a_later_page(stub):
    logs = stub("logs")
    logs.add_response("describe_log_groups", {"logGroups": [{"logGroupName": "/aws/lambda/x-a"}], "nextToken": "n2"},
                      {"logGroupNamePrefix": "/aws/lambda/x"})
    logs.add_response("describe_log_groups", {"logGroups": [{"logGroupName": "/aws/lambda/x"}]},
                      {"logGroupNamePrefix": "/aws/lambda/x", "nextToken": "n2"})
    assert lookups.lookup(REGION, ACCOUNT, "AWS::Logs::LogGroup", "/aws/lambda/x").state == "exists"
    logs.assert_no_pending_responses()


def test_composite_alarm_exists(stub):
    cw = stub("cloudwatch")
    cw.add_response("describe_alarms", {"MetricAlarms": [], "CompositeAlarms": [{"AlarmName": NAME}]},
                    CASES["AWS::CloudWatch::Alarm"]["params"])
    assert lookups.lookup(REGION, ACCOUNT, "AWS::CloudWatch::Alarm", NAME).state == "exists"
    cw.assert_no_pending_responses()


def test_type_without_lookup_is_unknown():
    found = lookups.lookup(REGION, ACCOUNT, "AWS::SQS::Queue", "q")
    assert found.state == "unknown" and "no lookup" in found.reason and "AWS::SQS::Queue" in found.reason


def test_lookup_sdk_failure_is_unknown(stub, monkeypatch):
    """A failure before any answer (no credentials, no endpoint) is unknown, never missing."""
    fails = botocore.exceptions.EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")

    def raise_(**_):
        raise fails
    monkeypatch.setattr(stub("dynamodb").client, "describe_table", raise_)
    found = lookups.lookup(REGION, ACCOUNT, "AWS::DynamoDB::Table", NAME)
    assert found.state == "unknown" and "Could not connect" in found.reason


# --- session -------------------------------------------------------------------------------

def test_caller_identity_without_credentials_is_a_user_error():
    sts = session.client("sts", REGION)  # the real client: no credentials anywhere (see no_real_aws)

    def never_send(**_):
        raise AssertionError("a request was about to be sent")
    sts.meta.events.register("before-send", never_send)
    with pytest.raises(UserError) as raised:
        session.caller_identity(REGION, hint=" or pass --profile")
    assert raised.value.status == 2
    assert str(raised.value).startswith("AWS credentials: none found")
    assert str(raised.value).endswith(" or pass --profile)")


def test_caller_identity_client_error_is_a_user_error_naming_sts(stub):
    sts = stub("sts")
    sts.add_client_error("get_caller_identity", service_error_code="InvalidClientTokenId",
                         service_message="The security token included in the request is invalid.", http_status_code=403)
    with pytest.raises(UserError) as raised:
        session.caller_identity(REGION)
    assert raised.value.status == 2
    assert str(raised.value) == "STS GetCallerIdentity at AWS: The security token included in the request is invalid."
    sts.assert_no_pending_responses()


def test_caller_identity_answer(stub):
    sts = stub("sts")
    sts.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/dev", "UserId": "AIDA"}, {})
    assert session.caller_identity(REGION)["Account"] == ACCOUNT
    sts.assert_no_pending_responses()


def test_retry_environment():
    assert session.retry_environment() == {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": str(session.MAX_ATTEMPTS)}


def test_clients_use_standard_retries():
    assert session.client("cloudformation", REGION).meta.config.retries["mode"] == "standard"


def test_sam_gets_the_same_number_of_attempts_as_the_clients(monkeypatch):
    """botocore reads Config(retries={"max_attempts": N}) as N retries (N+1 attempts), but
    AWS_MAX_ATTEMPTS=N as N attempts in all: both sides must count attempts in all."""
    ours = session.client("cloudformation", REGION).meta.config.retries["total_max_attempts"]
    for key, value in session.retry_environment().items():
        monkeypatch.setenv(key, value)
    child = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    theirs = child.client("cloudformation", region_name=REGION).meta.config.retries
    assert theirs["mode"] == "standard"
    assert ours == theirs["total_max_attempts"] == session.MAX_ATTEMPTS


def test_one_session_and_one_client_per_service_and_region(monkeypatch):
    made = []
    real = boto3.session.Session

    def counting(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]
    monkeypatch.setattr(session.boto3.session, "Session", counting)

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(lambda _: session.client("logs", REGION), range(16)))
    assert all(c is clients[0] for c in clients)
    assert session.client("logs", REGION) is clients[0]
    assert session.client("logs", "eu-west-1") is not clients[0]
    assert session.client("logs", "eu-west-1").meta.region_name == "eu-west-1"
    assert session.client("sts", REGION) is not clients[0]
    assert session.session() is session.session() is made[0]
    assert len(made) == 1

    session.reset()
    assert session.client("logs", REGION) is not clients[0]
    assert len(made) == 2


def test_describe_error_is_one_line_with_code_and_message():
    exc = botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeStacks")
    assert session.describe_error(exc) == "AWS DescribeStacks: AccessDenied: no"


def test_a_service_role_is_named_on_every_change_set_created_after_it_is_set(stub):
    """deploy.py apply --role-arn: CloudFormation creates the resources with that role (RoleARN);
    botocore checks the request against CloudFormation's own model."""
    role = "arn:aws:iam::123456789012:role/ai-social-media-dev/cloudformation/ExecutionRole-ABC"
    cf = stub("cloudformation")
    cf.add_response("create_change_set", {"Id": CHANGE_SET_ID}, create_params(RoleARN=role))
    cf.add_response("create_change_set", {"Id": CHANGE_SET_ID}, create_params())
    cfn.use_service_role(role)
    try:
        assert cfn.create_change_set(REGION, "app", "UPDATE", ["CAPABILITY_IAM"], template_body="{}", tags={"env": "dev"}) == CHANGE_SET_ID
    finally:
        cfn.use_service_role(None)
    assert cfn.create_change_set(REGION, "app", "UPDATE", ["CAPABILITY_IAM"], template_body="{}", tags={"env": "dev"}) == CHANGE_SET_ID


# --- early validation: DescribeEvents ------------------------------------------------------------
# Shapes as botocore's model of the pinned release (1.44.8) defines DescribeEvents and
# OperationEvent (EventType VALIDATION_ERROR, ValidationName, ValidationStatus FAILED|SKIPPED,
# ValidationStatusReason, ValidationPath, ValidationFailureMode FAIL|WARN); the names and the
# reason text follow what CloudFormation answers (AWS::EarlyValidation::ResourceExistenceCheck,
# ...PropertyValidation). The emptiness warning's name is illustrative (no documented example
# was found): the code tells a warning by ValidationFailureMode WARN, never by its name. The
# Stubber checks every answer against that model.

OPERATION = "1f8c2d4e-0000-4b6a-9c3d-5e6f7a8b9c0d"


def validation_event(event_id: str, **fields) -> dict:
    return {"EventId": event_id, "StackId": STACK_ID, "OperationId": OPERATION, "OperationType": "CREATE_CHANGESET",
            "EventType": "VALIDATION_ERROR", "Timestamp": T0, "ValidationStatus": "FAILED", "ValidationFailureMode": "FAIL",
            **fields}


def test_validation_events_reads_every_page_and_keeps_only_validation_errors(stub):
    cf = stub("cloudformation")
    conflict = validation_event("e1", LogicalResourceId="MediaBucket", ResourceType="AWS::S3::Bucket",
                                ValidationName="AWS::EarlyValidation::ResourceExistenceCheck",
                                ValidationStatusReason="Resource of type 'AWS::S3::Bucket' with identifier 'acme-dev-media' already exists.",
                                ValidationPath="/Resources/MediaBucket/Properties/BucketName")
    progress = {"EventId": "p1", "StackId": STACK_ID, "OperationId": OPERATION, "EventType": "PROGRESS_EVENT", "Timestamp": T0}
    cf.add_response("describe_events", {"OperationEvents": [progress, conflict], "NextToken": "n2"}, {"ChangeSetName": CHANGE_SET_ID})
    warn = validation_event("e2", ValidationFailureMode="WARN", ValidationName="AWS::EarlyValidation::S3BucketEmptinessCheck",
                            LogicalResourceId="OldBucket", ResourceType="AWS::S3::Bucket",
                            ValidationStatusReason="Bucket acme-dev-old is not empty")
    cf.add_response("describe_events", {"OperationEvents": [warn]}, {"ChangeSetName": CHANGE_SET_ID, "NextToken": "n2"})
    assert [e["EventId"] for e in cfn.validation_events(REGION, CHANGE_SET_ID)] == ["e1", "e2"]
    cf.assert_no_pending_responses()


def test_validation_events_errors_propagate(stub):
    """The caller decides: an endpoint that does not know the call answers with an error."""
    cf = stub("cloudformation")
    cf.add_client_error("describe_events", service_error_code="InvalidAction", http_status_code=400,
                        service_message="Could not find operation DescribeEvents for version 2010-05-15")
    with pytest.raises(botocore.exceptions.ClientError):
        cfn.validation_events(REGION, CHANGE_SET_ID)
    cf.assert_no_pending_responses()
