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


# --- conditional writes (the deploy lock) ----------------------------------------------

def _precondition_failed(exc: ClientError) -> bool:
    return error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or \
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412)


def put_if_absent(region: str, bucket: str, key: str, body: bytes) -> str | None:
    """PutObject with If-None-Match: *; the new ETag, or None when the key exists."""
    try:
        return client("s3", region).put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
    except ClientError as exc:
        if _precondition_failed(exc):
            return None
        raise


def put_if_match(region: str, bucket: str, key: str, body: bytes, etag: str) -> str | None:
    """PutObject with If-Match: replaces the object only if it is still `etag`; the new
    ETag, or None when someone else changed (or deleted) it first."""
    try:
        return client("s3", region).put_object(Bucket=bucket, Key=key, Body=body, IfMatch=etag)["ETag"]
    except ClientError as exc:
        if _precondition_failed(exc) or error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise


def read_object(region: str, bucket: str, key: str) -> tuple[bytes, str] | None:
    """(body, ETag), or None when the key does not exist."""
    try:
        got = client("s3", region).get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    return got["Body"].read(), got["ETag"]


def delete_if_match(region: str, bucket: str, key: str, etag: str) -> bool:
    """DeleteObject with If-Match; False when the object is no longer `etag`."""
    try:
        client("s3", region).delete_object(Bucket=bucket, Key=key, IfMatch=etag)
        return True
    except ClientError as exc:
        if _precondition_failed(exc) or error_code(exc) in ("NoSuchKey", "404"):
            return False
        raise


def bucket_exists(region: str, bucket: str) -> bool:
    try:
        client("s3", region).head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
