"""What the README and docs/ promise, held to the code: the tables of stack states
and finding kinds are the code's own, every link resolves, every deploy.py command
and flag they show exists, and the two commands of the README are there to run."""
from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

from conftest import ROOT
from tooling import cli
from tooling.deploy.gate import findings
from tooling.deploy import states

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def table_rows(text: str, first_header: str) -> list[list[str]]:
    """The rows of the markdown table whose first header cell is `first_header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_the_state_table_in_safety_md_is_the_codes():
    rows = table_rows((ROOT / "docs" / "safety.md").read_text(), "Status")
    documented = {status: (action, live == "yes") for status, action, live in rows}
    assert documented == {s: (state.action, state.exports_live) for s, state in states.TABLE.items()}


def test_the_finding_kinds_in_safety_md_are_the_codes():
    rows = table_rows((ROOT / "docs" / "safety.md").read_text(), "Kind")
    documented = {kind: (None if override == "none" else override) for kind, _, override in rows}
    assert documented == findings.OVERRIDES


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        assert (doc.parent / target).exists(), f"{doc.name}: link to {target} does not resolve"


def flags_of(command: str) -> set[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.parse_args([command, "--help"])
    return set(re.findall(r"--[\w-]+", out.getvalue()))


def code_of(text: str) -> list[str]:
    """The lines of fenced code blocks and the inline code spans of a markdown text."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines()] + re.findall(r"`([^`\n]+)`", prose)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_deploy_py_command_and_flag_shown_exists(doc):
    shown = 0
    for code in code_of(doc.read_text()):
        for match in re.finditer(r"deploy\.py +([a-z]+)([^;|#]*)", code):
            command, rest = match.group(1), match.group(2)
            assert command in cli.HANDLERS, f"{doc.name}: 'deploy.py {command}' is not a command"
            unknown = sorted(set(re.findall(r"--[\w-]+", rest)) - flags_of(command))
            assert not unknown, f"{doc.name}: deploy.py {command} has no {unknown}"
            shown += 1
    if doc.name in ("README.md", "deploying.md", "safety.md"):
        assert shown, f"{doc.name} shows no deploy.py command"


def test_the_two_commands_of_the_readme_exist_and_ci_runs_the_tests():
    readme = (ROOT / "README.md").read_text()
    for command in ("./ci/local-deploy.sh", "./ci/test.sh"):
        assert command in readme
        assert os.access(ROOT / command, os.X_OK), f"{command} is not executable"
    assert "./ci/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_the_waves_in_the_readme_are_the_renders(rendered):
    readme = (ROOT / "README.md").read_text()
    for env in ("dev", "prod"):
        waves = " -> ".join("[" + ", ".join(wave) + "]" for wave in rendered[env][1]["waves"])
        assert f"`{waves}`" in readme, f"README: the waves of {env} are {waves}"
