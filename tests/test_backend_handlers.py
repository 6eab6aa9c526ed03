"""The backend handlers with an in-memory store: no AWS, no network."""
from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parent.parent / "app" / "backend"
sys.dont_write_bytecode = True  # keep __pycache__ out of the folder sam packages
sys.path.insert(0, str(BACKEND))

import common  # noqa: E402
import create_session  # noqa: E402
import create_upload_url  # noqa: E402
import get_session  # noqa: E402
import list_uploads  # noqa: E402

assert Path(common.__file__).parent == BACKEND

CONFIG = common.Config(
    table_name="sessions-table",
    media_bucket="media-bucket",
    ttl_attribute="expiresAt",
    session_ttl_hours=24,
    max_upload_bytes=1000,
    presigned_url_seconds=900,
    max_uploads_per_session=3,
)
OTHER_SESSION = "11111111-1111-4111-8111-111111111111"


class FakeStore:
    """The AwsStore interface over dicts; records what the handlers asked for."""

    def __init__(self):
        self.sessions: dict[str, dict] = {}
        self.objects: dict[str, int] = {}
        self.presigned: list[tuple] = []
        self.listed_prefixes: list[str] = []

    def put_session(self, item):
        assert item["sessionId"] not in self.sessions
        self.sessions[item["sessionId"]] = dict(item)

    def get_session(self, sid):
        return self.sessions.get(sid)

    def count_upload(self, sid, limit, now):
        """AwsStore.count_upload's contract over a dict (its DynamoDB form: tests below)."""
        item = self.sessions.get(sid)
        if item is None or int(item.get(CONFIG.ttl_attribute, 0)) <= now:
            return "missing"
        if item.get("uploadCount", 0) >= limit:
            return "capped"
        item["uploadCount"] = item.get("uploadCount", 0) + 1
        return "counted"

    def presign_put(self, key, content_type, size, expires_in):
        self.presigned.append((key, content_type, size, expires_in))
        return f"https://media-bucket.s3.amazonaws.com/{key}?X-Amz-Signature=fake"

    def list_objects(self, prefix):
        self.listed_prefixes.append(prefix)
        return [
            {"key": key, "size": size, "lastModified": "2026-01-01T00:00:00+00:00"}
            for key, size in sorted(self.objects.items())
            if key.startswith(prefix)
        ]


def call(module, event, store):
    response = module.handler(event, None, store=store, config=CONFIG)
    return response["statusCode"], json.loads(response["body"])


def event(body=None, session_id=None, base64_body=False, route="POST /sessions"):
    result = {"routeKey": route, "isBase64Encoded": base64_body}
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
        result["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
    if session_id is not None:
        result["pathParameters"] = {"sessionId": session_id}
    return result


@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def session(store):
    status, body = call(create_session, event({"title": "holiday"}), store)
    assert status == 201
    return body["sessionId"]


def test_create_then_get_round_trip(store):
    before = int(time.time())
    status, created = call(create_session, event({"title": "Trip to Lisbon"}), store)
    assert status == 201
    assert common.SESSION_ID.match(created["sessionId"])
    assert created["title"] == "Trip to Lisbon"
    stored = store.sessions[created["sessionId"]]
    assert before + 24 * 3600 <= stored["expiresAt"] <= int(time.time()) + 24 * 3600
    status, fetched = call(get_session, event(session_id=created["sessionId"], route="GET /sessions/{sessionId}"), store)
    assert status == 200
    assert fetched == created


def test_create_without_body_and_with_base64_body(store):
    status, created = call(create_session, event(), store)
    assert status == 201 and "title" not in created
    status, created = call(create_session, event({"title": "b64"}, base64_body=True), store)
    assert status == 201 and created["title"] == "b64"
    assert len(store.sessions) == 2


def test_ttl_attribute_name_comes_from_configuration(store):
    config = common.Config(**{**CONFIG.__dict__, "ttl_attribute": "ttl"})
    response = create_session.handler(event({}), None, store=store, config=config)
    item = next(iter(store.sessions.values()))
    assert "ttl" in item and "expiresAt" not in item
    assert json.loads(response["body"])["expiresAt"] == item["ttl"]


@pytest.mark.parametrize("body, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"text"', "must be a JSON object"),
    ("null", "must be a JSON object"),
    ({"title": 5}, "title must be a string"),
    ({"title": "x" * 201}, "title must be a string"),
])
def test_create_rejects_bad_bodies_with_400(store, body, message):
    status, answer = call(create_session, event(body), store)
    assert status == 400
    assert message in answer["error"]
    assert store.sessions == {}


