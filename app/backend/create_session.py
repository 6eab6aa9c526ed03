"""POST /sessions: start a media-selection session. Body (optional): {"title": "..."}."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import common
from common import HttpError

MAX_TITLE = 200


def handle(event: dict, store, config: common.Config) -> dict:
    body = common.json_body(event, required=False)
    now = time.time()
    item = {
        "sessionId": str(uuid.uuid4()),
        "createdAt": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
        config.ttl_attribute: int(now) + config.session_ttl_hours * 3600,
    }
    if "title" in body:
        title = body["title"]
        if not isinstance(title, str) or not 0 < len(title) <= MAX_TITLE:
            raise HttpError(400, f"title must be a string of 1 to {MAX_TITLE} characters")
        item["title"] = title
    store.put_session(item)
    common.log("session_created", sessionId=item["sessionId"])
    return common.respond(201, common.public_session(item, config))


handler = common.entry(handle)
