"""Runs `sam` commands for deploy.py without paying sam's start-up on every stack.

This file is executed by the sam environment's own Python (.tools/sam/bin/python),
never imported by the project: it imports the SAM CLI once (about 2 s of CPU), then
forks one child per request, and each child runs the real `sam` command line
(samcli.cli.main) with its own arguments, working folder, environment and log.

Protocol, one JSON object per line:
  stdin   {"id": 1, "args": ["deploy", ...], "cwd": "...", "env": {...}, "log": "..."}
  stdout  {"ready": true} once, then {"id": 1, "exit": 0} per finished request
"""
import json
import os
import sys
import threading

os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
from samcli.cli.main import cli  # noqa: E402
# The expensive part: sam imports its commands lazily, so load package and deploy (and the
# packaging and translator code it pulls in) once here, before any fork.
import samcli.commands.deploy.command  # noqa: E402,F401
import samcli.commands.package.command  # noqa: E402,F401
import samcli.commands.deploy.deploy_context  # noqa: E402,F401
import samcli.lib.package.artifact_exporter  # noqa: E402,F401
import samcli.lib.deploy.deployer  # noqa: E402,F401
import boto3  # noqa: E402

boto3.session.Session().client("cloudformation", region_name="us-east-1")  # loads botocore's service models
boto3.session.Session().client("s3", region_name="us-east-1")

_write_lock = threading.Lock()


def _say(message: dict) -> None:
    with _write_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def _child(request: dict) -> None:
    """In the forked child: become the sam process the request describes."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    # Fresh stream objects: a reaper thread of the parent may have held the old ones' locks at fork time.
    sys.stdin = open(0)
    sys.stdout = open(1, "w", buffering=1)
    sys.stderr = open(2, "w", buffering=1)
    code = 1
    try:
        cli.main(args=request["args"], prog_name="sam")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # noqa: BLE001 - report anything, then exit
        print(f"sam: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(request_id, pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    _say({"id": request_id, "exit": os.waitstatus_to_exitcode(status)})


def main() -> None:
    _say({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        threading.Thread(target=_reap, args=(request["id"], pid), daemon=True).start()


if __name__ == "__main__":
    main()
