"""The failure modes the split exists for, each lived through on the local AWS:
1. failure isolation   2. orphan adoption   3. export contract   4. stateful gate
(5, faults, is in test_faults.py). Each test starts from a full apply and leaves
one behind, so they can run in any order after test_deploy_local."""
from __future__ import annotations

from conftest import mark_stale, run_deploy

from support import (ENV, OUT, delete_stack, delete_with_dependents, deploy_json, edit_file, ensure_applied, manifest, names,  # noqa: F401
                     seed_data, stack_state, storage_owned)


# --- 1. failure isolation ------------------------------------------------------------

def test_1_a_failed_stateless_create_leaves_storage_and_data_alone(local_aws, boto, variant):
    ensure_applied(local_aws)
    cfn = boto("cloudformation")
    intact = seed_data(boto)
    storage_before = stack_state(cfn, names()["storage"])
    owned_before = storage_owned(boto)
    delete_with_dependents(cfn, "webhook")  # operations imports from it
    # The emulator lets a stack adopt a log group, function, topic or role that already
    # exists (real AWS refuses), so the failure is injected as a wait condition that
    # times out after the stack's function and log group were created.
    variant(lambda t: edit_file(t / "stateless" / "webhook.yaml.j2", "\nResources:\n", "\nResources:\n"
            "  InjectedFailureHandle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n"
            "  InjectedFailure:\n    Type: AWS::CloudFormation::WaitCondition\n    DependsOn: WebhookLogGroup\n"
            "    Properties:\n      Handle: !Ref InjectedFailureHandle\n      Timeout: \"1\"\n      Count: 1\n"))
    result, summary = deploy_json(local_aws, "apply")
    assert result.returncode == 1, result.stderr[-3000:]
    webhook = next(s for s in summary["stacks"] if s["key"] == "webhook")
    assert webhook["result"] == "failed" and webhook["status"] == "ROLLBACK_COMPLETE"
    assert webhook["failure"]["LogicalResourceId"] == "InjectedFailure"
    assert "timed out" in webhook["failure"]["ResourceStatusReason"]
    assert "FAILED at stack webhook" in result.stderr
    assert webhook["retained"] == [] and "retained: nothing was left behind" in result.stderr
    # the storage stack did not move, still owns every bucket and the table, data intact
    assert stack_state(cfn, names()["storage"]) == storage_before
    assert storage_owned(boto) == owned_before
    intact()
    # no new orphan: check of the real render finds nothing to block
    mark_stale()
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0, checked.stderr
    assert report["findings"] == []
    # the cause removed, apply succeeds (the empty ROLLBACK_COMPLETE stack is replaced)
    result, summary = deploy_json(local_aws, "apply")
    assert result.returncode == 0, result.stderr[-3000:]
    assert next(s for s in summary["stacks"] if s["key"] == "webhook")["result"] == "deployed"
    assert stack_state(cfn, names()["webhook"])[0] == "CREATE_COMPLETE"


def test_1b_check_reports_a_name_collision_before_any_deploy(local_aws, boto):
    ensure_applied(local_aws)
    cfn, logs = boto("cloudformation"), boto("logs")
    template = (OUT / "stateless" / "webhook.yaml").read_text()
    delete_with_dependents(cfn, "webhook")  # operations imports from it
    log_group = next(line.split(":", 1)[1].strip() for line in template.splitlines() if "LogGroupName: /aws/lambda/" in line)
    logs.create_log_group(logGroupName=log_group)  # on real AWS, creating the stack would now fail
    try:
        checked, report = deploy_json(local_aws, "check")
        assert checked.returncode == 3
        assert [(f["kind"], f["stack"], f["subject"]) for f in report["findings"]] == [
            ("orphan", "webhook", f"AWS::Logs::LogGroup {log_group}")]
        refused = run_deploy(local_aws, "apply", "--env", ENV, "--local")
        assert refused.returncode == 3 and "refused before any change" in refused.stdout
        assert "webhook" not in {s["StackName"].rsplit("-", 1)[-1] for s in cfn.describe_stacks()["Stacks"]}
        # the override is explicit and said out loud: the log group is imported into the stack (ImportExistingResources)
        forced = run_deploy(local_aws, "apply", "--env", ENV, "--local", "--allow-orphans")
        assert forced.returncode == 0, forced.stdout[-2000:]
        assert f"OVERRIDDEN by --allow-orphans: [orphan] webhook: AWS::Logs::LogGroup {log_group}" in forced.stdout
    finally:
        if not any(s["StackName"] == names()["webhook"] for s in cfn.describe_stacks()["Stacks"]):
            logs.delete_log_group(logGroupName=log_group)
    ensure_applied(local_aws)


