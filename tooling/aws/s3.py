"""The S3 calls of the tooling: templates too large for TemplateBody go to S3."""
from __future__ import annotations

import os

from .session import ClientError, client, error_code, record_template


def upload_template(region: str, bucket: str, key: str, body: str) -> str:
    """Put a template into `bucket` and return the TemplateURL CloudFormation reads it from.
    The local AWS reads TemplateURL path-style only (<endpoint>/<bucket>/<key>)."""
    client("s3", region).put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))
    record_template("TemplateURL", key.replace("/", "-"), body)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{key}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def remove_bucket_tag(region: str, bucket: str, key: str) -> bool:
    """Take one tag off a bucket, keeping the others; whether it was there."""
    s3 = client("s3", region)
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return False
        raise
    kept = [t for t in tags if t["Key"] != key]
    if len(kept) == len(tags):
        return False
    if kept:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": kept})
    else:
        s3.delete_bucket_tagging(Bucket=bucket)
    return True


def has_bucket_tag(region: str, bucket: str, key: str) -> bool:
    try:
        tags = client("s3", region).get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return False
        raise
    return any(t["Key"] == key for t in tags)
