"""The Control Tower gate: AWS Control Tower's proactive controls, run by cfn-guard over renders.

    .venv/bin/python lint/guard.py build/lint/dev-us-east-1 build/lint/prod-us-east-1 ...   (ci/lint.sh runs it)
    .venv/bin/python lint/guard.py --list build/lint/prod-us-east-1    every failing control, accepted or not

An organization can enforce these controls as CloudFormation hooks, which refuse a deploy
that fails one. A hook judges each resource as CloudFormation is about to create it, so the
gate evaluates each rendered template in that shape, with the real cfn-guard and the real
rules (.tools/cfn-guard, from ci/setup-guard.sh):

- SAM templates are expanded first (lint/sam_transform.py): a hook sees the
  AWS::Lambda::Function and AWS::IAM::Role that AWS::Serverless::Function becomes;
- a value another stack provides (Fn::ImportValue, or a parameter deploy.py fills from
  another stack's output) is replaced by what that stack's output is made of, with the
  resource it names declared beside it: an imported KMS key ARN is then a reference to an
  AWS::KMS::Key, as it is once CloudFormation has resolved the import for the hook. Those
  linked declarations are not judged here: each resource is judged in its own template.

Every failing control must be accepted by lint/guard-exceptions.toml, which lists the
controls this design cannot meet, each with its reason; an entry that no longer matches a
failure fails the gate too, so the file stays exactly the list of what is not met."""
from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tooling.errors import UserError  # noqa: E402
from tooling.render import cfn_yaml, environment, graph  # noqa: E402

