"""The Control Tower gate (lint/guard.py): AWS Control Tower's proactive controls, run by the
real cfn-guard with the real rules (.tools/cfn-guard, ci/setup-guard.sh) over renders.

prod must meet every control but the reviewed exceptions of lint/guard-exceptions.toml; dev
differs only by its opt-out of the customer managed key; anything else fails the gate."""
from __future__ import annotations

import importlib.util
import re
import shutil
import sys

import pytest

from conftest import ROOT
from stateless_support import env_dir_with, render
from tooling.errors import UserError

spec = importlib.util.spec_from_file_location("guard", ROOT / "lint" / "guard.py")
guard = importlib.util.module_from_spec(spec)
sys.modules["guard"] = guard
spec.loader.exec_module(guard)

# What prod cannot meet, each for a reason in lint/guard-exceptions.toml. Written out here so
# that a control newly failing, or newly met, is seen.
PROD_UNMET = {
    "CT.CLOUDFRONT.PR.4": {"frontend/Distribution"},
    "CT.CLOUDFRONT.PR.5": {"frontend/Distribution"},
    "CT.CLOUDFRONT.PR.6": {"frontend/Distribution"},
    "CT.CLOUDFRONT.PR.7": {"frontend/Distribution"},
    "CT.CLOUDFRONT.PR.9": {"frontend/Distribution"},
    "CT.APIGATEWAY.PR.5": {"backend/CreateSessionRoute", "backend/GetSessionRoute", "backend/CreateUploadUrlRoute",
                           "backend/ListUploadsRoute", "webhook/WebhookGetRoute", "webhook/WebhookPostRoute"},
    "CT.LAMBDA.PR.3": {"backend/CreateSessionFunction", "backend/GetSessionFunction", "backend/CreateUploadUrlFunction",
                       "backend/ListUploadsFunction", "webhook/WebhookFunction"},
    "CT.S3.PR.2": {"storage/LogArchiveBucket"},
}
# What opting out of the customer managed key leaves unmet, on top of that.
WITHOUT_KEY = {"CT.S3.PR.10", "CT.CLOUDWATCH.PR.3"}


def unmet(findings) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in findings:
        found.setdefault(finding.control, set()).add(f"{finding.stack}/{finding.resource}")
    return found


def evaluate(*folders):
    renders = [guard.load_render(folder) for folder in folders]
    guard.expand_sam(renders, guard.SAM_PYTHON)
    findings, applied = guard.evaluate(renders, guard.GUARD, guard.RULES, guard.controls(guard.RULES))
    return renders, findings


@pytest.fixture(scope="module")
def judged(rendered):
    """dev (us-east-1) and prod (eu-west-1), as the gate sees them."""
    renders, findings = evaluate(rendered["dev"][0], rendered["prod"][0])
    return {r.manifest["env"]: [f for f in findings if f.render == r.label] for r in renders}


@pytest.fixture
def prod_copy(rendered, tmp_path):
    folder = tmp_path / "prod"
    shutil.copytree(rendered["prod"][0], folder)
    return folder


def gate(capsys, *args) -> tuple[int, str, str]:
    code = guard.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_gate_passes_dev_and_prod(rendered, capsys):
    code, out, err = gate(capsys, rendered["dev"][0], rendered["prod"][0])
    assert (code, err) == (0, "")
    assert re.fullmatch(r"guard: 16 templates \(dev in us-east-1, prod in eu-west-1\), \d+ of the \d+ controls apply to "
                        r"their resources: nothing unexplained; \d+ failure\(s\) .*lint/guard-exceptions.toml\n", out)


def test_prod_meets_every_control_but_the_reviewed_exceptions(judged):
    """Among them, what failed before: log groups without a key or with under a year, Lambda
    permissions without SourceAccount, HTTP API access logs, TLS-only policies written with
    Fn::Sub, buckets without event notifications, Object Lock or SSE-KMS."""
    assert unmet(judged["prod"]) == PROD_UNMET


def test_dev_differs_from_prod_only_by_its_opt_out_of_the_key(judged):
    found = unmet(judged["dev"])
    assert {c: r for c, r in found.items() if c not in WITHOUT_KEY} == PROD_UNMET
    assert set(found) - set(PROD_UNMET) == WITHOUT_KEY
    assert "storage/MediaBucket" in found["CT.S3.PR.10"] and "backend/CreateSessionLogGroup" in found["CT.CLOUDWATCH.PR.3"]


def test_dev_with_the_key_switched_on_meets_what_prod_meets(tmp_path):
    out, _ = render(tmp_path, "dev", env_dir=env_dir_with(tmp_path, {"dev": {"customer_managed_key": "true"}}))
    _, findings = evaluate(out)
    assert unmet(findings) == PROD_UNMET


def test_the_functions_are_judged_as_cloudformation_expands_them(judged):
    """AWS::Serverless::Function becomes AWS::Lambda::Function before a hook sees it."""
    assert "backend/CreateSessionFunction" in unmet(judged["prod"])["CT.LAMBDA.PR.3"]


