"""Helpers for the tests of the frontend, pipeline and operations templates: renders into
tmp folders (optionally from a changed copy of the environment files) and plain
queries over the parsed templates."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from conftest import ACCOUNT, ROOT
from tooling.render import cfn_yaml, environment, rendering

OWN_KEYS = ("frontend", "backend-pipeline", "frontend-pipeline", "operations")

# Writes that AWS offers on "*" only (no resource-level permission), each allowed in one
# place: HTTP API access logging needs them to deploy the backend and webhook stacks.
UNSCOPABLE_WRITES = {
    ("backend-pipeline", "ExecutionRole"): {"logs:CreateLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                                            "logs:PutResourcePolicy"},
    ("backend-pipeline", "DeployRole"): {"cloudformation:ValidateTemplate"},   # checks a template, changes nothing
}
READ_PREFIXES = ("Get", "List", "Describe")


def env_dir_with(tmp_path: Path, changes: dict[str, dict[str, str]]) -> Path:
    """A copy of environments/ where, per environment, `key = ...` lines are replaced.

    changes: {"dev": {"lambda_errors": "7", "domain_name": '"app.example.org"'}}; each key
    must occur exactly once in that file, so a typo fails loudly."""
    folder = tmp_path / "environments"
    shutil.copytree(environment.ENVIRONMENTS_DIR, folder)
    for env_name, replacements in changes.items():
        path = folder / f"{env_name}.toml"
        text = path.read_text()
        for key, value in replacements.items():
            text, count = re.subn(rf"(?m)^{re.escape(key)} = [^#\n]*", f"{key} = {value} ", text)
            assert count == 1, f"{key} occurs {count} times in {path.name}"
        path.write_text(text)
    return folder


def render(tmp_path: Path, env_name: str, region: str = "us-east-1", env_dir: Path | None = None) -> tuple[Path, dict]:
    out = tmp_path / f"render-{env_name}"
    manifest = rendering.render_environment(env_name, ACCOUNT, region, out, env_dir or environment.ENVIRONMENTS_DIR)
    return out, manifest


def load(out: Path, key: str) -> dict:
    return cfn_yaml.load((out / rendering.rendered_path(key)).read_text())


def text_of(out: Path, key: str) -> str:
    return (out / rendering.rendered_path(key)).read_text()


def resources_of(template: dict, kind: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def props(template: dict, logical_id: str) -> dict:
    return template["Resources"][logical_id].get("Properties", {})


def is_import(value, stack_parameter: str, output_key: str) -> bool:
    """value is exactly Fn::ImportValue of !Sub "${<stack_parameter>}-<output_key>"."""
    return value == {"Fn::ImportValue": {"Fn::Sub": f"${{{stack_parameter}}}-{output_key}"}}


def is_under_import(value, suffix: str, stack_parameter: str, output_key: str) -> bool:
    """value is !Sub ["${X}<suffix>", {X: the import}]: a path under an imported ARN."""
    if not (isinstance(value, dict) and isinstance(value.get("Fn::Sub"), list)):
        return False
    text, variables = value["Fn::Sub"]
    if not isinstance(variables, dict) or len(variables) != 1:
        return False
    (name, imported), = variables.items()
    return text == "${" + name + "}" + suffix and is_import(imported, stack_parameter, output_key)


def skips(resource: dict) -> dict[str, str]:
    """checkov skips of a resource: id -> comment."""
    found = (resource.get("Metadata") or {}).get("checkov", {}).get("skip", [])
    return {item["id"]: item.get("comment", "") for item in found}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict) -> list[tuple[str, dict]]:
    """(role logical id, statement) for every inline policy statement of every IAM role."""
    found = []
    for logical_id, role in resources_of(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                found.append((logical_id, statement))
    return found


def is_write(action: str) -> bool:
    return not action.split(":", 1)[1].startswith(READ_PREFIXES)


def iam_problems(key: str, template: dict, prefix: str) -> list[str]:
    """What breaks the project's IAM rules in one rendered template (empty when none)."""
    problems = []
    for role_id, statement in policy_statements(template):
        actions = as_list(statement.get("Action", []))
        resources = as_list(statement.get("Resource", []))
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{key}/{role_id}: wildcard action {action}")
        if "*" in resources and statement["Effect"] == "Allow":
            allowed = UNSCOPABLE_WRITES.get((key, role_id), set())
            for action in actions:
                if is_write(action) and action not in allowed:
                    problems.append(f"{key}/{role_id}: write action {action} on *")
        if "iam:PassRole" in actions:
            for resource in resources:
                text = resource["Fn::Sub"] if isinstance(resource, dict) and "Fn::Sub" in resource else resource
                one_role = isinstance(resource, dict) and list(resource) == ["Fn::GetAtt"] and \
                    resources_of(template, "AWS::IAM::Role").get(resource["Fn::GetAtt"][0]) is not None
                if not one_role and not (isinstance(text, str) and re.search(rf":role/{re.escape(prefix)}/[a-z-]+/\*$", text)):
                    problems.append(f"{key}/{role_id}: iam:PassRole on {resource!r}")
    for role_id, role in resources_of(template, "AWS::IAM::Role").items():
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for statement in trust:
            principal = statement.get("Principal", {})
            if set(principal) != {"Service"} or len(as_list(principal["Service"])) != 1:
                problems.append(f"{key}/{role_id}: trust must name one service principal, not {principal!r}")
    return problems


def physical_names(manifest: dict) -> list[str]:
    return list(manifest["physical_names"]["buckets"].values()) + [manifest["physical_names"]["table"]]


def literal_physical_names(out: Path, manifest: dict, keys=OWN_KEYS) -> list[str]:
    found = []
    for key in keys:
        text = text_of(out, key)
        for name in physical_names(manifest):
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
                found.append(f"{key}: {name}")
    return found


def repo_file(relative: str) -> str:
    return (ROOT / relative).read_text()
