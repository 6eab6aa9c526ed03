"""The project's own cfn-lint rules (lint/rules), run by cfn-lint itself, as CI runs it.

Every fixture under tests/fixtures/lint marks each line cfn-lint must report with
`# expect: <rule id> ...`; the findings must be exactly those, so a fixture with
no mark draws no finding of any level. cfn-lint runs once, from the repository
root so that .cfnlintrc (informational checks on, lint/rules appended) applies."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT

CFN_LINT = ROOT / ".tools" / "cfn-lint" / "bin" / "cfn-lint"
RULES_DIR = ROOT / "lint" / "rules"
FIXTURES = ROOT / "tests" / "fixtures" / "lint"
EXPECT = re.compile(r"#\s*expect:\s*((?:[EWI]\d{4}\s*)+)$")
RULE_ID = re.compile(r'^\s*id = "([EW]9\d{3})"', re.MULTILINE)
FIXTURE_FILES = sorted(FIXTURES.rglob("*.yaml"))


def load_shared():
    spec = importlib.util.spec_from_file_location("lint_rules_shared", RULES_DIR / "_shared.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shared = load_shared()


def expected(path: Path) -> list[tuple[str, int]]:
    marks = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        hit = EXPECT.search(line)
        if hit:
            marks += [(rule, number) for rule in hit.group(1).split()]
    return sorted(marks)


def project_rule_ids() -> list[str]:
    return sorted(rule for path in RULES_DIR.glob("*.py") for rule in RULE_ID.findall(path.read_text()))


def every_stateful_type(path: Path) -> None:
    """A stateless template holding one resource of each listed stateful type."""
    resources = "".join(f"  R{i}:\n    Type: {kind}\n" for i, kind in enumerate(sorted(shared.STATEFUL_TYPES)))
    path.write_text('AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n'
                    f"Metadata:\n  StackRole: stateless\nResources:\n{resources}")


def cfn_lint(*args: str) -> subprocess.CompletedProcess:
    if not CFN_LINT.exists():
        pytest.fail(f"{CFN_LINT.relative_to(ROOT)} is missing: run ci/setup.sh")
    return subprocess.run([str(CFN_LINT), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def findings(rendered, tmp_path_factory):
    """Filename -> sorted (rule id, line) for the fixtures, a generated template and the dev and prod renders."""
    generated = tmp_path_factory.mktemp("lint") / "every-stateful-type.yaml"
    every_stateful_type(generated)
    renders = [path for out, _ in rendered.values() for path in sorted(out.rglob("*.yaml"))]
    files = [str(p.relative_to(ROOT)) for p in FIXTURE_FILES] + [str(generated)] + [str(p) for p in renders]
    result = cfn_lint("--format", "json", *files)  # files first: -c I (in .cfnlintrc) takes several values
    assert "Traceback" not in result.stderr, result.stderr
    found: dict[str, list] = {name: [] for name in files}
    for match in json.loads(result.stdout):
        found[match["Filename"]].append((match["Rule"]["Id"], match["Location"]["Start"]["LineNumber"]))
    found = {name: sorted(items) for name, items in found.items()}
    return {"fixtures": found, "generated": found[str(generated)], "renders": {str(p): found[str(p)] for p in renders}}


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_draws_exactly_the_marked_findings(findings, fixture):
    assert findings["fixtures"][str(fixture.relative_to(ROOT))] == expected(fixture)


def test_every_project_rule_is_loaded_once_and_caught_in_a_bad_fixture():
    ids = project_rule_ids()
    listed = Counter(re.findall(r"^([EW]9\d{3}):", cfn_lint("--list-rules").stdout, re.MULTILINE))
    assert listed == Counter(ids)
    expected_ids = {rule for path in FIXTURES.glob("bad/*.yaml") for rule, _ in expected(path)}
    assert set(ids) <= expected_ids


def test_every_listed_stateful_type_is_refused_in_a_stateless_stack(findings):
    flagged = [line for rule, line in findings["generated"] if rule == "E9001"]
    assert len(flagged) == len(shared.STATEFUL_TYPES) >= 16


def test_rendered_templates_pass_the_project_rules(findings):
    assert len(findings["renders"]) == 16  # storage + 7 stateless, for dev and prod
    offending = {name: items for name, items in findings["renders"].items() if any(rule.startswith(("E9", "W9")) for rule, _ in items)}
    assert offending == {}


def test_rules_and_renderer_read_one_stateful_list():
    from tooling.render import stateful

    assert shared.TYPES_FILE == stateful.TYPES_FILE
    assert shared.STATEFUL_TYPES == stateful.STATEFUL_TYPES


def test_variants_follow_intrinsics_to_what_they_name():
    template = {"Parameters": {"Name": {"Type": "String"}}, "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    imported = {"Fn::ImportValue": {"Fn::Sub": "${StorageStackName}-MediaBucketArn"}}
    assert shared.variants({"Fn::Sub": ["${Arn}/*", {"Arn": imported}]}, template) == [shared.IMPORT + "/*"]
    assert shared.variants({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Name}/${!Literal}"}, template) == [f"arn:{shared.PSEUDO}:s3:::{shared.PARAMETER}/${{Literal}}"]
    assert shared.variants({"Fn::Join": ["-", [{"Ref": "Topic"}, "x", {"Fn::GetAtt": ["Topic", "TopicName"]}]]}, template) == [f"{shared.RESOURCE}-x-{shared.RESOURCE}"]
    assert shared.variants({"Fn::If": ["C", imported, {"Ref": "AWS::NoValue"}]}, template) == [shared.IMPORT, None]
    assert shared.variants({"Fn::Select": [0, {"Fn::Split": [",", imported]}]}, template) == [shared.IMPORT]
    assert shared.variants({"Fn::Select": [0, ["a", "b"]]}, template) == [shared.OTHER]