GUARD = ROOT / ".tools" / "cfn-guard" / "bin" / "cfn-guard"
RULES = ROOT / ".tools" / "cfn-guard" / "rules" / "control-tower" / "cfn-guard"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"
SAM_TRANSFORM = Path(__file__).resolve().parent / "sam_transform.py"
EXCEPTIONS = Path(__file__).resolve().parent / "guard-exceptions.toml"
SAM = "AWS::Serverless-2016-10-31"
LINKED = "LinkedFrom"  # Metadata key of a linked declaration
_RULE = re.compile(r"^rule\s+([A-Za-z0-9_]+)\s+when\b", re.MULTILINE)
_REPORTS_ON = re.compile(r"^# Reports on:\s*\n#\s*(.+)$", re.MULTILINE)
_RESOURCE_PATH = re.compile(r"^/Resources/([^/]+)")
_CONTROL = re.compile(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]:\s*([^\n]*)")
_FIX = re.compile(r"\[FIX\]:\s*([^\n]*)")
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass(frozen=True)
class Finding:
    render: str         # "<env> in <region>"
    stack: str          # stack key
    template: str       # the rendered template, relative to its render
    control: str        # CT.S3.PR.8
    resource: str       # logical id
    title: str = field(compare=False, default="")
    fix: str = field(compare=False, default="")

    def line(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{self.render}: {self.template} {self.resource}: {self.control} not met ({self.title}).{fix}"


@dataclass
class Exception_:
    index: int
    control: str
    resources: list[str]   # "<stack>/<logical id>" or "*"
    when: dict
    reason: str

    def applies_to(self, env: dict) -> bool:
        return all(_lookup(env, key) == value for key, value in self.when.items())

    def covers(self, finding: Finding) -> bool:
        return finding.control == self.control and (
            "*" in self.resources or f"{finding.stack}/{finding.resource}" in self.resources)

    def name(self) -> str:
        return f"exception {self.index} ({self.control}, {', '.join(self.resources)})"


def _lookup(data: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


# ---- the controls ----------------------------------------------------------------------

def controls(rules_dir: Path) -> dict[str, str]:
    """rule name -> control id (ct-s3-pr-8.guard holds CT.S3.PR.8)."""
    found = {}
    for path in sorted(rules_dir.rglob("ct-*.guard")):
        control = path.stem.upper().replace("-", ".")
        for name in set(_RULE.findall(path.read_text(encoding="utf-8"))):
            found[name] = control
    if not found:
        raise UserError(f"{rules_dir}: no Control Tower rules (ct-*.guard) found; run ci/setup.sh")
    return found


def rule_files(rules_dir: Path, types: set[str]) -> list[Path]:
    """The rule files that report on a resource type the templates hold (a rule reporting
    on none of them would only SKIP); a file that does not say what it reports on is kept."""
    chosen = []
    for path in sorted(rules_dir.rglob("ct-*.guard")):
        found = _REPORTS_ON.search(path.read_text(encoding="utf-8"))
        reported = {t.strip() for t in found.group(1).split(",")} if found else None
        if reported is None or reported & types:
            chosen.append(path)
    return chosen


# ---- exceptions ----------------------------------------------------------------------------

def exception_entries(path: Path, keys: tuple[str, ...]):
    """The [[exception]] tables of a reasoned exceptions file (this gate's and cfripper's):
    (index, name for messages, entry), each holding only `keys`; one line of bad input otherwise."""
    where = _shown(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{where}: missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: malformed TOML: {exc}") from None
    unknown = set(data) - {"exception"}
    if unknown:
        raise UserError(f"{where}: unknown top-level key {sorted(unknown)[0]!r} (entries are [[exception]] tables)")
    for index, entry in enumerate(data.get("exception", []), start=1):
        name = f"{where}: exception {index}"
        extra = set(entry) - set(keys)
        if extra:
            raise UserError(f"{name}: unknown key {sorted(extra)[0]!r} ({', '.join(keys)})")
        yield index, name, entry


def load_exceptions(path: Path, known_controls: set[str]) -> list[Exception_]:
    found = []
    for index, name, entry in exception_entries(path, ("control", "resources", "when", "reason")):
        control, resources = entry.get("control"), entry.get("resources")
        reason, when = entry.get("reason"), entry.get("when", {})
        if control not in known_controls:
            raise UserError(f"{name}: control {control!r} is not one of the Control Tower rules installed")
        if not isinstance(resources, list) or not resources or not all(
                isinstance(r, str) and (r == "*" or re.fullmatch(r"[a-z-]+/[A-Za-z0-9]+", r)) for r in resources):
            raise UserError(f"{name}: resources must list \"<stack key>/<logical id>\" entries, or \"*\"")
        if not isinstance(reason, str) or len(reason.split()) < 8:
            raise UserError(f"{name}: reason must say why this design cannot meet {control} (a sentence or more)")
        if not isinstance(when, dict):
            raise UserError(f"{name}: when must be a table of environment keys and values")
        for key in when:
            if key not in environment.SCHEMA:
                raise UserError(f"{name}: when names {key!r}, which is not a key of the environment files")
        found.append(Exception_(index, control, resources, when, reason))
    return found


# ---- a render in the shape a hook judges -------------------------------------------------

@dataclass
class Render:
    directory: Path
    manifest: dict
    env: dict
    templates: dict[str, dict]  # stack key -> template (SAM expanded, long-form intrinsics)

    @property
    def label(self) -> str:
        return f"{self.manifest['env']} in {self.manifest['region']}"


def load_render(directory: Path) -> Render:
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{directory}: not a render (no readable manifest.json); render it with render.py") from None
    templates = {}
    for stack in manifest["stacks"]:
        templates[stack["key"]] = cfn_yaml.load((directory / stack["template"]).read_text(encoding="utf-8"))
    return Render(directory, manifest, environment.load(manifest["env"]), templates)


def expand_sam(renders: list[Render], sam_python: Path) -> None:
    """Every SAM template of every render, expanded in one run of the transform."""
    items = [(render, key) for render in renders for key, template in render.templates.items()
             if template.get("Transform") == SAM or SAM in (template.get("Transform") or [])]
    if not items:
        return
    if not sam_python.is_file():
        raise UserError(f"{sam_python}: missing (the SAM CLI environment); run ci/setup.sh")
    payload = [{"template": render.templates[key], "region": _stack(render, key).get("region", render.manifest["region"])}
               for render, key in items]
    done = subprocess.run([str(sam_python), str(SAM_TRANSFORM)], input=json.dumps(payload),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UserError(f"lint/sam_transform.py: the SAM transform failed: {done.stderr.strip().splitlines()[-1:]}")
    for (render, key), expanded in zip(items, json.loads(done.stdout)):
        render.templates[key] = expanded


def _stack(render: Render, key: str) -> dict:
    return next(stack for stack in render.manifest["stacks"] if stack["key"] == key)


def linked(render: Render, key: str) -> dict:
    """The template with every value from another stack replaced by what that stack's output is
    made of, and the resources that names declared beside it (Metadata LinkedFrom)."""
    template = copy.deepcopy(render.templates[key])
    stack = _stack(render, key)
    exporter = {}
    for other in render.manifest["stacks"]:
        for export in other.get("exports", []):
            exporter[export] = (other["key"], export[len(other["name"]) + 1:])
    variables = graph.template_variables(template, stack["name"], render.manifest["account_id"], stack.get("region", render.manifest["region"]))
    sources = (template.get("Metadata") or {}).get("ParameterSources") or {}
    linked_ids: dict[str, dict] = {}

    def output_value(producer: str, output: str, where: str):
        outputs = render.templates[producer].get("Outputs") or {}
        if output not in outputs:
            raise UserError(f"{render.manifest['env']}: {where}: stack {producer} has no output {output}")
        return _renamed(copy.deepcopy(outputs[output]["Value"]), producer, render.templates[producer], linked_ids)

    def visit(node, path):
        if isinstance(node, dict):
            if set(node) == {"Fn::ImportValue"}:
                where = f"{stack['template']} {'/'.join(map(str, path))}"
                export = graph.resolve(node["Fn::ImportValue"], variables, where)
                if export not in exporter:
                    raise UserError(f"{render.manifest['env']}: {where}: no stack exports {export!r}")
                return output_value(*exporter[export], where)
            if set(node) == {"Ref"} and node["Ref"] in sources:
                origin = sources[node["Ref"]]
                return output_value(origin["stack"], origin["output"], f"{stack['template']} parameter {node['Ref']}")
            if set(node) == {"Fn::Sub"}:
                return {"Fn::Sub": _linked_sub(node["Fn::Sub"], sources, output_value, visit, path)}
            return {k: visit(v, path + [k]) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v, path + [i]) for i, v in enumerate(node)]
        return node

    template["Resources"] = visit(template.get("Resources") or {}, ["Resources"])
    for logical_id, declaration in linked_ids.items():
        if logical_id in template["Resources"]:
            raise UserError(f"{render.manifest['env']}: {stack['template']}: {logical_id} is a resource of its own; cannot link")
        template["Resources"][logical_id] = declaration
    return template


def _linked_sub(argument, sources, output_value, visit, path):
    """Fn::Sub whose ${Parameter} comes from another stack: the parameter becomes a local
    variable holding that stack's output value, so the text keeps its meaning."""
    text, local = (argument, {}) if isinstance(argument, str) else (argument[0], dict(argument[1]))
    local = {name: visit(value, path + ["Fn::Sub", 1, name]) for name, value in local.items()}
    for variable in _SUB_VARIABLE.findall(text):
        if variable in sources and variable not in local:
            origin = sources[variable]
            local[variable] = output_value(origin["stack"], origin["output"], f"parameter {variable}")
    return [text, local] if local else text


def _renamed(value, producer: str, producer_template: dict, linked_ids: dict):
    """value with each of the producer's resources it names renamed <Producer><LogicalId>, and
    that name declared (type only) in linked_ids."""
    resources = producer_template.get("Resources") or {}
    prefix = "".join(part.capitalize() for part in producer.split("-"))

    def name(logical_id: str) -> str:
        new = prefix + logical_id
        linked_ids[new] = {"Type": resources[logical_id]["Type"], "Metadata": {LINKED: f"{producer}/{logical_id}"}}
        return new

    def visit(node):
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in resources:
                return {"Ref": name(node["Ref"])}
            if set(node) == {"Fn::GetAtt"} and isinstance(node["Fn::GetAtt"], list) and node["Fn::GetAtt"][0] in resources:
                return {"Fn::GetAtt": [name(node["Fn::GetAtt"][0]), *node["Fn::GetAtt"][1:]]}
            if set(node) == {"Fn::Sub"}:
                argument = node["Fn::Sub"]
                text, local = (argument, None) if isinstance(argument, str) else (argument[0], argument[1])

                def rename(match):
                    head, _, attribute = match.group(1).partition(".")
                    if head in resources and (local is None or head not in local):
                        return "${" + name(head) + ("." + attribute if attribute else "") + "}"
                    return match.group(0)
                text = _SUB_VARIABLE.sub(rename, text)
                return {"Fn::Sub": text if local is None else [text, visit(local)]}
            return {k: visit(v) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v) for v in node]
        return node

    return visit(value)


# ---- running cfn-guard -------------------------------------------------------------------

def evaluate(renders: list[Render], guard: Path, rules: Path, rule_controls: dict[str, str]) -> tuple[list[Finding], int]:
    """(every failing control of every resource, the number of rule files that applied)."""
    if not guard.is_file():
        raise UserError(f"{guard}: missing; run ci/setup.sh (it installs cfn-guard with ci/setup-guard.sh)")
    with tempfile.TemporaryDirectory(prefix="guard-") as folder:
        where, linked_ids, types = {}, {}, set()
        for number, render in enumerate(renders):
            for stack in render.manifest["stacks"]:
                template = linked(render, stack["key"])
                path = Path(folder) / str(number) / (stack["template"].rsplit(".", 1)[0] + ".json")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(template), encoding="utf-8")
                where[str(path)] = (render, stack)
                linked_ids[str(path)] = {lid for lid, r in template["Resources"].items() if LINKED in (r.get("Metadata") or {})}
                types |= {r.get("Type") for r in template["Resources"].values()}
        chosen = rule_files(rules, types)
        arguments = [arg for path in chosen for arg in ("-r", str(path))]
        done = subprocess.run([str(guard), "validate", *arguments, "-d", folder, "-o", "json", "-S", "none", "-z"],
                              capture_output=True, text=True, check=False)
        try:
            reports = json.loads(done.stdout)
        except ValueError:
            raise UserError(f"cfn-guard failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[:400]}") from None
    findings = set()
    details = {}
    for report in reports:
        render, stack = where[report["name"]]
        for failure in report.get("not_compliant", []):
            rule = failure["Rule"]["name"]
            control = rule_controls.get(rule, rule)
            text = "\n".join(_messages(failure))
            title = next((m.group(2).strip() for m in _CONTROL.finditer(text)), "")
            fix = next((m.group(1).strip() for m in _FIX.finditer(text)), "")
            resources = {m.group(1) for p in _paths(failure) for m in [_RESOURCE_PATH.match(p)] if m}
            resources -= linked_ids[report["name"]]
            if not resources and not _paths(failure):
                resources = {"(template)"}
            for resource in resources:
                finding = Finding(render.label, stack["key"], stack["template"], control, resource, title, fix)
                findings.add(finding)
                details[finding] = finding
    return sorted(details.values(), key=lambda f: (f.render, f.template, f.control, f.resource)), len(chosen)


def _strings(node, wanted: str) -> list[str]:
    """Every string value of a `wanted` key, anywhere in cfn-guard's JSON report."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == wanted and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_strings(value, wanted))
    elif isinstance(node, list):
        for value in node:
            found.extend(_strings(value, wanted))
    return found


def _paths(node) -> list[str]:
    return [path for path in _strings(node, "path") if path]


def _messages(node) -> list[str]:
    return _strings(node, "custom_message")


# ---- the verdict -------------------------------------------------------------------------

def judge(findings: list[Finding], renders: list[Render], exceptions: list[Exception_]) -> tuple[list[Finding], list[str], int]:
    """(unexplained findings, stale exception messages, accepted count)."""
    unexplained, accepted = [], 0
    used: dict[tuple[str, int], set[str]] = {}
    envs = {render.label: render.env for render in renders}
    for finding in findings:
        match = next((e for e in exceptions if e.applies_to(envs[finding.render]) and e.covers(finding)), None)
        if match is None:
            unexplained.append(finding)
            continue
        accepted += 1
        entry = "*" if "*" in match.resources else f"{finding.stack}/{finding.resource}"
        used.setdefault((finding.render, match.index), set()).add(entry)
    stale = []
    for exception in exceptions:
        for env_name, env in envs.items():
            if not exception.applies_to(env):
                continue
            missing = [r for r in exception.resources if r not in used.get((env_name, exception.index), set())]
            if missing:
                stale.append(f"{env_name}: {_shown(EXCEPTIONS)} {exception.name()}: {', '.join(missing)} no longer "
                             f"fails {exception.control}; remove it from the entry (or narrow the entry's when)")
    return unexplained, stale, accepted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="AWS Control Tower's proactive controls (cfn-guard) over renders of render.py.")
    parser.add_argument("renders", nargs="+", type=Path, help="render folders (each with its manifest.json)")
    parser.add_argument("--list", action="store_true", help="print every failing control, accepted ones too, and exit 0")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS)
    args = parser.parse_args(argv)
    try:
        rule_controls = controls(RULES)
        exceptions = load_exceptions(args.exceptions, set(rule_controls.values()))
        renders = [load_render(directory) for directory in args.renders]
        expand_sam(renders, SAM_PYTHON)
        findings, applied = evaluate(renders, GUARD, RULES, rule_controls)
    except UserError as exc:
        print(f"guard: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for finding in findings:
            print(finding.line())
        pairs = {(f.render, f.template, f.control) for f in findings}
        for render in renders:
            mine = {p for p in pairs if p[0] == render.label}
            print(f"{render.label}: {len(mine)} failing (template, control) pairs over {len({p[2] for p in mine})} controls")
        return 0
    unexplained, stale, accepted = judge(findings, renders, exceptions)
    for finding in unexplained:
        print(f"guard: {finding.line()}", file=sys.stderr)
    for message in stale:
        print(f"guard: {message}", file=sys.stderr)
    templates = sum(len(r.manifest["stacks"]) for r in renders)
    envs = ", ".join(r.label for r in renders)
    if unexplained or stale:
        print(f"guard: {len(unexplained)} failing control(s) not accepted by {_shown(args.exceptions)}, "
              f"{len(stale)} stale exception(s)", file=sys.stderr)
        return 1
    print(f"guard: {templates} templates ({envs}), {applied} of the {len(set(rule_controls.values()))} controls apply to "
          f"their resources: nothing unexplained; {accepted} failure(s) of a control this design cannot meet, "
          f"each accepted with its reason in {_shown(args.exceptions)}")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
