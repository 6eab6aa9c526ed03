"""What the backend handlers share: configuration, HTTP plumbing, structured logs
and the one place that talks to DynamoDB and S3.

Handlers take their store and configuration as arguments, so tests hand them
fakes; in Lambda they get the boto3-backed store, built once per container."""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sys
import time
from dataclasses import dataclass

MAX_BODY_BYTES = 64 * 1024
SESSION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Config:
    table_name: str
    media_bucket: str
    ttl_attribute: str
    session_ttl_hours: int
    max_upload_bytes: int
    presigned_url_seconds: int
    max_uploads_per_session: int

    @classmethod
    def from_env(cls, environ=os.environ) -> "Config":
        return cls(
            table_name=environ["TABLE_NAME"],
            media_bucket=environ["MEDIA_BUCKET"],
            ttl_attribute=environ["SESSION_TTL_ATTRIBUTE"],
            session_ttl_hours=int(environ["SESSION_TTL_HOURS"]),
            max_upload_bytes=int(environ["MAX_UPLOAD_BYTES"]),
            presigned_url_seconds=int(environ["PRESIGNED_URL_SECONDS"]),
            max_uploads_per_session=int(environ["MAX_UPLOADS_PER_SESSION"]),
        )


class HttpError(Exception):
    """A request the caller got wrong: answered with its status and message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def log(event: str, level: str = "info", **fields) -> None:
    """One JSON object per line on stdout: CloudWatch metric filters select on its fields."""
    print(json.dumps({"level": level, "event": event, **fields}, default=str), file=sys.stdout, flush=True)


def respond(status: int, body) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def json_body(event: dict, required: bool = True) -> dict:
    """The request body as a JSON object; {} when absent and not required."""
    raw = event.get("body")
    if raw is None or raw == "":
        if required:
            raise HttpError(400, "request body required (a JSON object)")
        return {}
    if not isinstance(raw, str):
        raise HttpError(400, "request body must be JSON text")
    if len(raw) > MAX_BODY_BYTES * 4 // 3 + 4:  # larger than any base64 of an allowed body
        raise HttpError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "request body is not valid base64") from None
    else:
        data = raw.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise HttpError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise HttpError(400, "request body must be a JSON object")
    return parsed


def session_id(event: dict) -> str:
    value = (event.get("pathParameters") or {}).get("sessionId")
    if not isinstance(value, str) or not SESSION_ID.match(value):
        raise HttpError(400, "sessionId must be a lowercase UUID v4")
    return value


def live_session(store, config: Config, sid: str) -> dict:
    """The session, or 404 when unknown or past its expiry (TTL deletion lags)."""
    item = store.get_session(sid)
    if item is None or int(item.get(config.ttl_attribute, 0)) <= time.time():
        raise HttpError(404, "session not found")
    return item


def public_session(item: dict, config: Config) -> dict:
    session = {
        "sessionId": item["sessionId"],
        "createdAt": item["createdAt"],
        "expiresAt": int(item[config.ttl_attribute]),
    }
    if "title" in item:
        session["title"] = item["title"]
    return session


def entry(handle):
    """The Lambda handler around handle(event, store, config): caller errors become
    4xx JSON, anything else is logged and becomes 502 (AWS) or 500."""

    def handler(event, context, store=None, config=None):
        request_id = getattr(context, "aws_request_id", None)
        try:
            if not isinstance(event, dict):
                raise HttpError(400, "malformed request")
            config = config or Config.from_env()
            return handle(event, store or aws_store(config), config)
        except HttpError as exc:
            log("request_rejected", status=exc.status, reason=exc.message,
                route=(event or {}).get("routeKey") if isinstance(event, dict) else None, requestId=request_id)
            return respond(exc.status, {"error": exc.message})
        except Exception as exc:  # noqa: BLE001 - the last line of defence, always logged
            upstream = type(exc).__module__.startswith(("botocore", "boto3"))
            log("aws_error" if upstream else "unhandled_error", level="error",
                errorType=type(exc).__name__, error=str(exc), requestId=request_id)
            if upstream:
                return respond(502, {"error": "upstream service error"})
            return respond(500, {"error": "internal error"})

    handler.handle = handle
    return handler


class AwsStore:
    """Sessions in DynamoDB, uploads in S3: the only code that calls AWS."""

    def __init__(self, config: Config):
        import boto3
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
        from botocore.config import Config as BotoConfig

        self._config = config
        self._dynamodb = boto3.client("dynamodb")
        # Presigned URLs name the bucket's regional endpoint (<bucket>.s3.<region>.amazonaws.com).
        # Left to itself, botocore signs for the global one (<bucket>.s3.amazonaws.com), which S3
        # answers for a bucket younger than about a day with a 307 to the regional endpoint (a
        # browser does not follow a redirect on a CORS preflight), and which opt-in regions refuse.
        # A configured endpoint (AWS_ENDPOINT_URL, the local AWS) is used as it is.
        self._s3 = boto3.client("s3", config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
        ))
        self._serialize = TypeSerializer().serialize
        self._deserialize = TypeDeserializer().deserialize

    def put_session(self, item: dict) -> None:
        self._dynamodb.put_item(
            TableName=self._config.table_name,
            Item={key: self._serialize(value) for key, value in item.items()},
            ConditionExpression="attribute_not_exists(sessionId)",
        )

    def get_session(self, sid: str) -> dict | None:
        found = self._dynamodb.get_item(
            TableName=self._config.table_name, Key={"sessionId": {"S": sid}}, ConsistentRead=True
        ).get("Item")
        if found is None:
            return None
        return {key: self._deserialize(value) for key, value in found.items()}

    def count_upload(self, sid: str, limit: int, now: int) -> str:
        """Count one more upload URL on the session item, in one conditional write: "counted",
        "capped" when the session has had `limit` already, "missing" when it does not exist or
        has expired. Concurrent calls cannot pass the cap: DynamoDB evaluates each condition
        against the item as it is at that write."""
        ttl = self._config.ttl_attribute
        try:
            self._dynamodb.update_item(
                TableName=self._config.table_name,
                Key={"sessionId": {"S": sid}},
                UpdateExpression="ADD uploadCount :one",
                ConditionExpression="attribute_exists(sessionId) AND #ttl > :now "
                                    "AND (attribute_not_exists(uploadCount) OR uploadCount < :limit)",
                ExpressionAttributeNames={"#ttl": ttl},
                ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"N": str(now)}, ":limit": {"N": str(limit)}},
            )
            return "counted"
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            item = self.get_session(sid)
            if item is None or int(item.get(ttl, 0)) <= now:
                return "missing"
            return "capped"

    def presign_put(self, key: str, content_type: str, size: int, expires_in: int) -> str:
        # Content-Type and Content-Length are signed: the upload must be exactly what was declared.
        return self._s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._config.media_bucket, "Key": key, "ContentType": content_type, "ContentLength": size},
            ExpiresIn=expires_in,
        )

    def list_objects(self, prefix: str) -> list[dict]:
        objects = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._config.media_bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                objects.append({"key": item["Key"], "size": item["Size"], "lastModified": item["LastModified"].isoformat()})
        return objects


_stores: dict[Config, AwsStore] = {}


def aws_store(config: Config) -> AwsStore:
    """One store (and its boto3 clients) per container and configuration."""
    if config not in _stores:
        _stores[config] = AwsStore(config)
    return _stores[config]
