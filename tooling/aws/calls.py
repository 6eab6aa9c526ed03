"""Every AWS call of the tooling goes through this module.

Clients use the standard chain (profile, region, AWS_ENDPOINT_URL) and botocore's
bounded retries with backoff, so throttling and transient errors are retried
without the callers having to think about it."""
from __future__ import annotations

import functools
import json
import os
import time

import boto3
import botocore.config
import botocore.exceptions

from ..errors import UserError

RETRY_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": int(os.environ.get("DEPLOY_MAX_ATTEMPTS", "8"))},
    connect_timeout=5,
    read_timeout=60,
)


@functools.lru_cache(maxsize=None)
def client(service: str, region: str | None = None):
    return boto3.session.Session().client(service, region_name=region or None, config=RETRY_CONFIG)


def endpoint_description() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS"


def caller_identity(region: str | None = None, hint: str = "") -> dict:
    try:
        return client("sts", region).get_caller_identity()
    except botocore.exceptions.NoCredentialsError:
        raise UserError(f"AWS credentials: none found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY{hint})") from None
    except ValueError as exc:  # botocore refuses a malformed endpoint URL this way
        raise UserError(f"AWS_ENDPOINT_URL {os.environ.get('AWS_ENDPOINT_URL', '')!r}: {exc}") from None
    except botocore.exceptions.NoRegionError:
        raise UserError("AWS region: none configured (set AWS_REGION or pass --region)") from None
    except botocore.exceptions.EndpointConnectionError:
        raise UserError(f"endpoint {endpoint_description()}: does not answer") from None
    except botocore.exceptions.ClientError as exc:
        raise UserError(f"STS GetCallerIdentity at {endpoint_description()}: {exc.response['Error'].get('Message', exc)}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise UserError(f"STS GetCallerIdentity at {endpoint_description()}: {exc}") from None


# --- CloudFormation -------------------------------------------------------------
# Every function takes the region; errors a user can act on become UserError,
# anything else propagates (a bug or an outage, shown with its AWS message).

def _code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _message(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Message", str(exc))


def describe_stack(region: str, name: str) -> dict | None:
    """The stack, or None when it does not exist (deleted stacks don't count)."""
    try:
        stacks = client("cloudformation", region).describe_stacks(StackName=name)["Stacks"]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in _message(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def stack_events(region: str, name: str, limit: int = 200) -> list[dict]:
    """Newest first, as CloudFormation returns them."""
    cfn = client("cloudformation", region)
    events: list[dict] = []
    kwargs = {"StackName": name}
    try:
        while len(events) < limit:
            page = cfn.describe_stack_events(**kwargs)
            events.extend(page["StackEvents"])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in _message(exc):
            return []
        raise
    return events[:limit]


def stack_resources(region: str, name: str) -> list[dict]:
    cfn = client("cloudformation", region)
    try:
        return [r for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
                for r in page["StackResourceSummaries"]]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in _message(exc):
            return []
        raise


def protect_stack(region: str, name: str, stack_policy: dict) -> None:
    cfn = client("cloudformation", region)
    cfn.update_termination_protection(StackName=name, EnableTerminationProtection=True)
    cfn.set_stack_policy(StackName=name, StackPolicyBody=json.dumps(stack_policy))


def stack_policy(region: str, name: str) -> dict | None:
    body = client("cloudformation", region).get_stack_policy(StackName=name).get("StackPolicyBody")
    return json.loads(body) if body else None


def list_imports(region: str, export_name: str) -> list[str]:
    """Stacks importing an export; [] when none does."""
    cfn = client("cloudformation", region)
    try:
        return [s for page in cfn.get_paginator("list_imports").paginate(ExportName=export_name) for s in page["Imports"]]
    except botocore.exceptions.ClientError as exc:
        if "is not imported by any stack" in _message(exc) or _code(exc) == "ValidationError" and "not imported" in _message(exc):
            return []
        raise


def list_exports(region: str) -> dict[str, dict]:
    """export name -> {ExportingStackId, Value}."""
    cfn = client("cloudformation", region)
    return {e["Name"]: e for page in cfn.get_paginator("list_exports").paginate() for e in page["Exports"]}


def delete_stack(region: str, name: str) -> None:
    client("cloudformation", region).delete_stack(StackName=name)


def wait_deleted(region: str, name: str, timeout: float = 900, poll: float = 2.0) -> dict | None:
    """Wait until the stack is gone; returns the last description if deletion failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = describe_stack(region, name)
        if stack is None:
            return None
        if stack["StackStatus"] == "DELETE_FAILED":
            return stack
        time.sleep(poll)
    return describe_stack(region, name)


def create_change_set(region: str, name: str, template_body: str, change_set_type: str,
                      capabilities: list[str], tags: dict[str, str] | None = None,
                      resources_to_import: list[dict] | None = None) -> str:
    kwargs = {
        "StackName": name,
        "ChangeSetName": f"deploy-py-{int(time.time() * 1000)}",
        "TemplateBody": template_body,
        "ChangeSetType": change_set_type,
        "Capabilities": capabilities,
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }
    if resources_to_import:
        kwargs["ResourcesToImport"] = resources_to_import
    return client("cloudformation", region).create_change_set(**kwargs)["Id"]


def wait_change_set(region: str, change_set_id: str, timeout: float = 300, poll: float = 1.0) -> dict:
    """Wait until the change set is created (or failed) and return it with every change."""
    cfn = client("cloudformation", region)
    deadline = time.monotonic() + timeout
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(poll)
    changes = list(described.get("Changes", []))
    token = described.get("NextToken")
    while token:
        page = cfn.describe_change_set(ChangeSetName=change_set_id, NextToken=token)
        changes.extend(page.get("Changes", []))
        token = page.get("NextToken")
    described["Changes"] = changes
    return described


def delete_change_set(region: str, change_set_id: str) -> None:
    try:
        client("cloudformation", region).delete_change_set(ChangeSetName=change_set_id)
    except botocore.exceptions.ClientError as exc:
        if "does not exist" not in _message(exc):
            raise


def execute_change_set(region: str, change_set_id: str) -> None:
    client("cloudformation", region).execute_change_set(ChangeSetName=change_set_id)


def get_template_body(region: str, name: str) -> str:
    body = client("cloudformation", region).get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    return body if isinstance(body, str) else json.dumps(body)


# --- S3 and DynamoDB: existence of named resources --------------------------------

def bucket_exists(region: str, name: str) -> bool:
    try:
        client("s3", region).head_bucket(Bucket=name)
        return True
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        if _code(exc) in ("403", "AccessDenied"):
            return True  # exists, owned by someone else
        raise


def table_exists(region: str, name: str) -> bool:
    try:
        client("dynamodb", region).describe_table(TableName=name)
        return True
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return False
        raise


def validation_error(region: str, template_body: str) -> str | None:
    """ValidateTemplate's refusal, or None when the template is accepted."""
    try:
        client("cloudformation", region).validate_template(TemplateBody=template_body)
        return None
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == "ValidationError":
            return _message(exc)
        raise


LIVE_STATUSES = [
    "CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_COMPLETE", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED",
    "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED", "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED", "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE",
    "REVIEW_IN_PROGRESS", "IMPORT_IN_PROGRESS", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_IN_PROGRESS",
    "IMPORT_ROLLBACK_FAILED", "IMPORT_ROLLBACK_COMPLETE",
]


def live_stack_names(region: str) -> list[str]:
    cfn = client("cloudformation", region)
    return [s["StackName"] for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=LIVE_STATUSES)
            for s in page["StackSummaries"]]


def _exists(call, missing_codes: tuple[str, ...], missing_text: tuple[str, ...] = ()) -> bool | None:
    try:
        result = call()
        return bool(result) if result is not None else True
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in missing_codes or any(t in _message(exc) for t in missing_text):
            return False
        if _code(exc) in ("UnknownOperationException", "NotImplemented", "InvalidAction", "UnsupportedOperation"):
            return None  # this endpoint cannot tell (e.g. a service the emulator lacks)
        raise
    except botocore.exceptions.EndpointConnectionError:
        return None


def resource_exists(region: str, account_id: str, resource_type: str, name: str) -> bool | None:
    """Whether a named resource exists; None when this endpoint cannot tell."""
    if resource_type == "AWS::S3::Bucket":
        return bucket_exists(region, name)
    if resource_type == "AWS::DynamoDB::Table":
        return table_exists(region, name)
    if resource_type == "AWS::Logs::LogGroup":
        logs = client("logs", region)
        return _exists(lambda: any(g["logGroupName"] == name for g in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])), ())
    if resource_type in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
        return _exists(lambda: client("lambda", region).get_function(FunctionName=name), ("ResourceNotFoundException",))
    if resource_type == "AWS::CloudWatch::Alarm":
        return _exists(lambda: client("cloudwatch", region).describe_alarms(AlarmNames=[name])["MetricAlarms"], ())
    if resource_type == "AWS::CloudWatch::Dashboard":
        return _exists(lambda: client("cloudwatch", region).get_dashboard(DashboardName=name), ("ResourceNotFound", "ResourceNotFoundException"))
    if resource_type == "AWS::SNS::Topic":
        arn = f"arn:aws:sns:{region}:{account_id}:{name}"
        return _exists(lambda: client("sns", region).get_topic_attributes(TopicArn=arn), ("NotFound", "NotFoundException"))
    if resource_type == "AWS::KinesisFirehose::DeliveryStream":
        return _exists(lambda: client("firehose", region).describe_delivery_stream(DeliveryStreamName=name), ("ResourceNotFoundException",))
    if resource_type == "AWS::CodeBuild::Project":
        return _exists(lambda: client("codebuild", region).batch_get_projects(names=[name])["projects"], ())
    if resource_type == "AWS::IAM::Role":
        return _exists(lambda: client("iam", region).get_role(RoleName=name), ("NoSuchEntity",))
    if resource_type == "AWS::Events::Rule":
        return _exists(lambda: client("events", region).describe_rule(Name=name), ("ResourceNotFoundException",))
    return None
