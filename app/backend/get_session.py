"""GET /sessions/{sessionId}: the session, or 404."""
from __future__ import annotations

import common


def handle(event: dict, store, config: common.Config) -> dict:
    item = common.live_session(store, config, common.session_id(event))
    return common.respond(200, common.public_session(item, config))


handler = common.entry(handle)
