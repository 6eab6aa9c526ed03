"""Read back, and put back, the protections of the storage stack's buckets and table
straight from S3 and DynamoDB (not from CloudFormation's view of them): versioning, the
public access block, default encryption, the bucket policy; the table's existence,
point-in-time recovery, deletion protection and encryption.

Each reader returns a flat dict of property path -> actual value; a missing resource
is {"exists": False}. Any other AWS error propagates (the caller makes it a finding)."""
from __future__ import annotations

import json

from .session import ClientError, client, error_code

MISSING_BUCKET = ("NoSuchBucket", "404", "NotFound")


def bucket(region: str, name: str) -> dict:
    s3 = client("s3", region)
    actual: dict = {"exists": True}
    try:
        versioning = s3.get_bucket_versioning(Bucket=name)
    except ClientError as exc:
        if error_code(exc) in MISSING_BUCKET:
            return {"exists": False}
        raise
    actual["VersioningConfiguration.Status"] = versioning.get("Status", "Disabled")
    try:
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        block = {}
    for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        actual[f"PublicAccessBlockConfiguration.{flag}"] = bool(block.get(flag, False))
    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
    actual["BucketEncryption.SSEAlgorithm"] = default.get("SSEAlgorithm", "none")
    if default.get("KMSMasterKeyID"):
        actual["BucketEncryption.KMSMasterKeyID"] = default["KMSMasterKeyID"]
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucketPolicy":
            raise
        policy = None
    actual["BucketPolicy.Sids"] = sorted(s.get("Sid", "") for s in policy.get("Statement", [])) if policy else []
    return actual


def table(region: str, name: str) -> dict:
    dynamodb = client("dynamodb", region)
    try:
        described = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return {"exists": False}
        raise
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    pitr = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus", "DISABLED")
    sse = described.get("SSEDescription") or {}
    return {
        "exists": True,
        "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled": pitr == "ENABLED",
        "DeletionProtectionEnabled": bool(described.get("DeletionProtectionEnabled", False)),
        "SSESpecification.SSEEnabled": sse.get("Status") in ("ENABLED", "ENABLING"),
    }


# --- putting them back (the local AWS, which ignores REVERT_DRIFT change sets) -------------

def put_bucket_versioning(region: str, name: str, status: str) -> None:
    client("s3", region).put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})


def put_public_access_block(region: str, name: str, flags: dict) -> None:
    client("s3", region).put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=flags)


def put_bucket_encryption(region: str, name: str, configuration: dict) -> None:
    client("s3", region).put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=configuration)


def put_bucket_policy(region: str, name: str, document: dict) -> None:
    client("s3", region).put_bucket_policy(Bucket=name, Policy=json.dumps(document))


def enable_point_in_time_recovery(region: str, name: str) -> None:
    client("dynamodb", region).update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def enable_deletion_protection(region: str, name: str) -> None:
    client("dynamodb", region).update_table(TableName=name, DeletionProtectionEnabled=True)