def test_an_imported_key_counts_only_because_storage_exports_a_kms_key(prod_copy, capsys):
    """The gate links an import to what its producer exports; it does not take an import on trust."""
    storage = prod_copy / "storage.yaml"
    text = storage.read_text()
    assert text.count("Value: !GetAtt EncryptionKey.Arn") == 1
    storage.write_text(text.replace("Value: !GetAtt EncryptionKey.Arn", "Value: !GetAtt LogArchiveBucket.Arn"))
    code, _, err = gate(capsys, prod_copy)
    assert code == 1
    assert "stateless/backend.yaml CreateSessionLogGroup: CT.CLOUDWATCH.PR.3 not met" in err


def test_an_unexplained_failure_fails_the_gate_with_one_line_naming_it(prod_copy, capsys):
    backend = prod_copy / "stateless" / "backend.yaml"
    backend.write_text(backend.read_text().replace("RetentionInDays: 365", "RetentionInDays: 30", 1))
    code, _, err = gate(capsys, prod_copy)
    lines = err.splitlines()
    assert code == 1 and len(lines) == 2, err
    assert re.fullmatch(r"guard: prod in eu-west-1: stateless/backend.yaml CreateSessionLogGroup: CT.CLOUDWATCH.PR.2 not met "
                        r"\(Require an Amazon CloudWatch log group to be retained for at least one year\)\. Fix: .+", lines[0])
    assert lines[1].startswith("guard: 1 failing control(s) not accepted by lint/guard-exceptions.toml, 0 stale exception(s)")


def test_an_exception_that_matches_no_failure_fails_the_gate(prod_copy, tmp_path, capsys):
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(guard.EXCEPTIONS.read_text() + '''
[[exception]]
control = "CT.S3.PR.9"
resources = ["storage/MediaBucket"]
reason = "An entry for a control the media bucket meets: the gate must call it stale."
''')
    code, _, err = gate(capsys, "--exceptions", exceptions, prod_copy)
    assert code == 1
    assert "exception 12 (CT.S3.PR.9, storage/MediaBucket): storage/MediaBucket no longer fails CT.S3.PR.9" in err


def test_an_exception_applies_only_where_its_when_holds(rendered, tmp_path, capsys):
    """Without the opt-out's entries, dev fails on exactly the controls that need the key."""
    text = guard.EXCEPTIONS.read_text()
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(text[:text.index("# ---- an environment without a customer managed key")])
    code, _, err = gate(capsys, "--exceptions", exceptions, rendered["dev"][0], rendered["prod"][0])
    assert code == 1
    failing = {line.split(": ")[3].split(" ")[0] for line in err.splitlines() if " not met " in line}
    assert failing == WITHOUT_KEY
    assert all(line.startswith("guard: dev in us-east-1: ") for line in err.splitlines() if " not met " in line)


@pytest.mark.parametrize("entry, problem", [
    ('control = "CT.NOPE.PR.1"\nresources = ["storage/MediaBucket"]\nreason = "a reason that is long enough to be one"',
     "exception 1: control 'CT.NOPE.PR.1' is not one of the Control Tower rules installed"),
    ('control = "CT.S3.PR.2"\nresources = ["storage/LogArchiveBucket"]',
     "exception 1: reason must say why this design cannot meet CT.S3.PR.2 (a sentence or more)"),
    ('control = "CT.S3.PR.2"\nresources = ["LogArchiveBucket"]\nreason = "a reason that is long enough to be one"',
     'exception 1: resources must list "<stack key>/<logical id>" entries, or "*"'),
    ('control = "CT.S3.PR.2"\nresources = ["*"]\nwhen = { "encryption.kms" = false }\nreason = "a reason that is long enough to be one"',
     "exception 1: when names 'encryption.kms', which is not a key of the environment files"),
    ('control = "CT.S3.PR.2"\nresources = ["*"]\nwhy = "x"\nreason = "a reason that is long enough to be one"',
     "exception 1: unknown key 'why' (control, resources, when, reason)"),
    ('control = "CT.S3.PR.2"\nresources = [',
     "malformed TOML"),
])
def test_a_bad_exceptions_file_is_refused_with_one_line(rendered, tmp_path, capsys, entry, problem):
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(f"[[exception]]\n{entry}\n")
    code, out, err = gate(capsys, "--exceptions", exceptions, rendered["prod"][0])
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith(f"guard: {exceptions}: ") and problem in err, err


def test_a_folder_that_is_no_render_is_refused_with_one_line(tmp_path, capsys):
    code, _, err = gate(capsys, tmp_path)
    assert code == 2 and err == f"guard: {tmp_path}: not a render (no readable manifest.json); render it with render.py\n"


def test_every_exception_names_a_control_that_applies_here_and_gives_its_reason():
    exceptions = guard.load_exceptions(guard.EXCEPTIONS, set(guard.controls(guard.RULES).values()))
    assert len(exceptions) == 11
    assert {e.control for e in exceptions} == set(PROD_UNMET) | WITHOUT_KEY
    with pytest.raises(UserError):
        guard.load_exceptions(ROOT / "lint" / "no-such-file.toml", set())
