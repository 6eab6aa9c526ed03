"""Golden files: a render of dev and prod compared byte for byte with tests/golden/.

A template change shows up here as a reviewable diff. After an intended change:
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
and commit tests/golden/ with it."""
from __future__ import annotations

import os
import shutil

import pytest

from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"
# samconfig.toml holds the output folder's path, which differs per run; it has tests of its own.
COMPARED = ("manifest.json", "storage-stack-policy.json", "storage.yaml", "stateless")


def files(folder):
    return sorted(str(p.relative_to(folder)) for name in COMPARED for p in ([folder / name] if (folder / name).is_file() else (folder / name).rglob("*")) if p.is_file())


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_render_matches_golden(rendered, env):
    out, _ = rendered[env]
    golden = GOLDEN / env
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(golden, ignore_errors=True)
        for name in files(out):
            (golden / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / name, golden / name)
    assert files(out) == files(golden), "rendered file set differs from tests/golden (UPDATE_GOLDEN=1 to accept)"
    for name in files(out):
        assert (out / name).read_text() == (golden / name).read_text(), f"{env}/{name} differs from tests/golden (UPDATE_GOLDEN=1 to accept)"
