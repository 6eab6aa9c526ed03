"""deploy.py against the embedded local AWS, in the order a user lives it:
bad input first (nothing may change), a fresh apply, protection, a no-op apply,
plan after a change, destroy, apply again. The tests share one emulator and run
in file order; each states what it relies on."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, mark_stale, run_deploy

ENV = "dev"
OUT = ROOT / "build" / f"local-{ENV}"
# Every stack deploys locally: the emulator holds what it lacks through the stand-ins
# (tooling/aws/standins), which tests/e2e/test_standins.py holds to their promises.
EXPECTED_SKIPPED: set[str] = set()
# dev's resources that a stand-in provides (dev has no metric stream: its metrics archive is off)
EXPECTED_STAND_INS = {
    "backend-pipeline": [("Pipeline", "AWS::CodePipeline::Pipeline")],
    "frontend-pipeline": [("Pipeline", "AWS::CodePipeline::Pipeline")],
    "operations": [("DynamodbThrottledRequestsAlarm", "AWS::CloudWatch::Alarm"), ("DynamodbSystemErrorsAlarm", "AWS::CloudWatch::Alarm")],
    "edge": [("AccessLogSource", "AWS::Logs::DeliverySource"), ("AccessLogDestination", "AWS::Logs::DeliveryDestination"),
             ("AccessLogDelivery", "AWS::Logs::Delivery")],
}


def manifest():
    return json.loads((OUT / "manifest.json").read_text())


def stack_names():
    return {s["key"]: s["name"] for s in manifest()["stacks"]}


def expected_deployed():
    """Every stack of the render."""
    return set(stack_names()) - EXPECTED_SKIPPED


def apply_json(local_aws, *extra):
    result = run_deploy(local_aws, "apply", "--env", ENV, "--local", "--json", *extra)
    assert result.stdout.strip(), result.stderr
    return result, json.loads(result.stdout)


def change_set_ids(cfn, stack_names):
    """Every change set CloudFormation lists for the stacks (the emulator also keeps executed ones)."""
    return {name: sorted(c["ChangeSetId"] for c in cfn.list_change_sets(StackName=name)["Summaries"]) for name in stack_names}


def pending_change_sets(cfn, stack_names):
    return [c for name in stack_names for c in cfn.list_change_sets(StackName=name)["Summaries"]
            if c.get("ExecutionStatus") not in ("EXECUTE_COMPLETE", "OBSOLETE")]


def assert_bad_input(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --- bad input: status 2, one line, before anything is changed ---------------------

def test_bad_inputs_change_nothing(local_aws, boto):
    assert_bad_input(run_deploy(local_aws, "apply", "--env", "staging", "--local"), "environment 'staging'", "unknown")
    assert_bad_input(run_deploy(local_aws, "apply", "--env", ENV, "--local", "--only", "database"), "stack key 'database'", "unknown")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {**local_aws, "AWS_ENDPOINT_URL": dead, "DEPLOY_MAX_ATTEMPTS": "1"}
    assert_bad_input(run_deploy(env, "status", "--env", ENV, "--local"), f"endpoint {dead}", "does not answer")
    no_credentials = {k: v for k, v in local_aws.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")}
    no_credentials.update({"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
    assert_bad_input(run_deploy(no_credentials, "plan", "--env", ENV), "AWS credentials", "none found")
    # a render made for another account is refused, not deployed
    other = subprocess.run([sys.executable, str(ROOT / "render.py"), "--env", ENV, "--account-id", "111122223333",
                            "--region", "us-east-1", "--out", str(OUT), "-q"], capture_output=True, text=True, env=local_aws)
    assert other.returncode == 0, other.stderr
    try:
        assert_bad_input(run_deploy(local_aws, "apply", "--env", ENV, "--local"), "rendered for account 111122223333", "000000000000")
    finally:
        mark_stale()  # the next run renders afresh
    assert boto("cloudformation").describe_stacks()["Stacks"] == []


# --- a fresh apply ---------------------------------------------------------------

def test_fresh_apply_deploys_every_stack(local_aws, boto):
    result, summary = apply_json(local_aws)
    assert result.returncode == 0, result.stderr[-3000:]
    results = {s["key"]: s for s in summary["stacks"]}
    assert len(results) >= 7 and {k for k, s in results.items() if s["result"] == "deployed"} == expected_deployed()
    assert {k for k, s in results.items() if s["result"] in ("skipped", "blocked")} == EXPECTED_SKIPPED
    cfn = boto("cloudformation")
    for key, name in stack_names().items():
        # storage is created, then updated once the frontend exists (its ServedOrigin arrives late)
        assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == ("UPDATE_COMPLETE" if key == "storage" else "CREATE_COMPLETE")
    assert "skipped on the local AWS" not in result.stderr
    # the output says which resources a stand-in provides, and what that does not prove
    assert "stand-ins: 7 resource(s) on the local AWS are provided by the project's stand-ins" in result.stderr
    assert "backend-pipeline   Pipeline [AWS::CodePipeline::Pipeline]" in result.stderr
    assert "AWS::CodePipeline::Pipeline: real: " in result.stderr and "not real: no pipeline runs" in result.stderr


def test_status_names_the_stand_ins_and_what_they_do_not_prove(local_aws):
    result = run_deploy(local_aws, "status", "--env", ENV, "--local", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    found = {r["key"]: [(i["logical_id"], i["type"]) for i in r["stand_ins"]] for r in status["stacks"] if r["stand_ins"]}
    assert found == EXPECTED_STAND_INS
    legend = "\n".join(status["stand_ins"])
    for kind in ("AWS::CodePipeline::Pipeline", "AWS::Logs::Delivery", "AWS::CloudWatch::Alarm"):
        assert f"{kind}: real: " in legend
    assert "AWS::CloudWatch::MetricStream" not in legend  # none in dev
    text = run_deploy(local_aws, "status", "--env", ENV, "--local")
    assert "stand-in: Pipeline [AWS::CodePipeline::Pipeline]" in text.stdout


def test_every_import_is_resolved_and_listimports_names_the_importer(local_aws, boto):
    cfn = boto("cloudformation")
    names = stack_names()
    checked = 0
    for stack in manifest()["stacks"]:
        if stack["key"] not in expected_deployed():
            continue
        for export in stack["imports"]:
            importers = cfn.list_imports(ExportName=export)["Imports"]
            assert names[stack["key"]] in importers, (export, importers)
            checked += 1
    assert checked >= 20  # the pipelines and operations import too


def test_storage_is_protected(local_aws, boto):
    cfn = boto("cloudformation")
    name = stack_names()["storage"]
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["EnableTerminationProtection"] is True
    with pytest.raises(cfn.exceptions.ClientError, match="TerminationProtection"):
        cfn.delete_stack(StackName=name)
    policy = json.loads(cfn.get_stack_policy(StackName=name)["StackPolicyBody"])
    assert policy == json.loads((ROOT / "templates" / "storage-stack-policy.json").read_text())


def test_smoke_check_uses_the_system_as_a_user_would(local_aws):
    result = subprocess.run([sys.executable, str(ROOT / "ci" / "smoke.py"), "--env", ENV, "--local", "--seed-secrets"],
                            capture_output=True, text=True, env=local_aws, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke: ok" in result.stdout
    # the per-session cap, over HTTP: the URL after the 20th of dev's sessions is refused
    assert ('smoke: upload URL 21 is refused: HTTP 429 {"error": "this session has had its 20 upload URLs '
            '(the limit per session); start a new session to upload more"}: ok') in result.stdout


# --- a second apply ----------------------------------------------------------------

def test_second_apply_changes_nothing_and_skips_every_stack(local_aws, boto):
    cfn = boto("cloudformation")
    before = {s["StackName"]: s.get("LastUpdatedTime") or s["CreationTime"] for s in cfn.describe_stacks()["Stacks"]}
    change_sets_before = change_set_ids(cfn, before)
    result, summary = apply_json(local_aws)
    assert result.returncode == 0, result.stderr[-3000:]
    results = {s["key"]: s["result"] for s in summary["stacks"]}
    assert {k for k, r in results.items() if r == "unchanged"} == expected_deployed()
    assert {k for k, r in results.items() if r in ("skipped", "blocked")} == EXPECTED_SKIPPED
    after = {s["StackName"]: s.get("LastUpdatedTime") or s["CreationTime"] for s in cfn.describe_stacks()["Stacks"]}
    assert after == before
    assert change_set_ids(cfn, before) == change_sets_before  # not one change set was created


def test_plan_after_a_template_change_shows_exactly_that_change(local_aws, boto):
    path = OUT / "stateless" / "backend.yaml"
    original = path.read_text()
    # A property the emulator knows the update behaviour of (it reports "Conditionally"
    # for every property of a type it has no table for, e.g. a log group's retention).
    changed = original.replace("Description: POST /sessions\n", "Description: POST /sessions, version 2\n", 1)
    assert changed != original
    path.write_text(changed)
    try:
        result = run_deploy(local_aws, "plan", "--env", ENV, "--local", "--json")
        assert result.returncode == 0, result.stderr
        plan = {s["key"]: s for s in json.loads(result.stdout)["stacks"]}
    finally:
        path.write_text(original)
    assert plan["backend"]["action"] == "update"
    assert [(c["action"], c["logical_id"], c["type"]) for c in plan["backend"]["changes"]] == [
        ("modify", "CreateSessionFunction", "AWS::Lambda::Function")]
    # what references the log group is re-evaluated, and said to follow from it
    assert all(f["caused_by"] for f in plan["backend"]["follows"]), plan["backend"]["follows"]
    for key in expected_deployed() - {"backend"}:
        assert plan[key]["action"] == "unchanged", plan[key]
    cfn = boto("cloudformation")
    deployed = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert pending_change_sets(cfn, deployed) == []  # the plan's change sets are gone, none executed


# --- destroy, and apply again ------------------------------------------------------

def test_destroy_removes_stateless_stacks_and_keeps_storage_and_its_data(local_aws, boto):
    s3, dynamodb, cfn = boto("s3"), boto("dynamodb"), boto("cloudformation")
    buckets = manifest()["physical_names"]["buckets"]
    table = manifest()["physical_names"]["table"]
    s3.put_object(Bucket=buckets["media"], Key="sessions/keep/photo.jpg", Body=b"precious")
    dynamodb.put_item(TableName=table, Item={"sessionId": {"S": "keep-me"}})
    refused = run_deploy(local_aws, "destroy", "--env", ENV, "--local", "--include-storage")
    assert_bad_input(refused, "termination protection on", "update-termination-protection")

    result = run_deploy(local_aws, "destroy", "--env", ENV, "--local")
    assert result.returncode == 0, result.stdout + result.stderr
    remaining = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
    assert remaining == {stack_names()["storage"]}
    assert "kept ai-social-media-dev-storage" in result.stdout
    for name in buckets.values():
        s3.head_bucket(Bucket=name)
    assert s3.get_object(Bucket=buckets["media"], Key="sessions/keep/photo.jpg")["Body"].read() == b"precious"
    assert dynamodb.get_item(TableName=table, Key={"sessionId": {"S": "keep-me"}})["Item"]["sessionId"]["S"] == "keep-me"


def test_apply_after_destroy_succeeds(local_aws, boto):
    result, summary = apply_json(local_aws)
    assert result.returncode == 0, result.stderr[-3000:]
    results = {s["key"]: s["result"] for s in summary["stacks"]}
    # the new distribution has a new domain: storage keeps its CORS origin through the waves,
    # then is deployed once, in the settle step, with the new one
    assert results["storage"] == "deployed" and "late parameters" in next(s for s in summary["stacks"] if s["key"] == "storage")["detail"]
    assert {k for k, r in results.items() if r == "deployed"} == expected_deployed()
    cfn = boto("cloudformation")
    served = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack_names()["frontend"])["Stacks"][0]["Outputs"]}
    storage = cfn.describe_stacks(StackName=stack_names()["storage"])["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in storage["Parameters"]} == {"ServedOrigin": served["ServedOrigin"]}
