"""deploy.py's exit status and its one-line errors, for every way a run can end:
0 done, 1 a deploy (or AWS) failed, 2 bad input, 3 a blocking finding. The
subcommands are replaced by stand-ins here; what they do is tested elsewhere."""
from __future__ import annotations

import subprocess
import sys

import botocore.exceptions
import pytest

from conftest import ROOT
from tooling import cli
from tooling.errors import UserError


@pytest.fixture
def fake_workspace(monkeypatch):
    """open_workspace without AWS: the command handlers are what each test sets."""
    import tooling.deploy.workspace as workspace

    monkeypatch.setattr(workspace, "open_workspace", lambda *a, **k: object())
    return monkeypatch


def run_with(monkeypatch, capsys, handler, *argv):
    monkeypatch.setitem(cli.HANDLERS, argv[0], handler)
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("argv, fragment", [
    (["apply", "--env", "staging"], "environment 'staging'"),
    (["apply", "--env", "dev", "--only", "database"], "stack key 'database'"),
    (["status", "--env", "dev", "--keep"], "--keep: only with --local"),
    (["plan", "--env", "dev", "--region", "mars-north-1"], "region 'mars-north-1'"),
])
def test_bad_input_is_status_2_and_one_line(argv, fragment, fake_workspace, capsys):
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and fragment in err and err.startswith("deploy: ")


def test_handler_statuses_pass_through(fake_workspace, capsys):
    for code in (0, 1, 3):
        status, _, _ = run_with(fake_workspace, capsys, lambda ws, args, log, code=code: code, "check", "--env", "dev")
        assert status == code


def test_a_user_error_inside_a_command_keeps_its_status(fake_workspace, capsys):
    def handler(ws, args, log):
        raise UserError("sam package backend: exited 1", status=1)
    status, _, err = run_with(fake_workspace, capsys, handler, "apply", "--env", "dev")
    assert status == 1 and err == "deploy: sam package backend: exited 1\n"


def test_an_aws_error_is_one_line_status_1(fake_workspace, capsys):
    def handler(ws, args, log):
        raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "DescribeStacks")
    status, _, err = run_with(fake_workspace, capsys, handler, "status", "--env", "dev")
    assert status == 1
    assert err == "deploy: AWS DescribeStacks: AccessDenied: not allowed\n"


def test_a_closed_pipe_is_quiet(fake_workspace, capsys):
    def handler(ws, args, log):
        raise BrokenPipeError
    status, _, err = run_with(fake_workspace, capsys, handler, "check", "--env", "dev", "--json")
    assert status == 1 and err == ""


def test_a_bug_is_not_hidden(fake_workspace, capsys):
    def handler(ws, args, log):
        raise ZeroDivisionError
    with pytest.raises(ZeroDivisionError):
        run_with(fake_workspace, capsys, handler, "plan", "--env", "dev")


def test_help_names_the_exit_statuses_and_the_overrides():
    result = subprocess.run([sys.executable, "deploy.py", "apply", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "3 a blocking finding" in text and "--allow-orphans" in text and "--allow-unknown" in text
    assert "--allow-stateful-change" not in text and "--allow-export-change" not in text  # overrides that cannot work are gone


@pytest.mark.parametrize("role", ["not-an-arn", "arn:aws:iam::210987654321:role/other-account", "arn:aws:iam::123456789012:user/x"])
def test_a_role_arn_that_is_no_role_of_the_account_is_status_2_and_one_line(monkeypatch, capsys, role):
    import types

    import tooling.deploy.workspace as workspace
    from tooling.aws import cloudformation

    monkeypatch.setattr(workspace, "open_workspace", lambda *a, **k: types.SimpleNamespace(account_id="123456789012"))
    status = cli.main(["apply", "--env", "dev", "--role-arn", role])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert err.startswith(f"deploy: --role-arn {role!r}: not the ARN of an IAM role of account 123456789012")
    assert cloudformation._service_role_arn is None
