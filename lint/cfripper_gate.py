"""The cfripper gate: Skyscanner's cfripper (IAM and resource-policy rules) over the renders.

    .venv/bin/python lint/cfripper_gate.py build/lint/dev-us-east-1 build/lint/prod-us-east-1 ...   (ci/lint.sh runs it)
    .venv/bin/python lint/cfripper_gate.py --list build/lint/prod-us-east-1    every finding, accepted or not

cfripper (.tools/cfripper, its own pinned environment: ci/requirements/cfripper.txt) reads
plain CloudFormation only, so SAM templates are expanded first, as CloudFormation expands
them (lint/sam_transform.py, the roles SAM generates included), and its resolver fills
parameters and imports with placeholders.

Every finding must be accepted by lint/cfripper-exceptions.toml, each entry with its reason;
an entry that no longer matches a finding fails the gate too, so the file stays exactly the
list of what cfripper reports and the design accepts."""
from __future__ import annotations

import argparse
import copy
import json
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lint import guard  # noqa: E402
from tooling.errors import UserError  # noqa: E402
from tooling.render import environment  # noqa: E402

CFRIPPER = ROOT / ".tools" / "cfripper" / "bin" / "cfripper"
EXCEPTIONS = Path(__file__).resolve().parent / "cfripper-exceptions.toml"
_RULE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+Rule$")


@dataclass(frozen=True)
class Finding:
    render: str        # "<env> in <region>"
    env: str
    stack: str         # stack key
    rule: str          # cfripper rule, e.g. PrivilegeEscalationRule
    resource: str      # logical id ("" when the finding names none)
    actions: tuple[str, ...] = ()
    reason: str = field(compare=False, default="")

    def line(self) -> str:
        return f"{self.render}: {self.stack}/{self.resource or '-'}: {self.rule}: {self.reason}"


@dataclass
class Exception_:
    index: int
    rule: str
    resources: list[str]     # "<stack key>/<logical id>"
    actions: list[str]       # [] = any action
    when: dict
    reason: str

    def applies_to(self, env: dict) -> bool:
        return all(guard._lookup(env, key) == value for key, value in self.when.items())

    def covers(self, finding: Finding) -> bool:
        return (finding.rule == self.rule and f"{finding.stack}/{finding.resource}" in self.resources
                and (not self.actions or set(finding.actions) <= set(self.actions)))

    def name(self) -> str:
        return f"exception {self.index} ({self.rule}, {', '.join(self.resources)})"


def load_exceptions(path: Path) -> list[Exception_]:
    found = []
    for index, name, entry in guard.exception_entries(path, ("rule", "resources", "actions", "when", "reason")):
        rule, resources, actions = entry.get("rule"), entry.get("resources"), entry.get("actions", [])
        reason, when = entry.get("reason"), entry.get("when", {})
        if not isinstance(rule, str) or not _RULE_NAME.match(rule):
            raise UserError(f"{name}: rule must name a cfripper rule (e.g. PrivilegeEscalationRule)")
        if not isinstance(resources, list) or not resources or not all(
                isinstance(r, str) and re.fullmatch(r"[a-z-]+/[A-Za-z0-9]+", r) for r in resources):
            raise UserError(f"{name}: resources must list \"<stack key>/<logical id>\" entries")
        if not isinstance(actions, list) or not all(isinstance(a, str) and ":" in a for a in actions):
            raise UserError(f"{name}: actions must list IAM actions (service:Action)")
        if not isinstance(reason, str) or len(reason.split()) < 8:
            raise UserError(f"{name}: reason must say why the finding is accepted (a sentence or more)")
        if not isinstance(when, dict) or any(key not in environment.SCHEMA for key in when):
            raise UserError(f"{name}: when must be a table of keys of the environment files and their values")
        found.append(Exception_(index, rule, resources, actions, when, reason))
    return found


def readable(template: dict) -> dict:
    """The template as pycfmodel 2.1.3 can parse it. It takes an alarm's Threshold as an integer
    only (AWS takes a double); cfripper judges no threshold, so a fraction is rounded up."""
    template = copy.deepcopy(template)
    for resource in (template.get("Resources") or {}).values():
        properties = resource.get("Properties") if isinstance(resource, dict) else None
        if resource.get("Type") == "AWS::CloudWatch::Alarm" and isinstance(properties, dict):
            threshold = properties.get("Threshold")
            if isinstance(threshold, float):
                properties["Threshold"] = math.ceil(threshold)
    return template


