"""`sam` through the pre-started fork server, and through the plain-subprocess fallback:
the same exit codes and output either way."""
from __future__ import annotations

import os

import pytest

from tooling.aws.sam_runner import SAM_PYTHON, SamRunner


@pytest.fixture(scope="module")
def runner():
    assert SAM_PYTHON.exists(), "the sam environment is missing: run ./ci/setup.sh"
    started = SamRunner().start()
    yield started
    started.stop()


def run(sam: SamRunner, tmp_path, *args, name="out.log"):
    log = tmp_path / name
    code = sam.start_run(list(args), log, dict(os.environ, SAM_CLI_TELEMETRY="0")).wait(120)
    return code, log.read_text()


def test_forked_sam_runs_the_real_cli(runner, tmp_path):
    code, output = run(runner, tmp_path, "--version")
    assert code == 0 and "SAM CLI, version 1.170.0" in output


def test_forked_sam_reports_its_exit_status(runner, tmp_path):
    code, output = run(runner, tmp_path, "deploy", "--no-such-option")
    assert code == 2 and "No such option" in output


def test_several_runs_at_once_keep_their_own_logs(runner, tmp_path):
    runs = [runner.start_run(["--version"], tmp_path / f"{i}.log", dict(os.environ)) for i in range(3)]
    assert [r.wait(120) for r in runs] == [0, 0, 0]
    assert all("1.170.0" in (tmp_path / f"{i}.log").read_text() for i in range(3))


def test_without_the_server_a_plain_subprocess_gives_the_same(tmp_path):
    code, output = run(SamRunner(), tmp_path, "--version")  # never started: falls back
    assert code == 0 and "SAM CLI, version 1.170.0" in output
