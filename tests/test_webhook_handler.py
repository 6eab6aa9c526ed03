"""The Instagram webhook handler with injected secrets: no AWS, no network."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

import pytest

WEBHOOK = Path(__file__).resolve().parent.parent / "app" / "webhook"
sys.dont_write_bytecode = True  # keep __pycache__ out of the folder sam packages
sys.path.insert(0, str(WEBHOOK))

import webhook  # noqa: E402

assert Path(webhook.__file__).parent == WEBHOOK

ENVIRON = {"VERIFY_TOKEN_PARAMETER": "/test/verify-token", "APP_SECRET_PARAMETER": "/test/app-secret"}
VALUES = {"/test/verify-token": "the-verify-token", "/test/app-secret": "the-app-secret"}
BODY = json.dumps({"object": "instagram", "entry": [{"id": "1", "time": 1, "changes": []}, {"id": "2", "time": 2}]}).encode()


class CountingFetch:
    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, name):
        self.calls.append(name)
        return VALUES[name]


@pytest.fixture
def fetch():
    return CountingFetch()


@pytest.fixture
def secrets(fetch):
    return webhook.Secrets(fetch)


def sign(body: bytes, secret: str = "the-app-secret") -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(body: bytes, signature: str | None, base64_body: bool = False, header_name: str = "x-hub-signature-256") -> dict:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[header_name] = signature
    return {
        "requestContext": {"http": {"method": "POST", "sourceIp": "203.0.113.9"}},
        "headers": headers,
        "body": base64.b64encode(body).decode() if base64_body else body.decode(),
        "isBase64Encoded": base64_body,
    }


def get(**query) -> dict:
    return {"requestContext": {"http": {"method": "GET"}}, "queryStringParameters": query or None}


def run(event, secrets):
    return webhook.handler(event, None, secrets=secrets, environ=ENVIRON)


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_good_signature_is_200_and_logged(secrets, capsys):
    response = run(post(BODY, sign(BODY)), secrets)
    assert response["statusCode"] == 200
    received = [line for line in log_lines(capsys) if line["event"] == "webhook_received"]
    assert received == [{"level": "info", "event": "webhook_received", "object": "instagram", "entries": 2, "bytes": len(BODY)}]


def test_header_name_is_case_insensitive(secrets):
    assert run(post(BODY, sign(BODY), header_name="X-Hub-Signature-256"), secrets)["statusCode"] == 200


def test_base64_encoded_body_is_verified_on_its_decoded_bytes(secrets):
    assert run(post(BODY, sign(BODY), base64_body=True), secrets)["statusCode"] == 200
    # the signature of the base64 text itself is not the signature of the body
    encoded = base64.b64encode(BODY)
    assert run(post(BODY, sign(encoded), base64_body=True), secrets)["statusCode"] == 403


def test_bad_signature_is_403(secrets):
    response = run(post(BODY, sign(BODY, secret="another-secret")), secrets)
    assert response["statusCode"] == 403
    assert json.loads(response["body"]) == {"error": "invalid signature"}


def test_missing_signature_is_401(secrets):
    assert run(post(BODY, None), secrets)["statusCode"] == 401
    assert run(post(BODY, ""), secrets)["statusCode"] == 401


@pytest.mark.parametrize("header", ["sha1=" + "0" * 40, "sha256=", "sha256=xyz", "sha256=" + "0" * 63, "sha256:" + "0" * 64,
                                    "md5=abc", "garbage"])
def test_malformed_signature_is_403(secrets, header):
    assert run(post(BODY, header), secrets)["statusCode"] == 403


def test_replayed_body_with_one_changed_byte_is_403(secrets):
    signature = sign(BODY)
    tampered = bytearray(BODY)
    tampered[BODY.index(b"instagram")] ^= 0x01
    assert run(post(bytes(tampered), signature), secrets)["statusCode"] == 403
    assert run(post(BODY, signature), secrets)["statusCode"] == 200


def test_rejections_are_logged_with_event_and_reason(secrets, capsys):
    run(post(BODY, None), secrets)
    run(post(BODY, "sha256=nothex"), secrets)
    run(post(BODY, sign(b"other")), secrets)
    rejected = [line for line in log_lines(capsys) if line["event"] == "signature_rejected"]
    assert [(r["reason"], r["status"]) for r in rejected] == [
        ("missing_signature", 401), ("malformed_signature", 403), ("signature_mismatch", 403)]
    assert all(r["sourceIp"] == "203.0.113.9" for r in rejected)


def test_oversized_body_is_413(secrets):
    big = b'{"object":"instagram","pad":"' + b"x" * webhook.MAX_BODY_BYTES + b'"}'
    assert run(post(big, sign(big)), secrets)["statusCode"] == 413


def test_signed_but_invalid_json_is_400(secrets):
    assert run(post(b"not json", sign(b"not json")), secrets)["statusCode"] == 400
    assert run(post(b"[1]", sign(b"[1]")), secrets)["statusCode"] == 400


def test_handshake_answers_the_challenge(secrets):
    response = run(get(**{"hub.mode": "subscribe", "hub.verify_token": "the-verify-token", "hub.challenge": "1158201444"}), secrets)
    assert response["statusCode"] == 200
    assert response["body"] == "1158201444"
    assert response["headers"]["content-type"] == "text/plain"


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
    {"hub.mode": "subscribe", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": "the-verify-token", "hub.challenge": "1"},
    {"hub.verify_token": "the-verify-token", "hub.challenge": "1"},
    {},
])
def test_handshake_refuses_bad_token_or_mode(secrets, query):
    response = run(get(**query), secrets)
    assert response["statusCode"] == 403
    assert json.loads(response["body"]) == {"error": "verification refused"}


def test_handshake_without_challenge_is_400(secrets):
    assert run(get(**{"hub.mode": "subscribe", "hub.verify_token": "the-verify-token"}), secrets)["statusCode"] == 400


def test_secrets_are_fetched_once_per_container(secrets, fetch):
    for _ in range(3):
        run(post(BODY, sign(BODY)), secrets)
        run(get(**{"hub.mode": "subscribe", "hub.verify_token": "the-verify-token", "hub.challenge": "7"}), secrets)
    assert sorted(fetch.calls) == ["/test/app-secret", "/test/verify-token"]


def test_other_methods_are_405(secrets):
    assert run({"requestContext": {"http": {"method": "PUT"}}}, secrets)["statusCode"] == 405


def test_secret_store_failure_is_502_and_logged(capsys):
    class ParameterNotFound(Exception):
        pass

    ParameterNotFound.__module__ = "botocore.errorfactory"

    def failing(name):
        raise ParameterNotFound(name)

    response = run(post(BODY, sign(BODY)), webhook.Secrets(failing))
    assert response["statusCode"] == 502
    assert log_lines(capsys)[-1]["event"] == "aws_error"
