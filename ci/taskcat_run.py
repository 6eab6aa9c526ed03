#!/usr/bin/env python3
"""taskcat, end to end, in taskcat's own environment (called by ci/taskcat.sh):

  1. render the environment for the caller's account into build/taskcat/
  2. deploy its storage stack with deploy.py (the stateless tests import from it)
  3. package the SAM code (backend, webhook) into its artifacts bucket
  4. `taskcat test run`, every test of .taskcat.yml, through ci/taskcat_launch.py;
     taskcat writes taskcat_outputs/index.html and deletes its test stacks
  5. turn the storage stack's termination protection off and delete it with
     `deploy.py destroy --include-storage`, whose ledger lists what it retained
  6. remove that with ci/taskcat_cleanup.py: nothing of the environment is left

    python ci/taskcat_run.py --env taskcat [--local] [taskcat test run options]

--local runs against the embedded local AWS: AWS_ENDPOINT_URL if set, otherwise an
emulator started here (127.0.0.1, bounded in time, stopped by its process id).
Exit 0 only when every test passed and nothing was left behind."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcat_cleanup import require_taskcat_environment  # noqa: E402

from tooling.aws import emulator, session  # noqa: E402
from tooling.errors import UserError  # noqa: E402
from tooling.render import environment, naming  # noqa: E402

OUT = ROOT / "build" / "taskcat"
REPORT = ROOT / "taskcat_outputs"
SAM_KEYS = ("backend", "webhook")
LIFETIME_SECONDS = 1800


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(*command: str, env: dict | None = None) -> int:
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ci/taskcat.sh", description=__doc__.split("\n\n")[0],
                                     epilog="Other options go to `taskcat test run` (e.g. --minimal-output).")
    parser.add_argument("--env", required=True, help="taskcat's environment (environments/taskcat.toml)")
    parser.add_argument("--local", action="store_true", help="the embedded local AWS (AWS_ENDPOINT_URL, or one started here)")
    args, taskcat_args = parser.parse_known_args(argv)
    started = time.monotonic()
    local_aws = None
    try:
        env = environment.load(args.env)
        if not args.local and os.environ.get("AWS_ENDPOINT_URL"):
            raise UserError(f"AWS_ENDPOINT_URL is set ({os.environ['AWS_ENDPOINT_URL']}): add --local to run against it")
        region = naming.check_region(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or env["region"])
        if args.local:
            for key, value in emulator.LOCAL_CREDENTIALS.items():
                os.environ.setdefault(key, value)
            if not os.environ.get("AWS_ENDPOINT_URL"):
                step("start the local AWS (ministack with the stand-ins, 127.0.0.1, free port)")
                local_aws = emulator.Emulator.start(ROOT / "build" / "local-aws", lifetime_seconds=LIFETIME_SECONDS)
                os.environ["AWS_ENDPOINT_URL"] = local_aws.endpoint
                print(f"local AWS on {local_aws.endpoint} (pid {local_aws.pid})")
        os.environ.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "SAM_CLI_TELEMETRY": "0"})
        account = session.caller_identity(region)["Account"]
        return _run(args, taskcat_args, region, account)
    except UserError as exc:
        print(f"taskcat: {exc}", file=sys.stderr)
        return exc.status
    except (session.ClientError, session.BotoCoreError) as exc:
        print(f"taskcat: {session.describe_error(exc)}", file=sys.stderr)
        return 1
    finally:
        if local_aws is not None:
            local_aws.stop()
            print(f"local AWS stopped (pid {local_aws.pid})")
        print(f"taskcat: finished in {time.monotonic() - started:.0f}s")


def _run(args, taskcat_args, region: str, account: str) -> int:
    python, local = sys.executable, ["--local"] if args.local else []
    step(f"render {args.env} for {account}/{region} into {OUT.relative_to(ROOT)}")
    if run(python, "render.py", "--env", args.env, "--account-id", account, "--region", region, "--out", str(OUT), "-q"):
        return 2
    manifest = json.loads((OUT / "manifest.json").read_text())
    names = {s["key"]: s["name"] for s in manifest["stacks"]}
    require_taskcat_environment(args.env, names)
    cfn = session.client("cloudformation", region)
    there = [n for k, n in names.items() if k != naming.STORAGE
             and any(s["StackStatus"] != "DELETE_COMPLETE" for s in _stacks(cfn, n))]
    if there:
        raise UserError(f"{', '.join(there)} already exist (an earlier run that did not end?): remove them first: "
                        f"python deploy.py destroy --env {args.env}{' --local' if args.local else ''}")

    step(f"deploy {names['storage']} first: the stateless tests import from it")
    applied = run(python, "deploy.py", "apply", "--env", args.env, "--only", naming.STORAGE, *local)
    if applied:
        print(f"taskcat: the storage stack did not deploy (exit {applied}); if check found orphans of an earlier run, "
              f"remove them: python ci/taskcat_cleanup.py --env {args.env}{' --local' if args.local else ''}", file=sys.stderr)
        return applied

    step("package the SAM code into the storage stack's artifacts bucket")
    bucket = manifest["physical_names"]["buckets"]["backend_artifacts"]
    for key in SAM_KEYS:
        template = str(OUT / "stateless" / f"{key}.yaml")
        if run(str(ROOT / ".tools" / "sam" / "bin" / "sam"), "package", "--template-file", template, "--s3-bucket", bucket,
               "--s3-prefix", f"taskcat/{key}", "--region", region, "--output-template-file", template):
            return 1

    step("taskcat test run: every test of .taskcat.yml")
    shutil.rmtree(REPORT, ignore_errors=True)
    launch_env = {**os.environ, "TASKCAT_MANIFEST": str(OUT / "manifest.json"), "PYTHONWARNINGS": "ignore::UserWarning"}
    tested = run(str(ROOT / ".tools" / "taskcat" / "bin" / "python"), "ci/taskcat_launch.py", "test", "run",
                 "--regions", region, "--output-directory", str(REPORT), *taskcat_args, env=launch_env)
    print(f"taskcat: test run {'passed' if tested == 0 else 'FAILED'} (exit {tested}); "
          f"report: {(REPORT / 'index.html').relative_to(ROOT)}{'' if (REPORT / 'index.html').exists() else ' (not written)'}")

    step("delete the storage stack; the ledger lists what it retained")
    remaining = [n for k, n in names.items() if k != naming.STORAGE and any(
        s["StackStatus"] != "DELETE_COMPLETE" for s in _stacks(cfn, n))]
    if remaining:
        print(f"taskcat: {', '.join(remaining)} still exist (taskcat kept them): the storage stack stays; "
              f"remove them with: python deploy.py destroy --env {args.env}{' --local' if args.local else ''} --include-storage "
              f"(after turning termination protection off), then python ci/taskcat_cleanup.py --env {args.env}"
              f"{' --local' if args.local else ''}", file=sys.stderr)
        return 1
    if _stacks(cfn, names[naming.STORAGE]):
        cfn.update_termination_protection(StackName=names[naming.STORAGE], EnableTerminationProtection=False)
        print(f"taskcat: termination protection of {names[naming.STORAGE]} turned off (taskcat's environment only)")
    destroyed = run(python, "deploy.py", "destroy", "--env", args.env, "--include-storage", *local)

    step("clean up what the storage stack retained")
    cleaned = run(python, "ci/taskcat_cleanup.py", "--env", args.env, *local)
    return tested or destroyed or cleaned


def _stacks(cfn, name: str) -> list[dict]:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"]
    except session.ClientError as exc:
        if "does not exist" in session.error_message(exc):
            return []
        raise


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("taskcat: interrupted", file=sys.stderr)
        sys.exit(130)
