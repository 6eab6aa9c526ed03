#!/usr/bin/env python3
"""The whole system on the embedded local AWS, end to end (called by ci/local-deploy.sh):
start the emulator, render dev, apply all seven stacks (the stand-ins provide what the
emulator lacks), smoke-check the running system over HTTP, serve the web page on
http://localhost:5173 and use it in headless Chromium (a screenshot in build/browser/),
print the stack outputs, stop.

    python ci/local_deploy.py [--env dev] [--keep]"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "ci"))

import frontend_server  # noqa: E402

from tooling.aws.emulator import LOCAL_CREDENTIALS, Emulator  # noqa: E402
from tooling.errors import UserError  # noqa: E402

LIFETIME_SECONDS = 3600  # a forgotten --keep emulator still ends by itself


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(*command: str) -> int:
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ci/local-deploy.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dev", help="environment to render and deploy (default: dev)")
    parser.add_argument("--keep", action="store_true", help="leave the emulator running at the end and print how to reach it")
    args = parser.parse_args(argv)
    started = time.monotonic()
    python = sys.executable

    step("start the local AWS (ministack with the stand-ins, 127.0.0.1, free port)")
    try:
        emulator = Emulator.start(ROOT / "build" / "local-aws", lifetime_seconds=None if args.keep else LIFETIME_SECONDS)
    except UserError as exc:
        print(f"local-deploy: {exc}", file=sys.stderr)
        return exc.status
    os.environ.update({"AWS_ENDPOINT_URL": emulator.endpoint, "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"), **LOCAL_CREDENTIALS})
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    print(f"local AWS on {emulator.endpoint} (pid {emulator.pid}, log {emulator.log.relative_to(ROOT)})")
    status = 1
    page = None
    try:
        step(f"render {args.env} for the local account")
        if run(python, "render.py", "--env", args.env, "--account-id", "000000000000", "--out", f"build/local-{args.env}"):
            return 2
        step("apply all seven stacks (stand-ins provide what the emulator lacks)")
        applied = run(python, "deploy.py", "apply", "--env", args.env, "--local")
        if applied:
            return applied
        step("smoke check: the system used as a user would")
        if run(python, "ci/smoke.py", "--env", args.env, "--local", "--seed-secrets"):
            return 1
        step("the web page, served on loopback, used in headless Chromium")
        outputs = {}
        status_json = subprocess.run([python, "deploy.py", "status", "--env", args.env, "--local", "--json"], cwd=ROOT,
                                     capture_output=True, text=True)
        for stack in json.loads(status_json.stdout or "{}").get("stacks", []):
            outputs.update(stack["outputs"])
        api = f"{emulator.endpoint}/_aws/execute-api/{outputs['HttpApiId']}"
        try:
            site = frontend_server.build_site(api)   # as the frontend pipeline builds it: the real version in the footer
            page = frontend_server.start(api, lifetime=None if args.keep else LIFETIME_SECONDS, site=site)
        except RuntimeError as exc:
            print(f"local-deploy: {exc}", file=sys.stderr)
            return 1
        print(f"web page on http://localhost:{frontend_server.PORT}/ (pid {page.pid}), API {api}, "
              f"version {json.loads((site / 'version.json').read_text())['version']}")
        screenshot = ROOT / "build" / "browser" / "upload.png"
        if run(str(ROOT / ".tools" / "playwright" / "bin" / "python"), "ci/browser_check.py",
               "--url", f"http://localhost:{frontend_server.PORT}/", "--screenshot", str(screenshot)):
            return 1
        step("stack outputs")
        run(python, "deploy.py", "status", "--env", args.env, "--local")
        status = 0
        return 0
    finally:
        elapsed = time.monotonic() - started
        if args.keep:
            print(f"\nlocal AWS left running: export AWS_ENDPOINT_URL={emulator.endpoint} "
                  f"AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION={os.environ['AWS_REGION']}\n"
                  f"stop it with: kill -TERM -{emulator.pid}")
            if page is not None:
                print(f"web page left running on http://localhost:{frontend_server.PORT}/: stop it with: kill -TERM -{page.pid}")
        else:
            if page is not None:
                frontend_server.stop(page)
                print(f"\nweb page stopped (pid {page.pid})")
            emulator.stop()
            print(f"local AWS stopped (pid {emulator.pid})")
        print(f"local-deploy: {'done' if status == 0 else 'FAILED'} in {elapsed:.0f}s")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the emulator was stopped by main's finally
        print("local-deploy: interrupted", file=sys.stderr)
        sys.exit(130)