# --- 2. orphan adoption -------------------------------------------------------------

def test_2_orphans_are_reported_before_any_deploy_and_adopted_with_their_data(local_aws, boto):
    ensure_applied(local_aws)
    cfn, s3 = boto("cloudformation"), boto("s3")
    intact = seed_data(boto)
    created = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}
    physical = manifest()["physical_names"]
    assert run_deploy(local_aws, "destroy", "--env", ENV, "--local").returncode == 0
    cfn.update_termination_protection(StackName=names()["storage"], EnableTerminationProtection=False)
    result, data = deploy_json(local_aws, "destroy", "--include-storage")
    assert result.returncode == 0, result.stderr
    assert {r["physical_id"] for r in data["retained"]} == set(physical["buckets"].values()) | {physical["table"]}
    assert all("deploy.py adopt" in r["adopt"] for r in data["retained"])
    assert cfn.describe_stacks()["Stacks"] == []

    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    orphans = {f["subject"].split(" ", 1)[1] for f in report["findings"] if f["kind"] == "orphan"}
    assert orphans == set(physical["buckets"].values()) | {physical["table"]}
    assert all("deploy.py adopt" in f["fix"] for f in report["findings"])

    adopted, data = deploy_json(local_aws, "adopt")
    assert adopted.returncode == 0, adopted.stderr
    assert {a["name"] for a in data["adopted"]} == orphans
    assert stack_state(cfn, names()["storage"])[0] == "IMPORT_COMPLETE"
    assert cfn.describe_stacks(StackName=names()["storage"])["Stacks"][0]["EnableTerminationProtection"] is True
    intact()
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["findings"] == []
    ensure_applied(local_aws)
    storage_owned(boto)
    intact()
    after = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}
    assert {n: after[n] for n in physical["buckets"].values()} == {n: created[n] for n in physical["buckets"].values()}


# --- 3. export contract --------------------------------------------------------------

def test_3_removing_an_export_in_use_is_refused_naming_the_importer(local_aws, boto, variant):
    ensure_applied(local_aws)
    cfn = boto("cloudformation")
    before = {name: stack_state(cfn, name) for name in (s["StackName"] for s in cfn.describe_stacks()["Stacks"])}

    def rename(templates):  # storage renames the export; backend moves to the new name
        edit_file(templates / "storage.yaml.j2", '("MediaBucketName", "!Ref MediaBucket")', '("UploadsBucketName", "!Ref MediaBucket")')
        backend = templates / "stateless" / "backend.yaml.j2"
        backend.write_text(backend.read_text().replace("-MediaBucketName", "-UploadsBucketName"))
    variant(rename)
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    findings = [f for f in report["findings"] if f["kind"] == "export-in-use"]
    assert [f["subject"] for f in findings] == ["ai-social-media-dev-storage-MediaBucketName"]
    assert "ai-social-media-dev-backend" in findings[0]["detail"]
    assert "neither order works" in findings[0]["fix"]
    refused = run_deploy(local_aws, "apply", "--env", ENV, "--local")
    assert refused.returncode == 3
    assert {name: stack_state(cfn, name) for name in before} == before


# --- 4. stateful change gate ---------------------------------------------------------

def test_4_replacing_the_table_is_refused_naming_table_and_property(local_aws, boto, variant):
    ensure_applied(local_aws)
    cfn = boto("cloudformation")
    before = stack_state(cfn, names()["storage"])
    variant(lambda t: (t / "storage.yaml.j2").write_text(
        (t / "storage.yaml.j2").read_text().replace("AttributeName: sessionId", "AttributeName: mediaSessionId")))
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [("stateful-change", "AWS::DynamoDB::Table SessionsTable")]
    assert "KeySchema" in report["findings"][0]["detail"]
    refused = run_deploy(local_aws, "apply", "--env", ENV, "--local")
    assert refused.returncode == 3 and "SessionsTable" in refused.stdout
    assert stack_state(cfn, names()["storage"]) == before
    pending = [c for c in cfn.list_change_sets(StackName=names()["storage"])["Summaries"]
               if c.get("ExecutionStatus") not in ("EXECUTE_COMPLETE", "OBSOLETE")]
    assert pending == []  # check's change set was read and deleted, never executed
