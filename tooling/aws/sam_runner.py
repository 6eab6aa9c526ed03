"""Run `sam` commands through one pre-started sam process (tooling/sam_forkserver.py),
so that stacks deployed in parallel do not each spend seconds importing the SAM CLI.
Falls back to a plain `sam` subprocess where fork is not available."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
from pathlib import Path

from ..paths import ROOT
from .session import retry_environment

SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"
SERVER = Path(__file__).resolve().parent / "sam_forkserver.py"


def sam_environment() -> dict[str, str]:
    """The environment sam runs in: ours, with telemetry off, event polling as
    deploy.py polls, and the same retry settings as deploy.py's own clients."""
    env = dict(os.environ)
    env.setdefault("SAM_CLI_TELEMETRY", "0")
    env.setdefault("SAM_CLI_POLL_DELAY", "1" if env.get("AWS_ENDPOINT_URL") else "5")
    env.update(retry_environment())
    return env


class SamRunner:
    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, dict] = {}
        self._ids = itertools.count(1)

    def start(self) -> "SamRunner":
        """Begin importing the SAM CLI now, in the background."""
        if hasattr(os, "fork") and self._process is None:
            self._process = subprocess.Popen([str(SAM_PYTHON), str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                                             env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
            self._ready = threading.Event()
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            message = json.loads(line)
            if message.get("ready"):
                self._ready.set()
                continue
            slot = self._waiting.pop(message["id"], None)
            if slot is not None:
                slot["exit"] = message["exit"]
                slot["done"].set()
        self._ready.set()
        pending, self._waiting = list(self._waiting.values()), {}
        for slot in pending:  # the server died: release every waiter
            slot.setdefault("exit", 1)
            slot["done"].set()

    def start_run(self, args: list[str], log: Path, env: dict, cwd: Path = ROOT):
        """Start `sam <args>` with output to `log`; returns a handle for poll()/wait()."""
        if self._process is None or self._process.poll() is not None:
            out = open(log, "w")
            process = subprocess.Popen([str(SAM), *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                       stdin=subprocess.DEVNULL)
            out.close()
            return _Plain(process)
        request_id = next(self._ids)
        slot = {"done": threading.Event()}
        self._waiting[request_id] = slot
        with self._lock:
            self._process.stdin.write(json.dumps({"id": request_id, "args": args, "cwd": str(cwd), "env": env, "log": str(log)}) + "\n")
            self._process.stdin.flush()
        return _Forked(slot)

    def run(self, args: list[str], log: Path, timeout: float = 900) -> int:
        """Run `sam <args>` to the end (output in `log`); its exit status (None -> 124 on timeout)."""
        handle = self.start_run(args, log, sam_environment())
        code = handle.wait(timeout)
        return 124 if code is None else code

    def stop(self) -> None:
        """End the server: at once if it was never used, else after its last child (all waited for)."""
        if self._process is None or self._process.poll() is not None:
            return
        if not self._waiting:
            self._process.terminate()
        else:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)


class _Plain:
    def __init__(self, process: subprocess.Popen):
        self.process = process

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


class _Forked:
    def __init__(self, slot: dict):
        self.slot = slot

    def wait(self, timeout: float | None = None) -> int | None:
        return self.slot["exit"] if self.slot["done"].wait(timeout) else None
