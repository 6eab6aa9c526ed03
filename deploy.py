#!/usr/bin/env python3
"""Deploy the rendered stacks of one environment, safely and in order.

    python deploy.py plan    --env dev          waves, and per stack "create" or its change-set summary
    python deploy.py apply   --env dev [--only KEY ...]
    python deploy.py status  --env dev
    python deploy.py check   --env dev          orphans, exports in use, stateful replacements
    python deploy.py adopt   --env dev          take orphaned buckets/table back into storage
    python deploy.py destroy --env dev [--include-storage]
    add --local to any of them to target the embedded local AWS (ministack)

Uses the standard AWS environment (profile, region, AWS_ENDPOINT_URL). Renders
first when the render is missing or older than its sources. Exit status: 0 done,
1 a deploy failed, 2 bad input (nothing changed), 3 check found a blocking issue."""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from tooling import environment, naming
from tooling.errors import UserError

ROOT = Path(__file__).resolve().parent


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", required=True, help=f"environment (known: {', '.join(environment.available())})")
    common.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the environment file)")
    common.add_argument("--local", action="store_true",
                        help="target the embedded local AWS: AWS_ENDPOINT_URL if set, else start ministack on a free loopback port")
    common.add_argument("--keep", action="store_true", help="with --local: leave a started emulator running and print how to reach it")
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout (progress goes to stderr)")

    parser = argparse.ArgumentParser(prog="deploy.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Exit status: 0 done, 1 a deploy failed, 2 bad input (nothing changed), 3 a blocking finding.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("plan", parents=[common], help="show the waves and what each stack's deploy would change (change sets, never executed)")
    apply = commands.add_parser("apply", parents=[common], help="deploy wave by wave; protect the storage stack")
    apply.add_argument("--only", nargs="+", metavar="KEY", help=f"deploy only these stacks ({', '.join(naming.STACK_KEYS)})")
    for name, what in (("--allow-orphans", "create over resources that exist but no stack owns"),
                       ("--allow-other-owner", "create over resources another stack owns"),
                       ("--allow-export-change", "change or remove exports other stacks import"),
                       ("--allow-stateful-change", "replace or remove a stateful resource of the storage stack")):
        apply.add_argument(name, action="store_true", help=f"override check: {what}")
    commands.add_parser("check", parents=[common],
                        help="before anything changes: orphans and name collisions, exports in use, stateful replacements (exit 3 if any)")
    commands.add_parser("adopt", parents=[common],
                        help="import orphaned storage resources (buckets, table) into the storage stack, data kept")
    commands.add_parser("status", parents=[common], help="a table of the stacks: status, protection, last update, outputs")
    destroy = commands.add_parser("destroy", parents=[common], help="delete the stateless stacks in reverse wave order (never empties a bucket)")
    destroy.add_argument("--include-storage", action="store_true",
                         help="also delete the storage stack, only if you already turned its termination protection off; its resources are retained")
    return parser.parse_args(argv)


@contextmanager
def target(args, log):
    """The AWS to talk to: real, an emulator at AWS_ENDPOINT_URL, or one started here."""
    if not args.local:
        yield None
        return
    from tooling import emulator

    for key, value in emulator.LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    if os.environ.get("AWS_ENDPOINT_URL"):
        log(f"local AWS: using AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']}")
        yield None
        return
    started = emulator.Emulator.start(ROOT / "build" / "local-aws")
    os.environ["AWS_ENDPOINT_URL"] = started.endpoint
    log(f"local AWS: ministack started on {started.endpoint} (pid {started.pid})")
    try:
        yield started
    finally:
        if args.keep:
            (ROOT / "build" / "local-aws" / "ministack.pid").write_text(f"{started.pid}\n")
            log(f"local AWS: left running (--keep). Reach it with:\n"
                f"  export AWS_ENDPOINT_URL={started.endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION={os.environ.get('AWS_REGION', 'us-east-1')}\n"
                f"  stop it with: kill -TERM -{started.pid}")
        else:
            started.stop()
            log(f"local AWS: stopped (pid {started.pid})")


def main(argv=None) -> int:
    args = parse_args(argv)
    out = sys.stderr if args.json else sys.stdout

    def log(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        environment.load(args.env)  # bad input is refused before anything starts or changes
        if args.region:
            naming.check_region(args.region)
        for key in getattr(args, "only", None) or []:
            if key not in naming.STACK_KEYS:
                raise UserError(f"stack key {key!r}: unknown (known: {', '.join(naming.STACK_KEYS)})")
        if args.keep and not args.local:
            raise UserError("--keep: only with --local (it keeps the local AWS running)")
        with target(args, log):
            from tooling import commands

            return commands.run(args, log, out)
    except UserError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return exc.status
    except Exception as exc:  # an AWS refusal or outage: one line, not a traceback
        import botocore.exceptions

        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            print(f"deploy: AWS {exc.operation_name}: {error.get('Code', '')}: {error.get('Message', exc)}", file=sys.stderr)
            return 1
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            print(f"deploy: AWS: {exc}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("deploy: interrupted; stacks already in progress go on in CloudFormation (see: deploy.py status)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `deploy.py status | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
