"""The S3 calls of the tooling: templates too large for TemplateBody go to S3."""
from __future__ import annotations

import os

from .session import client


def upload_template(region: str, bucket: str, key: str, body: str) -> str:
    """Put a template into `bucket` and return the TemplateURL CloudFormation reads it from.
    The local AWS reads TemplateURL path-style only (<endpoint>/<bucket>/<key>)."""
    client("s3", region).put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{key}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
