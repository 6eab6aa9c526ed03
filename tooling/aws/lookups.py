"""Does a named resource exist? One lookup per resource type, each asking the
type's own service. The answer is never a guess:

  exists    the service returned it
  missing   the service said, in its own words, that there is no such resource
  foreign   it exists in another account (S3: HeadBucket answers 403 and the name
            is not among this account's own buckets, ListBuckets)
  unknown   anything else: an error, an endpoint that does not implement the
            call, a type with no lookup. The reason says which."""
from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions

from .session import ClientError, client, describe_error, error_code

# Codes an endpoint gives for an operation it does not implement (the local AWS
# lacks some services); such an answer is "unknown", flagged as unsupported.
UNSUPPORTED_CODES = ("UnknownOperationException", "NotImplemented", "InvalidAction", "UnsupportedOperation",
                     "NotImplementedException", "501")


@dataclass(frozen=True)
class Lookup:
    state: str  # exists | missing | foreign | unknown
    reason: str = ""
    unsupported: bool = False  # unknown because the endpoint does not implement the call


EXISTS, MISSING = Lookup("exists"), Lookup("missing")


FOREIGN_BUCKET = Lookup("foreign", "S3 answers 403 to HeadBucket and the name is not among this account's own buckets "
                                   "(ListBuckets): another account's bucket")


def _by_error(call, missing_codes: tuple[str, ...], denied=None) -> Lookup:
    """exists when `call` returns truthy, missing on one of `missing_codes`; an answer of
    `denied` (a pair: codes, and what to make of them) is decided by it; any other
    answer is unknown, and says why."""
    try:
        return EXISTS if call() else MISSING
    except ClientError as exc:
        if error_code(exc) in missing_codes:
            return MISSING
        if denied and error_code(exc) in denied[0]:
            return denied[1](exc)
        if error_code(exc) in UNSUPPORTED_CODES:
            return Lookup("unknown", f"this endpoint does not implement it ({describe_error(exc)})", unsupported=True)
        return Lookup("unknown", describe_error(exc))
    except botocore.exceptions.BotoCoreError as exc:
        return Lookup("unknown", describe_error(exc))


def _bucket(region, account_id, name):
    """HeadBucket: 200 exists, 404 missing. A 403 only says the caller may not read it:
    AWS documents it for "you do not have permission", which holds for this account's
    own bucket under a restrictive policy as much as for another account's. ListBuckets
    (s3:ListAllMyBuckets) lists the buckets the caller's account owns: the name among
    them is this account's bucket; not among them, it is another account's."""
    def denied(head_error: ClientError) -> Lookup:
        try:
            s3 = client("s3", region)
            owned = any(b.get("Name") == name for page in s3.get_paginator("list_buckets").paginate(Prefix=name)
                        for b in page.get("Buckets", []))
        except ClientError as exc:
            return Lookup("unknown", f"{describe_error(head_error)}: the bucket exists but the caller may not read it, and "
                                     f"whether it is this account's could not be told ({describe_error(exc)})",
                          unsupported=error_code(exc) in UNSUPPORTED_CODES)
        except botocore.exceptions.BotoCoreError as exc:
            return Lookup("unknown", f"{describe_error(head_error)}, and ListBuckets failed: {describe_error(exc)}")
        return EXISTS if owned else FOREIGN_BUCKET
    return _by_error(lambda: client("s3", region).head_bucket(Bucket=name) or True,
                     ("404", "NoSuchBucket", "NotFound"), denied=(("403", "AccessDenied", "Forbidden"), denied))


def _log_group(region, account_id, name):
    logs = client("logs", region)

    def found():
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
            if any(g["logGroupName"] == name for g in page.get("logGroups", [])):
                return True
        return False
    return _by_error(found, ())


def _alarm(region, account_id, name):
    def found():
        answer = client("cloudwatch", region).describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        return answer.get("MetricAlarms") or answer.get("CompositeAlarms")
    return _by_error(found, ())


