"""The embedded local AWS: loopback only, a free port, stopped by its process id."""
from __future__ import annotations

import os

from tooling.aws.emulator import Emulator, answers


def test_start_answers_on_loopback_and_stop_ends_the_process_group(tmp_path):
    emulator = Emulator.start(tmp_path, lifetime_seconds=120)
    try:
        assert emulator.endpoint.startswith("http://127.0.0.1:")
        assert answers(emulator.endpoint)
        listening = open("/proc/net/tcp").read().lower()
        port_hex = f":{emulator.port:04x} ".lower()
        bound = [line.split()[1] for line in listening.splitlines()[1:] if line.split()[1].endswith(port_hex.strip())]
        assert bound and all(address.startswith("0100007f:") for address in bound), bound  # 127.0.0.1 only
    finally:
        emulator.stop()
    assert not answers(emulator.endpoint)
    try:
        os.killpg(emulator.pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
