"""ministack with the stand-ins: registers them (and the fixes of fixes.py), then
serves as `ministack` does.
Run with the emulator's own Python (tooling/aws/emulator.py does):

    BIND_HOST=127.0.0.1 GATEWAY_PORT=4566 .tools/ministack/bin/python tooling/aws/standins/launch.py"""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root: `tooling` is importable

MINISTACK_VERSION = "1.5.33"  # the providers read this version's internal stores


def main() -> int:
    found = metadata.version("ministack")
    if found != MINISTACK_VERSION:
        print(f"standins: ministack {found} installed, the stand-ins are written for {MINISTACK_VERSION} (run ./ci/setup.sh)",
              file=sys.stderr)
        return 2
    from tooling.aws.standins import api, fixes, providers

    try:
        providers.register()
    except (RuntimeError, KeyError, OSError) as exc:
        print(f"standins: {exc}", file=sys.stderr)
        return 2
    api.register()
    fixes.register()
    from ministack.app import main as serve

    sys.argv = [sys.argv[0]]
    return serve() or 0


if __name__ == "__main__":
    sys.exit(main())
