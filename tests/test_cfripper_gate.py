"""The cfripper gate (lint/cfripper_gate.py): the real cfripper (.tools/cfripper, its own
pinned environment) over the SAM-expanded renders; every finding accepted by a reasoned entry
of lint/cfripper-exceptions.toml, and no entry that matches nothing."""
from __future__ import annotations

import shutil
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from lint import cfripper_gate  # noqa: E402
from tooling.errors import UserError  # noqa: E402


def gate(capsys, *args) -> tuple[int, str, str]:
    code = cfripper_gate.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def prod_copy(rendered, tmp_path):
    folder = tmp_path / "prod"
    shutil.copytree(rendered["prod"][0], folder)
    return folder


def test_the_gate_passes_dev_and_prod(rendered, capsys):
    code, out, err = gate(capsys, rendered["dev"][0], rendered["prod"][0])
    assert (code, err) == (0, "")
    assert out.startswith("lint: cfripper: 0 findings outside lint/cfripper-exceptions.toml (")


def test_a_new_finding_fails_the_gate_with_one_line_naming_it(prod_copy, capsys):
    pipeline = prod_copy / "stateless" / "frontend-pipeline.yaml"
    text = pipeline.read_text()
    assert "- Sid: Invalidate\n" in text
    pipeline.write_text(text.replace("- Sid: Invalidate\n", "- Sid: Invalidate\n                Action: iam:PutRolePolicy\n"
                                     "                Effect: Allow\n                Resource: \"*\"\n              - Sid: Invalidated\n", 1))
    code, _, err = gate(capsys, prod_copy)
    lines = err.splitlines()
    assert code == 1
    assert any(line.startswith("cfripper: prod in eu-west-1: frontend-pipeline/PublishRole: PrivilegeEscalationRule: ")
               for line in lines), err
    assert lines[-1].startswith("lint: cfripper failed: ") and "0 stale exception(s)" in lines[-1]


def test_an_exception_that_matches_no_finding_fails_the_gate(rendered, tmp_path, capsys):
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(cfripper_gate.EXCEPTIONS.read_text() + '''
[[exception]]
rule = "PrivilegeEscalationRule"
resources = ["frontend-pipeline/PublishRole"]
reason = "An entry for a role cfripper finds nothing on: the gate must call it stale."
''')
    code, _, err = gate(capsys, "--exceptions", exceptions, rendered["dev"][0], rendered["prod"][0])
    assert code == 1
    assert "exception 7 (PrivilegeEscalationRule, frontend-pipeline/PublishRole) matches no finding any more: remove it" in err


@pytest.mark.parametrize("entry, problem", [
    ('rule = "PrivilegeEscalationRule"\nresources = ["storage/PermissionsBoundary"]',
     "exception 1: reason must say why the finding is accepted"),
    ('rule = "nope"\nresources = ["storage/X"]\nreason = "a reason that is long enough to be one"',
     "exception 1: rule must name a cfripper rule"),
    ('rule = "PrivilegeEscalationRule"\nresources = ["X"]\nreason = "a reason that is long enough to be one"',
     'exception 1: resources must list "<stack key>/<logical id>" entries'),
    ('rule = "PrivilegeEscalationRule"\nresources = ["storage/X"]\nwhy = 1\nreason = "a reason that is long enough to be one"',
     "exception 1: unknown key 'why'"),
])
def test_a_bad_exceptions_file_is_refused_with_one_line(rendered, tmp_path, capsys, entry, problem):
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(f"[[exception]]\n{entry}\n")
    code, out, err = gate(capsys, "--exceptions", exceptions, rendered["prod"][0])
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and problem in err, err


def test_every_exception_gives_its_reason():
    exceptions = cfripper_gate.load_exceptions(cfripper_gate.EXCEPTIONS)
    assert len(exceptions) == 6
    assert {(e.rule, r) for e in exceptions for r in e.resources} == {
        ("PrivilegeEscalationRule", "backend-pipeline/ExecutionRole"), ("WildcardResourceRule", "backend-pipeline/ExecutionRole"),
        ("WildcardResourceRule", "backend-pipeline/DeployRole"), ("WildcardResourceRule", "storage/PermissionsBoundary"),
        ("PrivilegeEscalationRule", "storage/PermissionsBoundary"), ("GenericResourceWildcardPolicyRule", "storage/EncryptionKey")}
    with pytest.raises(UserError):
        cfripper_gate.load_exceptions(ROOT / "lint" / "no-such-file.toml")