def test_oversized_body_is_413(store):
    status, answer = call(create_session, event({"title": "x" * (70 * 1024)}), store)
    assert status == 413 and "larger than" in answer["error"]


def test_invalid_base64_body_is_400(store):
    status, answer = call(create_session, {"body": "***", "isBase64Encoded": True}, store)
    assert status == 400 and "base64" in answer["error"]


def test_unknown_session_is_404(store):
    for module, route in ((get_session, "GET /sessions/{sessionId}"), (list_uploads, "GET /sessions/{sessionId}/uploads")):
        status, answer = call(module, event(session_id=OTHER_SESSION, route=route), store)
        assert (status, answer) == (404, {"error": "session not found"})
    status, _ = call(create_upload_url, event({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10}, session_id=OTHER_SESSION), store)
    assert status == 404
    assert store.presigned == []


def test_expired_session_is_404_before_ttl_deletion(store, session):
    store.sessions[session]["expiresAt"] = int(time.time()) - 1
    status, _ = call(get_session, event(session_id=session), store)
    assert status == 404


@pytest.mark.parametrize("sid", ["not-a-uuid", "../../etc", "73AC5B87-3841-4800-AEFF-9E16A3F8F3E3", "", None,
                                 "73ac5b87-3841-1800-aeff-9e16a3f8f3e3"])
def test_invalid_session_id_is_400(store, sid):
    e = {"routeKey": "GET /sessions/{sessionId}", "pathParameters": {"sessionId": sid} if sid is not None else None}
    for module in (get_session, list_uploads, create_upload_url):
        status, answer = call(module, e, store)
        assert status == 400, module.__name__
        assert "sessionId" in answer["error"]


def upload(store, session, **fields):
    body = {"filename": "photo.jpg", "contentType": "image/jpeg", "size": 500, **fields}
    return call(create_upload_url, event(body, session_id=session), store)


def test_upload_url_key_is_under_the_session_prefix(store, session):
    status, answer = upload(store, session, filename="IMG 0001.HEIC", contentType="image/heic", size=1000)
    assert status == 200
    assert answer["key"] == f"sessions/{session}/IMG 0001.HEIC"
    assert answer["method"] == "PUT"
    assert answer["headers"] == {"Content-Type": "image/heic"}
    assert answer["expiresIn"] == 900
    assert store.presigned == [(f"sessions/{session}/IMG 0001.HEIC", "image/heic", 1000, 900)]
    assert answer["uploadUrl"] == store.presign_put(*store.presigned[0])


def test_the_upload_cap_answers_429_and_issues_no_url(store, session):
    for number in range(CONFIG.max_uploads_per_session):
        status, _ = upload(store, session, filename=f"{number}.jpg")
        assert status == 200
    status, answer = upload(store, session, filename="one-more.jpg")
    assert status == 429
    assert answer["error"] == ("this session has had its 3 upload URLs (the limit per session); "
                               "start a new session to upload more")
    assert len(store.presigned) == CONFIG.max_uploads_per_session


def test_the_cap_is_per_session(store, session):
    for number in range(CONFIG.max_uploads_per_session):
        upload(store, session, filename=f"{number}.jpg")
    other = call(create_session, event(), store)[1]["sessionId"]
    assert upload(store, other)[0] == 200


def test_a_rejected_request_uses_none_of_the_cap(store, session):
    for _ in range(CONFIG.max_uploads_per_session + 1):
        assert upload(store, session, size=1001)[0] == 413
    assert upload(store, session)[0] == 200


