"""Reviewed deploys on the local AWS, as a team lives them: `plan --out` keeps the change
sets, `apply --plan` executes exactly those. What reaches CloudFormation is seen at a
recording proxy between deploy.py and the emulator (tests/e2e/recorder.py): with a plan,
no CreateChangeSet for a planned stack, and ExecuteChangeSet only with the plan's ids.
A plan made stale (a stack updated after it, an environment change) is refused before
anything runs; a stack known only after apply gets its change set then, and says so; a
plan with no changes does nothing; the report page of an apply is checked in Chromium.

The tests share one emulator and run in file order; each states what it relies on."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT, mark_stale, run_deploy
from recorder import Recorder
from support import ENV, OUT, ensure_applied, manifest, names, printed_commands, run_printed
from tooling.deploy import planfile

sys.path.insert(0, str(ROOT / "ci"))
import bench  # noqa: E402  (the change to three stacks the benchmark measures)

PLAYWRIGHT = ROOT / ".tools" / "playwright" / "bin" / "python"
REPORT = ROOT / "build" / "report" / "reviewed-apply.html"
SCREENSHOT = ROOT / "build" / "report" / "report.png"
FRONTEND_CHANGE = ("Comment: HSTS, nosniff, no framing", "Comment: HSTS (reviewed), nosniff, no framing")
ENVIRONMENT_CHANGE = ("throttle_rate_limit = 10             # webhook", "throttle_rate_limit = 11             # webhook")
SEEN: dict = {}


@pytest.fixture(scope="module")
def recorder(local_aws):
    proxy = Recorder(local_aws["AWS_ENDPOINT_URL"], lifetime=1500)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def originals(local_aws):
    """A fresh render of dev, deployed; the edits of these tests are undone afterwards."""
    mark_stale()
    ensure_applied(local_aws)
    texts = {key: (OUT / path).read_text() for key, (path, _) in bench.THREE_STACKS.items()}
    yield texts
    for key, (path, _) in bench.THREE_STACKS.items():
        (OUT / path).write_text(texts[key])
    mark_stale()  # the next run renders afresh from the sources


@pytest.fixture(scope="module")
def plan_path(tmp_path_factory):
    return tmp_path_factory.mktemp("reviewed") / "plan.json"


def through(local_aws, recorder) -> dict:
    return {**local_aws, "AWS_ENDPOINT_URL": recorder.endpoint}


def plan_out(env, path) -> tuple[subprocess.CompletedProcess, dict]:
    result = run_deploy(env, "plan", "--env", ENV, "--local", "--out", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result, json.loads(path.read_text())


def updated_times(cfn) -> dict:
    return {s["StackName"]: s.get("LastUpdatedTime") or s["CreationTime"] for s in cfn.describe_stacks()["Stacks"]}


def newest_events(cfn) -> dict:
    return {name: cfn.describe_stack_events(StackName=name)["StackEvents"][0]["Timestamp"] for name in names().values()}


def calls(recorder, action) -> list[dict]:
    return recorder.actions(action)


# --- 1. the change that was reviewed is the change that runs --------------------------------

def test_1_apply_plan_executes_exactly_the_planned_change_sets_and_creates_none(local_aws, boto, recorder, originals, plan_path):
    bench.edit_three_stacks(OUT, originals, "reviewed 1")
    planned_run, doc = plan_out(local_aws, plan_path)
    planned = planfile.planned_change_sets(doc)
    assert sorted(planned) == sorted(bench.THREE_STACKS) and planfile.known_after_apply(doc) == {}
    entry = next(e for e in doc["stacks"] if e["key"] == "backend")
    assert [(c["action"], c["logical_id"], c["properties"]) for c in entry["changes"]] == [
        ("modify", "CreateSessionFunction", ["Description"])]
    assert entry["planned_stack"]["status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE") and entry["fingerprint"]
    cfn = boto("cloudformation")
    before, SEEN["events"] = updated_times(cfn), newest_events(cfn)
    recorder.clear()
    # the command plan printed, as printed, through the recording proxy
    applied = run_printed(through(local_aws, recorder), printed_commands(planned_run.stdout, "python deploy.py apply --plan")[0])
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert calls(recorder, "CreateChangeSet") == []
    assert sorted(c["params"]["ChangeSetName"] for c in calls(recorder, "ExecuteChangeSet")) == sorted(planned.values())
    after = updated_times(cfn)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {names()[key] for key in bench.THREE_STACKS}
    for key in bench.THREE_STACKS:
        body = cfn.get_template(StackName=names()[key])["TemplateBody"]
        assert "(reviewed 1)" in (body if isinstance(body, str) else json.dumps(body))
        assert re.search(rf"\[{key}\] +deployed \(UPDATE_COMPLETE\)( in \d+s)?: the planned change set", applied.stdout), applied.stdout


def test_2_report_shows_every_stack_and_the_resources_of_the_last_apply(local_aws, boto):
    result = run_deploy(local_aws, "report", "--env", ENV, "--local", "--out", str(REPORT))
    assert result.returncode == 0, result.stderr[-2000:]
    page = check_page(boto, REPORT)
    for key in bench.THREE_STACKS:
        assert page["timeline"][key]


def check_page(boto, path) -> dict:
    """The page in Chromium: it renders, its graph holds every stack in its wave, the timeline of
    each stack deployed since SEEN['events'] holds the resources of that deploy, nothing is fetched."""
    SCREENSHOT.unlink(missing_ok=True)
    browsed = subprocess.run([str(PLAYWRIGHT), str(ROOT / "ci" / "report_check.py"), "--page", str(path), "--screenshot", str(SCREENSHOT)],
                             capture_output=True, text=True, cwd=ROOT, timeout=180)
    lines = browsed.stdout.strip().splitlines()
    assert lines, browsed.stderr[-2000:]
    page = json.loads(lines[-1])
    assert browsed.returncode == 0, page
    waves = {key: number for number, wave in enumerate(manifest()["waves"], start=1) for key in wave}
    assert {g["stack"]: g["wave"] for g in page["graph"]} == waves
    assert page["requests"] == [] and page["console_errors"] == []
    cfn = boto("cloudformation")
    deployed = 0
    for key, name in names().items():
        events = [e for e in cfn.describe_stack_events(StackName=name)["StackEvents"] if e["Timestamp"] > SEEN["events"][name]]
        if not events:
            continue
        deployed += 1
        resources = {e["LogicalResourceId"] for e in events if e["LogicalResourceId"] != name}
        assert set(page["timeline"][key]) == resources, key
    assert deployed and page["bars_drawn"] >= sum(len(v) for v in page["timeline"].values())
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # kept under build/ as the test's artifact
    return page


# --- 2. a stale plan is refused before anything runs -----------------------------------------

def test_3_a_stack_updated_after_the_plan_refuses_it_before_anything_runs(local_aws, boto, recorder, originals, plan_path):
    bench.edit_three_stacks(OUT, originals, "reviewed 2")
    _, doc = plan_out(local_aws, plan_path)
    outside = run_deploy(local_aws, "apply", "--env", ENV, "--local", "--only", "webhook")  # someone deploys webhook meanwhile
    assert outside.returncode == 0, outside.stdout[-2000:]
    cfn = boto("cloudformation")
    before = updated_times(cfn)
    recorder.clear()
    refused = run_deploy(through(local_aws, recorder), "apply", "--env", ENV, "--local", "--plan", str(plan_path))
    assert refused.returncode == 3, refused.stdout[-3000:] + refused.stderr[-2000:]
    assert "stack webhook (ai-social-media-dev-webhook) changed since the plan" in refused.stdout
    assert "nothing was executed" in refused.stdout
    assert calls(recorder, "ExecuteChangeSet") == [] and calls(recorder, "CreateChangeSet") == []
    assert updated_times(cfn) == before
    backend = planfile.planned_change_sets(doc)["backend"]
    assert cfn.describe_change_set(ChangeSetName=backend)["ExecutionStatus"] == "AVAILABLE"  # left as it was
    # the new plan the refusal asks for, made by the command it printed
    replanned = run_printed(local_aws, printed_commands(refused.stdout, "python deploy.py plan --out")[0])
    assert replanned.returncode == 0, replanned.stdout[-2000:]
    assert sorted(planfile.planned_change_sets(planfile.load(plan_path))) == ["backend", "backend-pipeline"]


def test_4_an_environment_change_after_the_plan_refuses_it_before_anything_runs(local_aws, boto, recorder, plan_path):
    # test 3 left a plan for backend and backend-pipeline; now the environment file changes
    environment = ROOT / "environments" / f"{ENV}.toml"
    original = environment.read_text()
    assert ENVIRONMENT_CHANGE[0] in original
    cfn = boto("cloudformation")
    before = updated_times(cfn)
    recorder.clear()
    try:
        environment.write_text(original.replace(*ENVIRONMENT_CHANGE))
        refused = run_deploy(through(local_aws, recorder), "apply", "--env", ENV, "--local", "--plan", str(plan_path))
    finally:
        environment.write_text(original)
        mark_stale()
    assert refused.returncode == 3, refused.stdout[-3000:] + refused.stderr[-2000:]
    assert "render: dev" in refused.stdout  # the environment was rendered anew before the plan was checked
    assert "stack webhook: the local render (template, tags or code) no longer matches the plan's fingerprint" in refused.stdout
    assert calls(recorder, "ExecuteChangeSet") == [] and calls(recorder, "CreateChangeSet") == []
    assert updated_times(cfn) == before


# --- 3. known after apply, and nothing to do ---------------------------------------------------

def test_5_a_stack_known_after_apply_gets_its_change_set_then_and_says_so(local_aws, boto, recorder, plan_path):
    assert run_deploy(local_aws, "status", "--env", ENV, "--local").returncode == 0  # renders the sources afresh
    frontend = OUT / "stateless" / "frontend.yaml"
    text = frontend.read_text()
    assert FRONTEND_CHANGE[0] in text
    frontend.write_text(text.replace(*FRONTEND_CHANGE))
    # the three stacks deployed with edits differ from the fresh render too; backend takes frontend's output
    _, doc = plan_out(local_aws, plan_path)
    assert planfile.known_after_apply(doc) == {
        "backend": "parameter ServedOrigin is output ServedOrigin of stack frontend, which this plan changes"}
    planned = planfile.planned_change_sets(doc)
    assert sorted(planned) == ["backend-pipeline", "frontend", "webhook"]
    cfn = boto("cloudformation")
    SEEN["events"] = newest_events(cfn)
    recorder.clear()
    applied = run_deploy(through(local_aws, recorder), "apply", "--env", ENV, "--local", "--plan", str(plan_path), "--report", str(REPORT))
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert [c["params"]["StackName"] for c in calls(recorder, "CreateChangeSet")] == [names()["backend"]]
    executed = [c["params"]["ChangeSetName"] for c in calls(recorder, "ExecuteChangeSet")]
    assert len(executed) == 4 and set(planned.values()) < set(executed)
    assert "[backend] not in the plan, known after apply (parameter ServedOrigin is output ServedOrigin of stack frontend" in applied.stdout
    assert re.search(r"backend +deployed \(UPDATE_COMPLETE\).*: known after apply: its change set made, checked and gated", applied.stdout)
    assert f"apply: report written to {REPORT}" in applied.stdout
    page = check_page(boto, REPORT)  # the report of this apply: its four stacks' resources
    assert {k for k, v in page["timeline"].items() if v} >= {"frontend", "backend", "webhook", "backend-pipeline"}


def test_6_a_plan_with_no_changes_does_nothing_and_says_so(local_aws, recorder, plan_path):
    result, doc = plan_out(local_aws, plan_path)
    assert not planfile.has_changes(doc) and "no changes" in result.stdout
    recorder.clear()
    applied = run_deploy(through(local_aws, recorder), "apply", "--env", ENV, "--local", "--plan", str(plan_path))
    assert applied.returncode == 0, applied.stdout[-2000:]
    assert "has no changes; nothing to do, nothing was executed" in applied.stdout
    assert calls(recorder, "ExecuteChangeSet") == [] and calls(recorder, "CreateChangeSet") == []


def test_7_a_plan_for_another_account_is_refused_and_a_missing_file_is_bad_input(local_aws, plan_path, tmp_path):
    doc = json.loads(plan_path.read_text())
    doc["account_id"] = "111122223333"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    refused = run_deploy(local_aws, "apply", "--env", ENV, "--local", "--plan", str(other))
    assert refused.returncode == 3, refused.stdout[-2000:]
    assert "the plan is for dev in 111122223333/us-east-1, this run is dev in 000000000000/us-east-1" in refused.stdout
    missing = run_deploy(local_aws, "apply", "--env", ENV, "--local", "--plan", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and missing.stderr.strip() == f"deploy: --plan {tmp_path / 'nope.json'}: no such file"


# --- 4. a first deploy from a plan --------------------------------------------------------------

def test_8_a_plan_of_a_new_environment_creates_storage_from_its_change_set_and_the_rest_after_it(local_aws, boto, recorder, tmp_path):
    account = "111122223333"  # an account of its own on the same local AWS: nothing is deployed there
    env = {**through(local_aws, recorder), "AWS_ACCESS_KEY_ID": account}
    rendered = subprocess.run([sys.executable, str(ROOT / "render.py"), "--env", ENV, "--account-id", account, "--region", "us-east-1",
                               "--out", str(OUT), "-q"], capture_output=True, text=True, env=env)
    assert rendered.returncode == 0, rendered.stderr
    plan_file = tmp_path / "first.json"
    try:
        _, doc = plan_out({**local_aws, "AWS_ACCESS_KEY_ID": account}, plan_file)
        planned = planfile.planned_change_sets(doc)
        assert list(planned) == ["storage"]  # every other stack needs what storage creates
        after = planfile.known_after_apply(doc)
        # the webhook needs storage twice: its code goes into storage's artifacts bucket, its roles carry storage's boundary
        assert after["webhook"] in ("its code is packaged into the artifacts bucket of stack storage, which this plan creates",
                                    "it imports ai-social-media-dev-storage-PermissionsBoundaryArn, which stack storage exports "
                                    "only once this plan has run it")
        assert after["frontend"].startswith("it imports ai-social-media-dev-storage-") and set(after) == set(names()) - {"storage"}
        storage = next(e for e in doc["stacks"] if e["key"] == "storage")
        assert storage["planned_stack"]["status"] == "REVIEW_IN_PROGRESS" and storage["action"] == "create"
        recorder.clear()
        applied = run_deploy(env, "apply", "--env", ENV, "--local", "--plan", str(plan_file))
        assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
        assert re.search(r"\[storage\] deployed \(CREATE_COMPLETE\)( in \d+s)?: the planned change set", applied.stdout), applied.stdout
        executed = [c["params"]["ChangeSetName"] for c in calls(recorder, "ExecuteChangeSet")]
        assert executed[0] == planned["storage"]
        made = [c["params"]["StackName"] for c in calls(recorder, "CreateChangeSet")]
        settle = applied.stdout.index("settle: storage")
        assert sorted(made[:len(after)]) == sorted(names()[k] for k in after)  # one each, when their wave came
        assert made[len(after):] == [names()["storage"]] and settle > 0  # storage again only in the settle step
        for key in after:
            assert f"[{key}] not in the plan, known after apply" in applied.stdout
    finally:
        mark_stale()  # the next run renders for its own account