def _codebuild(region, account_id, name):
    return _by_error(lambda: client("codebuild", region).batch_get_projects(names=[name])["projects"], ())


def _kms_alias(region, account_id, name):
    return _by_error(lambda: client("kms", region).describe_key(KeyId=name)["KeyMetadata"], ("NotFoundException",))


def _kms_key(region, account_id, key_id):
    """A key scheduled for deletion still exists (and still encrypts what it encrypted)."""
    return _by_error(lambda: client("kms", region).describe_key(KeyId=key_id)["KeyMetadata"], ("NotFoundException",))


@dataclass(frozen=True)
class KeyBehindAlias:
    lookup: Lookup
    key_id: str = ""
    key_state: str = ""  # Enabled, Disabled, PendingDeletion, ... (KMS's KeyState)


def key_behind_alias(region: str, alias: str) -> KeyBehindAlias:
    """The KMS key an alias points at: a key has no name of its own, its alias is how it
    is found again after its stack let go of it (DescribeKey takes "alias/<name>")."""
    found: dict = {}

    def describe():
        found.update(client("kms", region).describe_key(KeyId=alias)["KeyMetadata"])
        return True
    lookup = _by_error(describe, ("NotFoundException",))
    return KeyBehindAlias(lookup, found.get("KeyId", ""), found.get("KeyState", ""))


LOOKUPS = {
    "AWS::KMS::Alias": _kms_alias,
    "AWS::KMS::Key": _kms_key,
    "AWS::S3::Bucket": _bucket,
    "AWS::DynamoDB::Table": lambda r, a, n: _by_error(
        lambda: client("dynamodb", r).describe_table(TableName=n), ("ResourceNotFoundException",)),
    "AWS::Logs::LogGroup": _log_group,
    "AWS::Lambda::Function": lambda r, a, n: _by_error(
        lambda: client("lambda", r).get_function(FunctionName=n), ("ResourceNotFoundException",)),
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::Dashboard": lambda r, a, n: _by_error(
        lambda: client("cloudwatch", r).get_dashboard(DashboardName=n), ("ResourceNotFound", "ResourceNotFoundException")),
    "AWS::CloudWatch::MetricStream": lambda r, a, n: _by_error(
        lambda: client("cloudwatch", r).get_metric_stream(Name=n), ("ResourceNotFoundException", "ResourceNotFound")),
    "AWS::SNS::Topic": lambda r, a, n: _by_error(
        lambda: client("sns", r).get_topic_attributes(TopicArn=f"arn:aws:sns:{r}:{a}:{n}"), ("NotFound", "NotFoundException")),
    "AWS::KinesisFirehose::DeliveryStream": lambda r, a, n: _by_error(
        lambda: client("firehose", r).describe_delivery_stream(DeliveryStreamName=n), ("ResourceNotFoundException",)),
    "AWS::CodeBuild::Project": _codebuild,
    "AWS::CodePipeline::Pipeline": lambda r, a, n: _by_error(
        lambda: client("codepipeline", r).get_pipeline(name=n), ("PipelineNotFoundException",)),
    "AWS::IAM::Role": lambda r, a, n: _by_error(
        lambda: client("iam", r).get_role(RoleName=n), ("NoSuchEntity",)),
    "AWS::Events::Rule": lambda r, a, n: _by_error(
        lambda: client("events", r).describe_rule(Name=n), ("ResourceNotFoundException",)),
    "AWS::Logs::DeliverySource": lambda r, a, n: _by_error(
        lambda: client("logs", r).get_delivery_source(name=n), ("ResourceNotFoundException",)),
    "AWS::Logs::DeliveryDestination": lambda r, a, n: _by_error(
        lambda: client("logs", r).get_delivery_destination(name=n), ("ResourceNotFoundException",)),
}


def lookup(region: str, account_id: str, resource_type: str, name: str) -> Lookup:
    """Whether the resource of this type and name exists. A type with no lookup is unknown."""
    function = LOOKUPS.get(resource_type)
    if function is None:
        return Lookup("unknown", f"no lookup for {resource_type}")
    return function(region, account_id, name)