def test_an_expired_session_gets_no_upload_url(store, session):
    store.sessions[session]["expiresAt"] = int(time.time()) - 1
    status, answer = upload(store, session)
    assert (status, answer) == (404, {"error": "session not found"})


def _stubbed_store(monkeypatch):
    from botocore.stub import Stubber

    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    real = common.AwsStore(CONFIG)
    stub = Stubber(real._dynamodb)
    stub.activate()
    return real, stub


SID = "22222222-2222-4222-8222-222222222222"
COUNT_REQUEST = {
    "TableName": "sessions-table",
    "Key": {"sessionId": {"S": SID}},
    "UpdateExpression": "ADD uploadCount :one",
    "ConditionExpression": "attribute_exists(sessionId) AND #ttl > :now "
                           "AND (attribute_not_exists(uploadCount) OR uploadCount < :limit)",
    "ExpressionAttributeNames": {"#ttl": "expiresAt"},
    "ExpressionAttributeValues": {":one": {"N": "1"}, ":now": {"N": "1000"}, ":limit": {"N": "3"}},
}


def test_the_count_is_one_conditional_update_of_the_session_item(monkeypatch):
    """DynamoDB's own request shape (botocore validates it against the service model)."""
    real, stub = _stubbed_store(monkeypatch)
    stub.add_response("update_item", {}, COUNT_REQUEST)
    assert real.count_upload(SID, 3, 1000) == "counted"
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("item, answer", [
    ({"sessionId": {"S": SID}, "expiresAt": {"N": "5000"}, "uploadCount": {"N": "3"}}, "capped"),
    ({"sessionId": {"S": SID}, "expiresAt": {"N": "999"}, "uploadCount": {"N": "1"}}, "missing"),
    (None, "missing"),
])
def test_a_failed_condition_says_capped_or_missing(monkeypatch, item, answer):
    real, stub = _stubbed_store(monkeypatch)
    stub.add_client_error("update_item", "ConditionalCheckFailedException", "The conditional request failed",
                          400, expected_params=COUNT_REQUEST)
    stub.add_response("get_item", {"Item": item} if item else {},
                      {"TableName": "sessions-table", "Key": {"sessionId": {"S": SID}}, "ConsistentRead": True})
    assert real.count_upload(SID, 3, 1000) == answer
    stub.assert_no_pending_responses()


def test_oversized_upload_is_413(store, session):
    status, answer = upload(store, session, size=1001)
    assert status == 413 and "1000" in answer["error"]
    assert store.presigned == []


@pytest.mark.parametrize("content_type", ["text/html", "application/pdf", "image/", "imagex/png", "image/png; x=1",
                                          "video/../mp4", 7, None])
def test_bad_content_type_is_400(store, session, content_type):
    status, answer = upload(store, session, contentType=content_type)
    assert status == 400 and "contentType" in answer["error"]


@pytest.mark.parametrize("filename", ["../secret.jpg", "a/b.jpg", "..\\x.jpg", "..", ".", "", "x" * 256,
                                      "bad\x00name.jpg", "line\nbreak.jpg", " leading.jpg", 12, None])
def test_path_traversal_and_bad_filenames_are_400(store, session, filename):
    status, answer = upload(store, session, filename=filename)
    assert status == 400 and "filename" in answer["error"]
    assert store.presigned == []


@pytest.mark.parametrize("size", [0, -1, 1.5, "500", True, None])
def test_wrong_size_types_are_400(store, session, size):
    status, answer = upload(store, session, size=size)
    assert status == 400 and "size" in answer["error"]


def test_upload_needs_a_body(store, session):
    status, answer = call(create_upload_url, event(session_id=session), store)
    assert status == 400 and "body required" in answer["error"]


