"""Reviewed deploys without AWS: the plan file's format and its refusals (status 2), which
stacks are known only after apply, the gate apply --plan passes before executing anything
(on a real render, with the stacks and change sets as AWS describes them), apply's waves
executing exactly the planned change sets, and the pull-request comment (golden)."""
from __future__ import annotations

import copy
import io
import json
import os
from types import SimpleNamespace

import pytest

from conftest import ACCOUNT, OTHER_ACCOUNT, ROOT
from tooling.errors import UserError
from tooling.deploy import parameters, planfile, states
from tooling.deploy.execute import apply
from tooling.deploy.gate import changesets, check, planning
from tooling.deploy.progress import Progress
from tooling.deploy.report import markdown
from tooling.deploy.workspace import Workspace

FIXTURE = ROOT / "tests" / "fixtures" / "plan" / "plan.json"
GOLDEN = ROOT / "tests" / "golden" / "plan" / "plan.md"


# --- the plan file ---------------------------------------------------------------------------

def test_the_fixture_plan_loads():
    doc = planfile.load(FIXTURE)
    assert planfile.planned_change_sets(doc) == {
        "frontend": "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/deploy-py-aa/11",
        "webhook": "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/deploy-py-bb/22"}
    assert list(planfile.known_after_apply(doc)) == ["backend"] and planfile.has_changes(doc)


