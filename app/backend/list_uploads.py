"""GET /sessions/{sessionId}/uploads: the objects uploaded under the session's prefix."""
from __future__ import annotations

import common


def handle(event: dict, store, config: common.Config) -> dict:
    sid = common.session_id(event)
    common.live_session(store, config, sid)
    prefix = f"sessions/{sid}/"
    uploads = [
        {"key": obj["key"], "filename": obj["key"][len(prefix):], "size": obj["size"], "lastModified": obj["lastModified"]}
        for obj in store.list_objects(prefix)
        if obj["key"].startswith(prefix)  # the store filters already; never leak another session's keys
    ]
    return common.respond(200, {"sessionId": sid, "uploads": uploads})


handler = common.entry(handle)
