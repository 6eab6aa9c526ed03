"""A loopback HTTP proxy in front of the emulator that makes CloudFormation slow the way
AWS is, from outside the code under test (the emulator finishes every stack before
ExecuteChangeSet returns):

- `report_in_progress(stack, status)`: once an ExecuteChangeSet has gone through,
  DescribeStacks of that stack answers `status` (e.g. UPDATE_IN_PROGRESS) until
  `release()`, whatever the emulator has done;
- `hold_executes()`: ExecuteChangeSet requests are held, not forwarded, until
  `release(forward=...)`; forward=False drops them (the connection is closed unanswered).

Everything else is forwarded as it is (loopback_proxy: 127.0.0.1, a free port, bounded
in time; stop() shuts it down and lets held requests go)."""
from __future__ import annotations

import re
import threading
import time

from loopback_proxy import Call, LoopbackProxy


class HoldingProxy(LoopbackProxy):
    def __init__(self, upstream: str):
        self.in_progress: dict[str, str] = {}
        self.after_execute: dict[str, str] = {}
        self.holding = False
        self.released = threading.Event()
        self.forward_held = True
        self.held = 0
        self.actions: list[str] = []
        super().__init__(upstream)

    def before(self, call: Call) -> bool:
        if call.action:
            with self.lock:
                self.actions.append(call.action)
        if call.action == "ExecuteChangeSet" and self.holding:
            with self.lock:
                self.held += 1
            self.released.wait(300)
            return self.forward_held
        return True

    def after(self, call: Call, status: int, data: bytes) -> bytes:
        if call.action == "ExecuteChangeSet" and status == 200:
            with self.lock:
                self.in_progress.update(self.after_execute)
                self.after_execute.clear()
        if call.action == "DescribeStacks" and call.params.get("StackName") in self.in_progress:
            status_now = self.in_progress[call.params["StackName"]]
            data = re.sub(rb"<StackStatus>[A-Z_]+</StackStatus>", f"<StackStatus>{status_now}</StackStatus>".encode(), data)
        return data

    def report_in_progress(self, stack: str, status: str) -> None:
        self.after_execute[stack] = status

    def hold_executes(self) -> None:
        self.released.clear()
        self.held = 0
        self.holding = True

    def wait_held(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.held:
                return True
            time.sleep(0.1)
        return False

    def release(self, forward: bool = True) -> None:
        self.in_progress.clear()
        self.after_execute.clear()
        self.forward_held = forward
        self.holding = False
        self.released.set()

    def stop(self) -> None:
        self.release()
        super().stop()
