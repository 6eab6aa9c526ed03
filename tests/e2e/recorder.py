"""A recording proxy on the loopback (loopback_proxy): every request passes, unchanged,
to the emulator; each CloudFormation call (the query protocol: a form body with
Action=...) is recorded with its parameters, so a test sees which change sets a run
created and executed, as AWS would have received them."""
from __future__ import annotations

from loopback_proxy import Call, LoopbackProxy


class Recorder(LoopbackProxy):
    def __init__(self, upstream: str, lifetime: float = 900):
        self.calls: list[dict] = []
        super().__init__(upstream, lifetime)

    def after(self, call: Call, status: int, data: bytes) -> bytes:
        if call.action:
            with self.lock:
                self.calls.append({"action": call.action, "params": call.params, "status": status,
                                   "response": data.decode("utf-8", "replace")})
        return data

    def actions(self, name: str) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c["action"] == name]

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