def test_list_returns_only_the_sessions_objects(store, session):
    store.objects = {
        f"sessions/{session}/a.jpg": 10,
        f"sessions/{session}/b.mp4": 20,
        f"sessions/{OTHER_SESSION}/c.jpg": 30,
        "sessions/other.jpg": 40,
    }
    status, answer = call(list_uploads, event(session_id=session, route="GET /sessions/{sessionId}/uploads"), store)
    assert status == 200
    assert store.listed_prefixes == [f"sessions/{session}/"]
    assert [(u["filename"], u["size"]) for u in answer["uploads"]] == [("a.jpg", 10), ("b.mp4", 20)]
    assert all(u["key"].startswith(f"sessions/{session}/") for u in answer["uploads"])


def test_list_never_leaks_keys_a_store_returns_outside_the_prefix(store, session):
    store.list_objects = lambda prefix: [{"key": f"sessions/{OTHER_SESSION}/x.jpg", "size": 1, "lastModified": "t"}]
    status, answer = call(list_uploads, event(session_id=session), store)
    assert (status, answer["uploads"]) == (200, [])


class BotoLikeError(Exception):
    pass


BotoLikeError.__module__ = "botocore.exceptions"


def test_aws_errors_are_502_and_logged_as_json(store, capsys):
    def failing(item):
        raise BotoLikeError("throttled")

    store.put_session = failing
    status, answer = call(create_session, event({}), store)
    assert (status, answer) == (502, {"error": "upstream service error"})
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert logged[-1]["event"] == "aws_error" and logged[-1]["errorType"] == "BotoLikeError"


def test_unexpected_errors_are_500_and_logged(store, capsys):
    store.get_session = lambda sid: 1 / 0
    status, answer = call(get_session, event(session_id=OTHER_SESSION), store)
    assert (status, answer) == (500, {"error": "internal error"})
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["event"] == "unhandled_error"


def test_rejections_are_logged_as_json(store, capsys):
    call(create_session, event("[]"), store)
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["event"] == "request_rejected" and line["status"] == 400 and line["route"] == "POST /sessions"


def test_config_from_environment():
    config = common.Config.from_env({
        "TABLE_NAME": "t", "MEDIA_BUCKET": "b", "SESSION_TTL_ATTRIBUTE": "expiresAt",
        "SESSION_TTL_HOURS": "2", "MAX_UPLOAD_BYTES": "10", "PRESIGNED_URL_SECONDS": "60",
        "MAX_UPLOADS_PER_SESSION": "5",
    })
    assert config == common.Config("t", "b", "expiresAt", 2, 10, 60, 5)


@pytest.mark.parametrize("region, host", [
    ("eu-west-1", "media-bucket.s3.eu-west-1.amazonaws.com"),
    ("us-east-1", "media-bucket.s3.us-east-1.amazonaws.com"),
    ("ap-east-1", "media-bucket.s3.ap-east-1.amazonaws.com"),   # an opt-in region
    ("cn-north-1", "media-bucket.s3.cn-north-1.amazonaws.com.cn"),
])
def test_presigned_uploads_name_the_buckets_regional_endpoint(monkeypatch, region, host):
    """The real AwsStore and botocore: a URL for the global endpoint would draw a 307 for a
    young bucket, which a browser does not follow on a CORS preflight."""
    from urllib.parse import parse_qs, urlsplit

    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = urlsplit(common.AwsStore(CONFIG).presign_put("sessions/x/a.jpg", "image/jpeg", 10, 900))
    assert (url.scheme, url.netloc, url.path) == ("https", host, "/sessions/x/a.jpg")
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert f"/{region}/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert "content-type" in query["X-Amz-SignedHeaders"][0] and "content-length" in query["X-Amz-SignedHeaders"][0]


def test_a_configured_endpoint_is_used_as_it_is(monkeypatch):
    """The local AWS (AWS_ENDPOINT_URL) serves buckets path-style on its own address."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    url = common.AwsStore(CONFIG).presign_put("sessions/x/a.jpg", "image/jpeg", 10, 900)
    assert url.startswith("http://127.0.0.1:4566/media-bucket/sessions/x/a.jpg?")
