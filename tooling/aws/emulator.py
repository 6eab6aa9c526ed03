"""The embedded local AWS: ministack, from its own environment in .tools/ministack,
with the project's stand-ins for the five resource types it lacks (tooling/aws/standins:
CodePipeline, the three CloudWatch Logs delivery types, CloudWatch metric streams).

Always bound to 127.0.0.1 on a free port; started in its own process group and
stopped by that process id (never by name), so nothing else on the machine is
touched. The SAM translator is installed beside it, so SAM templates deploy."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

from ..paths import ROOT
MINISTACK_PYTHON = ROOT / ".tools" / "ministack" / "bin" / "python"
LAUNCHER = Path(__file__).resolve().parent / "standins" / "launch.py"  # ministack, stand-ins registered
# The emulator takes a 12-digit access key id as the account id; "test" gives 000000000000.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(endpoint: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # something answered HTTP: the gateway is up
    except OSError:
        return False


@dataclass
class Emulator:
    pid: int
    port: int
    log: Path
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, state_dir: Path, ready_timeout: float = 60.0, lifetime_seconds: int | None = None) -> "Emulator":
        """Start on a free loopback port and wait until it answers.

        `lifetime_seconds` bounds it in time (for tests): it exits by itself then."""
        if not MINISTACK_PYTHON.exists():
            raise UserError(f"local AWS: {MINISTACK_PYTHON.parent.parent.relative_to(ROOT)} is not installed (run ./ci/setup.sh)")
        state_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = state_dir / f"ministack-{port}.log"
        # TMPDIR: the emulator's scratch (Lambda code folders) stays in its state folder.
        env = {**os.environ, "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "LOG_LEVEL": "WARNING",
               "TMPDIR": str(state_dir)}
        command = [str(MINISTACK_PYTHON), str(LAUNCHER)]
        if lifetime_seconds:
            command = ["timeout", "--signal=TERM", str(lifetime_seconds), *command]
        with open(log, "ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=state_dir,
                                       start_new_session=True, stdin=subprocess.DEVNULL)
        emulator = cls(pid=process.pid, port=port, log=log, process=process)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise UserError(f"local AWS: ministack exited with status {process.returncode} (log: {log})")
            if answers(emulator.endpoint):
                return emulator
            time.sleep(0.2)
        emulator.stop()
        raise UserError(f"local AWS: ministack did not answer on {emulator.endpoint} within {ready_timeout:.0f}s (log: {log})")

    def stop(self, grace: float = 10.0) -> None:
        """Stop the emulator's process group, by its process id."""
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    return
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.1)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process is not None:
            self.process.wait(timeout=5)
