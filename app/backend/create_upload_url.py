"""POST /sessions/{sessionId}/uploads: a presigned PUT URL for one media file.

Body: {"filename": "...", "contentType": "image/... | video/...", "size": bytes}.
The object lands at sessions/<sessionId>/<filename> in the media bucket. A session gets at
most MAX_UPLOADS_PER_SESSION URLs (backend.max_uploads_per_session); past that, 429."""
from __future__ import annotations

import re
import time

import common
from common import HttpError

MAX_FILENAME_BYTES = 255
# RFC 6838 restricted names, and only the media families the product accepts.
CONTENT_TYPE = re.compile(r"^(image|video)/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def valid_filename(value) -> str:
    if not isinstance(value, str) or not value:
        raise HttpError(400, "filename must be a non-empty string")
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_FILENAME_BYTES:
        raise HttpError(400, f"filename longer than {MAX_FILENAME_BYTES} bytes")
    if "/" in value or "\\" in value or value in (".", ".."):
        raise HttpError(400, "filename must not contain path separators")
    if any(ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise HttpError(400, "filename must not contain control characters")
    if value != value.strip():
        raise HttpError(400, "filename must not start or end with whitespace")
    return value


def valid_content_type(value) -> str:
    if not isinstance(value, str) or not CONTENT_TYPE.match(value.lower()):
        raise HttpError(400, "contentType must be an image/* or video/* media type")
    return value.lower()


def valid_size(value, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HttpError(400, "size must be a positive integer (bytes)")
    if value > limit:
        raise HttpError(413, f"size larger than the {limit} bytes allowed per upload")
    return value


def handle(event: dict, store, config: common.Config) -> dict:
    sid = common.session_id(event)
    body = common.json_body(event)
    filename = valid_filename(body.get("filename"))
    content_type = valid_content_type(body.get("contentType"))
    size = valid_size(body.get("size"), config.max_upload_bytes)
    counted = store.count_upload(sid, config.max_uploads_per_session, int(time.time()))
    if counted == "missing":
        raise HttpError(404, "session not found")
    if counted == "capped":
        raise HttpError(429, f"this session has had its {config.max_uploads_per_session} upload URLs "
                             f"(the limit per session); start a new session to upload more")
    key = f"sessions/{sid}/{filename}"
    url = store.presign_put(key, content_type, size, config.presigned_url_seconds)
    common.log("upload_url_issued", sessionId=sid, key=key, contentType=content_type, size=size)
    return common.respond(200, {
        "uploadUrl": url,
        "method": "PUT",
        "key": key,
        "headers": {"Content-Type": content_type},
        "expiresIn": config.presigned_url_seconds,
    })


handler = common.entry(handle)