def evaluate(renders: list[guard.Render], cfripper: Path = CFRIPPER) -> list[Finding]:
    if not cfripper.is_file():
        raise UserError(f"{cfripper}: missing (cfripper's environment); run ci/setup.sh")
    findings = []
    with tempfile.TemporaryDirectory(prefix="cfripper-") as folder:
        where, names = {}, []
        for number, render in enumerate(renders):
            for stack in render.manifest["stacks"]:
                name = f"{number}-{stack['key']}.json"
                (Path(folder) / name).write_text(json.dumps(readable(render.templates[stack["key"]])), encoding="utf-8")
                where[name] = (render, stack["key"])
                names.append(name)
        out = Path(folder) / "results"
        out.mkdir()
        account = renders[0].manifest["account_id"] if renders else "123456789012"
        done = subprocess.run([str(cfripper), *names, "--resolve", "--format", "json", "--logging", "ERROR",
                               "--aws-account-id", account, "--output-folder", str(out)],
                              cwd=folder, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 2):
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise UserError(f"cfripper failed (exit {done.returncode}): {' | '.join(tail)}")
        for name in names:
            render, key = where[name]
            result_path = out / f"{name}.cfripper.results.json"
            try:
                result = json.loads(result_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise UserError(f"cfripper wrote no readable result for {render.label} {key}") from None
            for failure in result.get("failures", []):
                for resource in failure.get("resource_ids") or [""]:
                    findings.append(Finding(render.label, render.manifest["env"], key, failure["rule"], resource,
                                            tuple(sorted(failure.get("actions") or ())), failure.get("reason", "")))
    return sorted(set(findings), key=lambda f: (f.render, f.stack, f.resource, f.rule, f.actions))


def judge(findings: list[Finding], renders: list[guard.Render], exceptions: list[Exception_]) -> tuple[list[Finding], list[Exception_]]:
    """(findings no exception accepts, exceptions that accept none of the findings)."""
    envs = {r.manifest["env"]: r.env for r in renders}
    used = set()
    open_ = []
    for finding in findings:
        covering = [e for e in exceptions if e.applies_to(envs[finding.env]) and e.covers(finding)]
        used |= {e.index for e in covering}
        if not covering:
            open_.append(finding)
    checked_envs = list(envs.values())
    stale = [e for e in exceptions if e.index not in used and any(e.applies_to(env) for env in checked_envs)]
    return open_, stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lint/cfripper_gate.py", description=__doc__.splitlines()[0])
    parser.add_argument("renders", nargs="+", type=Path, help="render directories (render.py --out)")
    parser.add_argument("--list", action="store_true", help="print every finding, accepted or not, and pass")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS, help=argparse.SUPPRESS)  # the tests' own files
    args = parser.parse_args(argv)
    try:
        exceptions = [] if args.list else load_exceptions(args.exceptions)
        renders = [guard.load_render(d) for d in args.renders]
        guard.expand_sam(renders, guard.SAM_PYTHON)
        findings = evaluate(renders)
        if args.list:
            for finding in findings:
                print(finding.line())
            print(f"cfripper: {len(findings)} finding(s)")
            return 0
        open_, stale = judge(findings, renders, exceptions)
    except UserError as exc:
        print(f"cfripper gate: {exc}", file=sys.stderr)
        return 2
    for finding in open_:
        print(f"cfripper: {finding.line()}", file=sys.stderr)
    for entry in stale:
        print(f"cfripper: {guard._shown(args.exceptions)}: {entry.name()} matches no finding any more: remove it", file=sys.stderr)
    if open_ or stale:
        print(f"lint: cfripper failed: {len(open_)} finding(s) not accepted, {len(stale)} stale exception(s)", file=sys.stderr)
        return 1
    print(f"lint: cfripper: 0 findings outside {guard._shown(args.exceptions)} "
          f"({len(findings)} accepted by {len(exceptions)} reasoned exception(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