def _written(tmp_path, edit):
    doc = json.loads(FIXTURE.read_text())
    edit(doc)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(format="terraform"), "not a deploy.py plan"),
    (lambda d: d.update(version=2), "plan format version 2; this deploy.py reads version 1"),
    (lambda d: d.pop("account_id"), "field 'account_id' is missing"),
    (lambda d: d["stacks"][1].pop("change_set_id"), "stacks[2] (frontend): field 'change_set_id' is missing"),
    (lambda d: d["stacks"][1].update(action="explode"), "stack frontend: action 'explode' is not one of"),
    (lambda d: d["stacks"][1].update(known_after_apply="why"), "stack frontend: has a change set and is known only after apply"),
    (lambda d: d["stacks"].append(copy.deepcopy(d["stacks"][0])), "stack storage is listed twice"),
    (lambda d: d.update(kept=False), "names change sets but was made without --out"),
])
def test_a_malformed_plan_is_refused_in_one_line_with_status_2(tmp_path, edit, message):
    with pytest.raises(UserError) as caught:
        planfile.load(_written(tmp_path, edit))
    assert caught.value.status == 2 and message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_or_unreadable_plan_file_is_bad_input(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        planfile.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        planfile.load(tmp_path / "bad.json")


# --- known after apply -----------------------------------------------------------------------

def _facts(key, action=states.UPDATE, changed=True, missing=()):
    state = {states.UPDATE: states.TABLE["UPDATE_COMPLETE"], states.ABSENT: states.NO_STACK,
             states.REPLACE: states.TABLE["ROLLBACK_COMPLETE"]}[action]
    return check.StackFacts(key, f"app-{key}", None if action == states.ABSENT else {"StackStatus": state.status}, state,
                            changed=changed, filled=parameters.Filled({}, list(missing), []))


def _small_ws():
    stacks = {
        "storage": {"key": "storage", "exports": ["app-storage-Bucket"], "imports": [],
                    "parameters": {"ServedOrigin": {"stack": "frontend", "output": "ServedOrigin", "late": True}}},
        "frontend": {"key": "frontend", "exports": ["app-frontend-Id"], "imports": ["app-storage-Bucket"], "parameters": {}},
        "backend": {"key": "backend", "exports": [], "imports": ["app-storage-Bucket"],
                    "parameters": {"ServedOrigin": {"stack": "frontend", "output": "ServedOrigin", "late": False}}},
        "operations": {"key": "operations", "exports": [], "imports": ["app-frontend-Id", "app-storage-Bucket"], "parameters": {}},
    }
    return SimpleNamespace(stacks=stacks, manifest={"waves": [["storage"], ["frontend"], ["backend", "operations"]]})


def test_a_parameter_from_a_changed_stack_is_known_after_apply_a_late_one_is_not():
    report = check.Report({"storage": _facts("storage"), "frontend": _facts("frontend"), "backend": _facts("backend"),
                           "operations": _facts("operations")})
    after = planning.known_after_apply(_small_ws(), report, {"app-storage-Bucket", "app-frontend-Id"})
    assert after == {"backend": "parameter ServedOrigin is output ServedOrigin of stack frontend, which this plan changes"}


def test_an_import_a_changed_stack_exports_only_after_it_runs_is_known_after_apply():
    report = check.Report({"storage": _facts("storage", states.ABSENT), "frontend": _facts("frontend", states.ABSENT),
                           "backend": _facts("backend", changed=False), "operations": _facts("operations", states.ABSENT)})
    after = planning.known_after_apply(_small_ws(), report, set())
    assert after == {"frontend": "it imports app-storage-Bucket, which stack storage exports only once this plan has run it",
                     "operations": "it imports app-frontend-Id, which stack frontend exports only once this plan has run it"}
    assert "storage" not in after  # what it needs is late: deployed with the value it has now, settled afterwards


def test_a_sam_stack_waits_for_the_storage_stack_the_plan_creates():
    ws = _small_ws()
    ws.stacks["webhook"] = {"key": "webhook", "exports": [], "imports": [], "parameters": {}, "sam": True}
    ws.manifest["waves"][1].append("webhook")
    report = check.Report({"storage": _facts("storage", states.ABSENT), "frontend": _facts("frontend", changed=False),
                           "backend": _facts("backend", changed=False), "operations": _facts("operations", changed=False),
                           "webhook": _facts("webhook", states.ABSENT)})
    after = planning.known_after_apply(ws, report, set())
    assert after == {"webhook": "its code is packaged into the artifacts bucket of stack storage, which this plan creates"}
    report.facts["storage"] = _facts("storage", changed=False)  # deployed already: its bucket is there
    assert planning.known_after_apply(ws, report, set()) == {}


def test_an_empty_failed_create_is_known_after_apply():
    report = check.Report({"storage": _facts("storage", changed=False), "frontend": _facts("frontend", changed=False),
                           "backend": _facts("backend", states.REPLACE), "operations": _facts("operations", changed=False)})
    after = planning.known_after_apply(_small_ws(), report, {"app-storage-Bucket", "app-frontend-Id"})
    assert list(after) == ["backend"] and "ROLLBACK_COMPLETE" in after["backend"]


# --- the gate of apply --plan, on a real render ----------------------------------------------

@pytest.fixture
def world(rendered, monkeypatch):
    """dev's render, and an AWS whose stacks and change sets are described as AWS does."""
    out, manifest = rendered["dev"]
    ws = Workspace("dev", "us-east-1", ACCOUNT, out, manifest, local=False)
    stacks = {}
    for stack in manifest["stacks"]:
        stacks[stack["name"]] = {"StackName": stack["name"], "StackStatus": "UPDATE_COMPLETE",
                                 "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{stack['name']}/1",
                                 "CreationTime": "2026-12-01 09:00:00+00:00", "LastUpdatedTime": "2026-12-01 10:00:00+00:00",
                                 "Outputs": [], "Parameters": []}
    stacks[ws.stacks["frontend"]["name"]]["Outputs"] = [
        {"OutputKey": k, "OutputValue": v} for k, v in
        {"ServedOrigin": "https://d1.cloudfront.net", "DistributionId": "E1", "DistributionArn": "arn:aws:cloudfront::1:distribution/E1"}.items()]
    stacks[ws.stacks["storage"]["name"]]["Outputs"] = [{"OutputKey": "LogArchiveBucketArn", "OutputValue": "arn:aws:s3:::logs"}]
    backend = ws.stacks["backend"]["name"]
    change_set = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:changeSet/deploy-py-1/abc"
    change_sets = {change_set: {"ChangeSetId": change_set, "StackId": stacks[backend]["StackId"], "Status": "CREATE_COMPLETE",
                                "ExecutionStatus": "AVAILABLE"}}
    from tooling.aws import cloudformation as cfn
    monkeypatch.setattr(cfn, "describe_stack", lambda region, name: copy.deepcopy(stacks.get(name)))
    monkeypatch.setattr(cfn, "describe_change_set", lambda region, cs: copy.deepcopy(change_sets.get(cs)))

    def plan_doc():
        outputs = parameters.Outputs(ws)
        entries = []
        for wave in manifest["waves"]:
            for key in wave:
                values = parameters.fill(ws, key, outputs).values
                entries.append({"key": key, "name": ws.stacks[key]["name"], "region": ws.region_of(key),
                                "action": "update" if key == "backend" else "unchanged",
                                "planned_stack": planfile.snapshot(stacks[ws.stacks[key]["name"]]),
                                "change_set_id": change_set if key == "backend" else None,
                                "fingerprint": changesets.stack_fingerprint(ws, key, values),
                                "render_fingerprint": changesets.stack_fingerprint(ws, key), "parameters": values,
                                "known_after_apply": None, "changes": []})
        return {"format": planfile.FORMAT, "version": planfile.VERSION, "env": "dev", "account_id": ACCOUNT, "region": "us-east-1",
                "waves": manifest["waves"], "overrides": [], "kept": True, "stacks": entries, "findings": [], "notes": []}

    return SimpleNamespace(ws=ws, stacks=stacks, change_sets=change_sets, change_set=change_set, backend=backend,
                           plan=plan_doc, out=out, manifest=manifest)


def test_a_plan_that_holds_passes(world):
    assert planning.verify(world.ws, world.plan()) == []


def test_a_stack_updated_after_the_plan_refuses_it(world):
    doc = world.plan()
    world.stacks[world.ws.stacks["webhook"]["name"]]["LastUpdatedTime"] = "2026-12-06 11:00:00+00:00"
    assert planning.verify(world.ws, doc) == [
        "stack webhook (ai-social-media-dev-webhook) changed since the plan: it was UPDATE_COMPLETE at 2026-12-01 10:00:00+00:00, "
        "it is UPDATE_COMPLETE at 2026-12-06 11:00:00+00:00"]


def test_a_stack_created_after_the_plan_refuses_it(world):
    doc = world.plan()
    doc["stacks"][0]["planned_stack"] = None  # storage was not deployed when planned
    assert "stack storage (ai-social-media-dev-storage) changed since the plan: it was not deployed" in planning.verify(world.ws, doc)[0]


def test_a_changed_render_refuses_the_plan(world):
    doc = world.plan()
    path = world.ws.template_path("webhook")
    original = path.read_text()
    try:
        path.write_text(original.replace("Description: GET and POST /webhook", "Description: GET and POST (changed) /webhook", 1))
        fresh = Workspace("dev", "us-east-1", ACCOUNT, world.out, world.manifest, local=False)
        assert planning.verify(fresh, doc) == ["stack webhook: the local render (template, tags or code) no longer matches the plan's fingerprint"]
    finally:
        path.write_text(original)


def test_a_parameter_whose_source_changed_refuses_the_plan(world):
    doc = world.plan()
    frontend = world.stacks[world.ws.stacks["frontend"]["name"]]
    frontend["Outputs"][0]["OutputValue"] = "https://d2.cloudfront.net"
    assert planning.verify(world.ws, doc) == [
        "stack backend: parameter ServedOrigin is now 'https://d2.cloudfront.net', planned with 'https://d1.cloudfront.net'"]


def test_a_missing_change_set_refuses_the_plan(world):
    doc = world.plan()
    world.change_sets.clear()  # AWS drops a stack's other change sets when one of them runs
    assert planning.verify(world.ws, doc) == [
        f"stack backend: its change set {world.change_set} is missing (deleted, or dropped when another change set of the stack ran)"]


@pytest.mark.parametrize("status,execution", [("CREATE_COMPLETE", "OBSOLETE"), ("CREATE_COMPLETE", "EXECUTE_COMPLETE"),
                                              ("FAILED", "UNAVAILABLE"), ("CREATE_COMPLETE", "EXECUTE_IN_PROGRESS")])
def test_a_change_set_no_longer_executable_refuses_the_plan(world, status, execution):
    doc = world.plan()
    world.change_sets[world.change_set].update(Status=status, ExecutionStatus=execution)
    assert planning.verify(world.ws, doc) == [
        f"stack backend: its change set {world.change_set} is no longer executable (Status {status}, ExecutionStatus {execution})"]


def test_a_plan_for_another_account_region_or_environment_is_refused(world):
    for field, value, shown in (("account_id", OTHER_ACCOUNT, f"dev in {OTHER_ACCOUNT}/us-east-1"),
                                ("region", "eu-west-1", f"dev in {ACCOUNT}/eu-west-1"), ("env", "prod", f"prod in {ACCOUNT}/us-east-1")):
        doc = world.plan()
        doc[field] = value
        assert planning.verify(world.ws, doc) == [f"the plan is for {shown}, this run is dev in {ACCOUNT}/us-east-1"]


def test_a_blocking_finding_or_an_update_without_a_change_set_refuses_the_plan(world):
    doc = world.plan()
    doc["findings"] = [{"kind": "change-set", "stack": "webhook", "subject": "s", "detail": "refused", "fix": "f", "blocking": True, "override": None},
                       {"kind": "orphan", "stack": "storage", "subject": "b", "detail": "d", "fix": "f", "blocking": True, "override": "--allow-orphans"}]
    doc["overrides"] = ["--allow-orphans"]
    webhook = next(e for e in doc["stacks"] if e["key"] == "webhook")
    webhook.update(action="update", reason="change set failed: refused")
    assert planning.verify(world.ws, doc) == [
        "stack webhook: the plan has a blocking finding [change-set] s: refused",
        "stack webhook: the plan has no change set for its update (change set failed: refused)"]


# --- apply's waves with a plan ---------------------------------------------------------------

def test_apply_executes_the_planned_change_sets_and_makes_only_those_known_after_apply(monkeypatch):
    from test_apply_waves import report, workspace

    executed, made = [], []
    monkeypatch.setattr(apply.cfn, "list_exports", lambda region: {})
    monkeypatch.setattr(apply.cfn, "describe_stack", lambda region, name: None)
    monkeypatch.setattr(apply.cfn, "last_event_time", lambda region, name: None)
    monkeypatch.setattr(apply.protection, "protect_storage", lambda ws: None)
    monkeypatch.setattr(apply.stacks, "current", lambda region, name: (None, states.NO_STACK))
    monkeypatch.setattr(apply.changesets, "prepare", lambda ws, key, *a, **k: made.append(key) or SimpleNamespace(retained_for_import=[]))
    monkeypatch.setattr(apply.changesets, "create", lambda ws, prepared, **k: f"new-{made[-1]}")

    def execute(ws, facts, change_set, state, exports, filled, progress, options, owned, since=None):
        executed.append((facts.key, change_set, owned))
        return apply.Outcome(facts.key, "deployed", "UPDATE_COMPLETE", "the planned change set" if not owned else "")
    monkeypatch.setattr(apply, "_execute", execute)
    out = io.StringIO()
    options = apply.Options(planned={"frontend": "cs-frontend", "backend": "cs-backend"}, after_apply={"operations": "it imports X"})
    outcomes = {o.key: o for o in apply.run_apply(workspace(), report(), ["storage", "frontend", "backend", "webhook", "operations"],
                                                  Progress(stream=out, tty=False), None, options)}
    assert sorted(executed) == [("backend", "cs-backend", False), ("frontend", "cs-frontend", False), ("operations", "new-operations", True)]
    assert made == ["operations"]  # no change set of its own for a planned stack
    assert outcomes["storage"].detail.startswith("the plan has no change for it") and outcomes["webhook"].result == "unchanged"
    assert outcomes["operations"].detail.startswith("known after apply")
    assert "[operations] not in the plan, known after apply (it imports X)" in out.getvalue()


# --- the pull-request comment ----------------------------------------------------------------

def test_the_markdown_comment_is_the_golden_one():
    text = markdown.render(planfile.load(FIXTURE))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "the plan's markdown differs from tests/golden/plan/plan.md (UPDATE_GOLDEN=1 to accept)"


def test_the_markdown_carries_every_change_cause_and_finding_fix_of_the_json():
    doc = planfile.load(FIXTURE)
    text = markdown.render(doc)
    for entry in doc["stacks"]:
        for change in entry["changes"]:
            assert f"| {change['logical_id']} | {change['type']} |" in text
            for cause in change["causes"]:
                assert f"`{cause}`" in text
        if entry["known_after_apply"]:
            assert entry["known_after_apply"] in text
    for finding in doc["findings"]:
        assert f"Fix: {finding['fix']}" in text
    assert "1 blocking finding(s): apply refuses this plan." in text  # the orphan is overridden by the plan's --allow-orphans
