"""The Instagram (Meta) webhook receiver behind GET/POST /webhook.

GET is the subscription handshake: echo hub.challenge when hub.mode is
"subscribe" and hub.verify_token matches. POST is an event notification: it is
accepted only when X-Hub-Signature-256 is the HMAC-SHA256 of the raw body under
the app secret. Both secrets live in SSM Parameter Store (SecureString) and are
read once per container."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import sys

MAX_BODY_BYTES = 1024 * 1024
MAX_CHALLENGE = 512
SIGNATURE = re.compile(r"^sha256=([0-9a-f]{64})$")


class Rejected(Exception):
    def __init__(self, status: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason  # set for signature rejections, which operations counts


def log(event: str, level: str = "info", **fields) -> None:
    """One JSON object per line: the operations metric filter selects { $.event = "signature_rejected" }."""
    print(json.dumps({"level": level, "event": event, **fields}, default=str), file=sys.stdout, flush=True)


def respond(status: int, body: str, content_type: str = "application/json") -> dict:
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": body}


def error(status: int, message: str) -> dict:
    return respond(status, json.dumps({"error": message}))


class Secrets:
    """Parameter values by name, fetched through `fetch(name)` once per container."""

    def __init__(self, fetch):
        self._fetch = fetch
        self._values: dict[str, str] = {}

    def get(self, name: str) -> str:
        if name not in self._values:
            self._values[name] = self._fetch(name)
        return self._values[name]


def ssm_fetch(name: str) -> str:
    import boto3

    global _ssm
    if _ssm is None:
        _ssm = boto3.client("ssm")
    return _ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


_ssm = None
_secrets = Secrets(ssm_fetch)


def header(event: dict, name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


def raw_body(event: dict) -> bytes:
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise Rejected(400, "malformed request body")
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise Rejected(413, "request body too large")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(400, "request body is not valid base64") from None
    else:
        data = body.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise Rejected(413, "request body too large")
    return data


def handshake(event: dict, secrets: Secrets, verify_token_parameter: str) -> dict:
    query = event.get("queryStringParameters") or {}
    mode, token, challenge = query.get("hub.mode"), query.get("hub.verify_token"), query.get("hub.challenge")
    if mode != "subscribe" or not isinstance(token, str):
        raise Rejected(403, "verification refused")
    expected = secrets.get(verify_token_parameter)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        log("verification_rejected", level="warning", reason="verify_token_mismatch")
        raise Rejected(403, "verification refused")
    if not challenge or len(challenge) > MAX_CHALLENGE or not challenge.isprintable():
        raise Rejected(400, "hub.challenge missing or malformed")
    log("verification_accepted")
    return respond(200, challenge, "text/plain")


def notification(event: dict, secrets: Secrets, app_secret_parameter: str) -> dict:
    data = raw_body(event)
    presented = header(event, "x-hub-signature-256")
    if not presented:
        raise Rejected(401, "missing signature", reason="missing_signature")
    match = SIGNATURE.match(presented.strip().lower())
    if not match:
        raise Rejected(403, "invalid signature", reason="malformed_signature")
    expected = hmac.new(secrets.get(app_secret_parameter).encode(), data, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(match.group(1), expected):
        raise Rejected(403, "invalid signature", reason="signature_mismatch")
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise Rejected(400, "signed body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Rejected(400, "signed body is not a JSON object")
    entries = payload.get("entry")
    log("webhook_received", object=payload.get("object"),
        entries=len(entries) if isinstance(entries, list) else 0, bytes=len(data))
    return respond(200, json.dumps({"received": True}))


def handle(event: dict, secrets: Secrets, environ=os.environ) -> dict:
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "")
    if method == "GET":
        return handshake(event, secrets, environ["VERIFY_TOKEN_PARAMETER"])
    if method == "POST":
        return notification(event, secrets, environ["APP_SECRET_PARAMETER"])
    raise Rejected(405, "method not allowed")


def handler(event, context, secrets: Secrets | None = None, environ=None):
    request_id = getattr(context, "aws_request_id", None)
    try:
        if not isinstance(event, dict):
            raise Rejected(400, "malformed request")
        return handle(event, secrets or _secrets, os.environ if environ is None else environ)
    except Rejected as exc:
        if exc.reason:
            source_ip = (((event.get("requestContext") or {}).get("http") or {}).get("sourceIp"))
            log("signature_rejected", level="warning", reason=exc.reason, status=exc.status,
                sourceIp=source_ip, requestId=request_id)
        return error(exc.status, exc.message)
    except Exception as exc:  # noqa: BLE001 - the last line of defence, always logged
        upstream = type(exc).__module__.startswith(("botocore", "boto3"))
        log("aws_error" if upstream else "unhandled_error", level="error",
            errorType=type(exc).__name__, error=str(exc), requestId=request_id)
        return error(502 if upstream else 500, "upstream service error" if upstream else "internal error")
