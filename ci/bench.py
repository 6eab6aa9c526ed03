#!/usr/bin/env python3
"""Benchmark, side by side on one local AWS (one ministack process; each cold run
in an account of its own, so every run starts from nothing):

  render      `python render.py --env dev --account-id ...` as a whole process (median of 5)
  apply       cold `deploy.py apply --local` (waves, stacks of a wave in parallel)
  sequential  the same stacks, one `sam deploy --config-env KEY` after another in
              wave order, with sam's default event polling (5 s)
  sequential  the same, with the polling deploy.py uses (SAM_CLI_POLL_DELAY=1)
  re-apply    `deploy.py apply --local` again, nothing changed (median of 3); it includes
              the lock and `check`'s read-back of storage's protections
  reviewed    a change to three stacks (webhook, backend-pipeline, backend: three waves,
              two of them SAM stacks), deployed by `apply`, and the same kind of change by
              `plan --out` then `apply --plan` (two rounds each, the faster one counts)

Targets: render < 0.3 s as a whole process; cold apply <= 0.4 x the sequential run
at equal polling; a no-change re-apply < 1 s; `apply --plan` no slower than `apply`
for the same change."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tooling.aws.emulator import Emulator  # noqa: E402

PY = sys.executable
SAM = str(ROOT / ".tools" / "sam" / "bin" / "sam")
OUT = ROOT / "build" / "local-dev"


def env_for(endpoint: str, account: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAM_CLI_POLL"))}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": account, "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0", **extra})
    return env


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(command[:4])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children that were waited for (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def render_for(account: str, env: dict) -> None:
    subprocess.run([PY, "render.py", "--env", "dev", "--account-id", account, "--region", "us-east-1", "--out", str(OUT), "-q"],
                   cwd=ROOT, env=env, check=True)


def overrides(manifest: dict, key: str, env: dict) -> list[str]:
    """--parameter-overrides for the parameters deploy.py fills from other stacks' outputs
    (by hand, as docs/deploying.md says), read from the stacks deployed before this one. A
    late parameter whose source is not deployed yet keeps its default, as on a first deploy."""
    import boto3

    stack = next(s for s in manifest["stacks"] if s["key"] == key)
    cfn = boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key="test")
    names = {s["key"]: s["name"] for s in manifest["stacks"]}
    values = []
    for parameter, source in (stack.get("parameters") or {}).items():
        try:
            outputs = cfn.describe_stacks(StackName=names[source["stack"]])["Stacks"][0].get("Outputs", [])
        except cfn.exceptions.ClientError:
            continue
        value = {o["OutputKey"]: o["OutputValue"] for o in outputs}.get(source["output"])
        if value is not None:
            values.append(f"{parameter}={value}")
    return ["--parameter-overrides", *values] if values else []


# A change to three stacks in three waves; none takes a parameter from another changed one,
# so every change set is made at plan time (tests/e2e/test_reviewed_deploys.py uses it too).
THREE_STACKS = {
    "webhook": ("stateless/webhook.yaml", "Description: GET and POST /webhook (Instagram subscription handshake and signed events)\n"),
    "backend-pipeline": ("stateless/backend-pipeline.yaml",
                         "Description: Installs the tool environments, runs the lint gates and unit tests, renders dev.\n"),
    "backend": ("stateless/backend.yaml", "Description: POST /sessions\n"),
}


def edit_three_stacks(out: Path, originals: dict[str, str], version: str) -> None:
    """Write version `version` of the change into the render in `out` (from the originals)."""
    for key, (path, line) in THREE_STACKS.items():
        text = originals[key]
        assert line in text, f"{line!r} not in {path}"
        (out / path).write_text(text.replace(line, line.rstrip("\n") + f" ({version})\n", 1))


def reviewed(env: dict) -> dict[str, float]:
    """apply vs plan --out + apply --plan, for the same change to three stacks (best of two rounds)."""
    originals = {key: (OUT / path).read_text() for key, (path, _) in THREE_STACKS.items()}
    plan_file = ROOT / "build" / "bench-plan.json"
    times: dict[str, list[float]] = {"apply": [], "plan": [], "apply --plan": []}
    try:
        for round_number in (1, 2):
            edit_three_stacks(OUT, originals, f"apply {round_number}")
            times["apply"].append(timed([PY, "deploy.py", "apply", "--env", "dev", "--local"], env))
            edit_three_stacks(OUT, originals, f"plan {round_number}")
            times["plan"].append(timed([PY, "deploy.py", "plan", "--env", "dev", "--local", "--out", str(plan_file)], env))
            planned = json.loads(plan_file.read_text())
            kept = [e["key"] for e in planned["stacks"] if e["change_set_id"]]
            if sorted(kept) != sorted(THREE_STACKS):
                sys.exit(f"bench: the plan kept change sets for {kept}, not for the three changed stacks")
            times["apply --plan"].append(timed([PY, "deploy.py", "apply", "--env", "dev", "--local", "--plan", str(plan_file)], env))
    finally:
        for key, (path, _) in THREE_STACKS.items():
            (OUT / path).write_text(originals[key])
    return {label: min(values) for label, values in times.items()}


def main() -> int:
    samples = []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(5):
            samples.append(timed([PY, "render.py", "--env", "dev", "--account-id", "123456789012", "--region", "us-east-1",
                                  "--out", str(Path(scratch) / "out"), "-q"], env_for("http://127.0.0.1:9", "123456789012")))
    render_seconds = statistics.median(samples)

    emulator = Emulator.start(ROOT / "build" / "local-aws", lifetime_seconds=1800)
    try:
        print(f"bench: local AWS {emulator.endpoint} (pid {emulator.pid})", flush=True)
        account = "111111111111"
        env = env_for(emulator.endpoint, account, DEPLOY_POLL_SECONDS="1")  # the polling of the sequential run below
        render_for(account, env)
        emulator_pid = int(subprocess.run(["pgrep", "-P", str(emulator.pid)], capture_output=True, text=True).stdout.split()[0]) \
            if Path(f"/proc/{emulator.pid}/cmdline").read_bytes().startswith(b"timeout") else emulator.pid
        cpu_before = cpu_seconds(emulator_pid)
        apply_seconds = timed([PY, "deploy.py", "apply", "--env", "dev", "--local", "--json"], env)
        emulator_cpu = {"apply": cpu_seconds(emulator_pid) - cpu_before}
        summary = json.loads(subprocess.run([PY, "deploy.py", "status", "--env", "dev", "--local", "--json"], cwd=ROOT, env=env,
                                            capture_output=True, text=True, check=True).stdout)
        held = [s["key"] for s in summary["stacks"] if s["status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")]
        reapply_seconds = statistics.median(timed([PY, "deploy.py", "apply", "--env", "dev", "--local"], env) for _ in range(3))
        review = reviewed(env)
        waves = json.loads((OUT / "manifest.json").read_text())["waves"]
        order = [key for wave in waves for key in wave if key in held]
        print(f"bench: stacks the local AWS holds: {', '.join(order)}", flush=True)

        sequential = {}
        for label, account, poll in (("sam default polling", "222222222222", None), ("SAM_CLI_POLL_DELAY=1", "333333333333", "1")):
            env = env_for(emulator.endpoint, account, **({"SAM_CLI_POLL_DELAY": poll} if poll else {}))
            render_for(account, env)
            total = 0.0
            cpu_before = cpu_seconds(emulator_pid)
            manifest = json.loads((OUT / "manifest.json").read_text())
            for key in order:
                total += timed([SAM, "deploy", "--config-file", str(OUT / "samconfig.toml"), "--config-env", key,
                                "--no-progressbar", *overrides(manifest, key, env)], env)
            sequential[label] = total
            emulator_cpu[label] = cpu_seconds(emulator_pid) - cpu_before
    finally:
        emulator.stop()
        manifest = OUT / "manifest.json"
        if manifest.exists():  # older than every source: the next run renders for its own account
            os.utime(manifest, (0, 0))

    equal = sequential["SAM_CLI_POLL_DELAY=1"]
    print()
    print(f"{'measure':<58} {'seconds':>8} {'emulator CPU s':>15}")
    print(f"{'render dev, whole process (median of 5)':<58} {render_seconds:>8.2f}")
    print(f"{'cold apply: deploy.py apply --local':<58} {apply_seconds:>8.1f} {emulator_cpu['apply']:>15.1f}")
    print(f"{'cold sequential sam deploy, sam default polling':<58} {sequential['sam default polling']:>8.1f} {emulator_cpu['sam default polling']:>15.1f}")
    print(f"{'cold sequential sam deploy, SAM_CLI_POLL_DELAY=1':<58} {equal:>8.1f} {emulator_cpu['SAM_CLI_POLL_DELAY=1']:>15.1f}")
    print(f"{'no-change re-apply: deploy.py apply --local (median of 3)':<58} {reapply_seconds:>8.2f}")
    print(f"{'change to 3 stacks: deploy.py apply --local':<58} {review['apply']:>8.1f}")
    print(f"{'change to 3 stacks: deploy.py plan --local --out FILE':<58} {review['plan']:>8.1f}")
    print(f"{'change to 3 stacks: deploy.py apply --local --plan FILE':<58} {review['apply --plan']:>8.1f}")
    print()
    ratio = apply_seconds / equal
    print(f"render {render_seconds:.2f}s as a whole process (target < 0.3 s): {'met' if render_seconds < 0.3 else 'NOT met'}")
    print(f"cold apply / sequential at equal polling = {ratio:.2f} (target <= 0.40): {'met' if ratio <= 0.4 else 'NOT met'}")
    print(f"no-change re-apply {reapply_seconds:.2f}s, lock and read-back included (target < 1 s): "
          f"{'met' if reapply_seconds < 1 else 'NOT met'}")
    print(f"apply --plan {review['apply --plan']:.1f}s vs apply {review['apply']:.1f}s for the same change to 3 stacks "
          f"(target: not slower): {'met' if review['apply --plan'] <= review['apply'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
