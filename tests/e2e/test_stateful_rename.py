"""Renaming a stateful resource, on the local AWS: MediaBucket becomes UploadsBucket in the
storage template and its stack policy. check names it as one `rename` finding whose fix is
run as printed; storage then holds the same bucket (creation date, objects, versions, its
policy) under the new logical id, the stateless stacks keep their imports, and check and
apply are clean. Then the rename back, interrupted between its steps and run again.

It runs in an account of its own on the session's emulator (the other scenarios expect
the real templates' logical ids), so it shares nothing with them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, mark_stale
from support import account_client, account_deploy, account_env, run_printed

ACCOUNT = "191919191919"
OUT = ROOT / "build" / "local-dev"


def environment(local_aws):
    return account_env(local_aws, ACCOUNT)


def client(local_aws, service):
    return account_client(local_aws, ACCOUNT, service)


def deploy_py(local_aws, *args, timeout=900):
    return account_deploy(local_aws, ACCOUNT, *args, timeout=timeout)


def deploy_json(local_aws, *args):
    result = deploy_py(local_aws, *args, "--env", "dev", "--local", "--json")
    return result, (json.loads(result.stdout) if result.stdout.strip() else {})


def render(local_aws, tmp_path, renamed: bool, outputs: str = ""):
    """dev for this account, from the real templates or from a copy with MediaBucket renamed
    UploadsBucket (template and stack policy). outputs: "renamed", its outputs renamed too
    (MediaBucketName -> UploadsBucketName, ...); "both", the old ones kept beside them."""
    import shutil

    templates = tmp_path / f"templates-{'renamed' if renamed else 'real'}-{outputs}"
    shutil.copytree(ROOT / "templates", templates, dirs_exist_ok=True)
    if outputs:
        storage = templates / "storage.yaml.j2"
        text = storage.read_text()
        old = '("MediaBucketName", "!Ref MediaBucket"), ("MediaBucketArn", "!GetAtt MediaBucket.Arn"),'
        assert old in text
        new = '("UploadsBucketName", "!Ref MediaBucket"), ("UploadsBucketArn", "!GetAtt MediaBucket.Arn"),'
        storage.write_text(text.replace(old, new if outputs == "renamed" else old + " " + new))
        backend = templates / "stateless" / "backend.yaml.j2"  # the backend's render imports the new exports
        text = backend.read_text()
        assert "-MediaBucketArn" in text and "-MediaBucketName" in text
        text = text.replace("-MediaBucketArn", "-UploadsBucketArn").replace("-MediaBucketName", "-UploadsBucketName")
        # and a value that changes: the local AWS finds "no changes" when only an expression changes
        # and resolves to the same value, where AWS takes the new template (docs/safety.md)
        assert "      Description: {{ route }}\n" in text
        backend.write_text(text.replace("      Description: {{ route }}\n", "      Description: {{ route }} (uploads bucket renamed)\n"))
    if renamed:
        storage = templates / "storage.yaml.j2"
        text = storage.read_text()
        for old, new in (('bucket("MediaBucket"', 'bucket("UploadsBucket"'),
                         ('tls_only("MediaBucketPolicy", "MediaBucket")', 'tls_only("MediaBucketPolicy", "UploadsBucket")'),
                         ('"!Ref MediaBucket"', '"!Ref UploadsBucket"'), ('"!GetAtt MediaBucket.Arn"', '"!GetAtt UploadsBucket.Arn"'),
                         ("\n  SessionsTable:\n", "\n  SessionStore:\n"),
                         ('"!Ref SessionsTable"', '"!Ref SessionStore"'), ('"!GetAtt SessionsTable.Arn"', '"!GetAtt SessionStore.Arn"')):
            assert old in text, old
            text = text.replace(old, new)
        storage.write_text(text)
        policy = templates / "storage-stack-policy.json"
        text = policy.read_text()
        for old, new in (("MediaBucket", "UploadsBucket"), ("SessionsTable", "SessionStore")):
            assert f'"LogicalResourceId/{old}"' in text
            text = text.replace(f'"LogicalResourceId/{old}"', f'"LogicalResourceId/{new}"')
        policy.write_text(text)
    result = subprocess.run([sys.executable, str(ROOT / "render.py"), "--env", "dev", "--account-id", ACCOUNT, "--region", "us-east-1",
                             "--out", str(OUT), "--templates-dir", str(templates), "-q"],
                            capture_output=True, text=True, env=environment(local_aws))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def deployed(local_aws, tmp_path_factory):
    """dev applied in this test's account, with data in the media bucket."""
    mark_stale()
    render(local_aws, tmp_path_factory.mktemp("rename"), renamed=False)
    applied = deploy_py(local_aws, "apply", "--env", "dev", "--local")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    manifest = json.loads((OUT / "manifest.json").read_text())
    stacks = {s["key"]: s["name"] for s in manifest["stacks"]}
    bucket = manifest["physical_names"]["buckets"]["media"]
    s3 = client(local_aws, "s3")
    first = s3.put_object(Bucket=bucket, Key="sessions/renamed/a.jpg", Body=b"version one")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="sessions/renamed/a.jpg", Body=b"version two")["VersionId"]
    table = manifest["physical_names"]["table"]
    dynamodb = client(local_aws, "dynamodb")
    dynamodb.put_item(TableName=table, Item={"sessionId": {"S": "renamed-session"}})
    # The local AWS creates the table without the template's point-in-time recovery (AWS turns
    # it on): turned on here, so that the rename is seen to keep it.
    dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    yield {"stacks": stacks, "bucket": bucket, "versions": [second, first], "table": table}
    mark_stale()  # the other scenarios render for their own account


def bucket_facts(local_aws, bucket):
    s3 = client(local_aws, "s3")
    created = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}[bucket]
    versions = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="sessions/renamed/")["Versions"]]
    body = s3.get_object(Bucket=bucket, Key="sessions/renamed/a.jpg")["Body"].read()
    return {"created": created, "versions": versions, "body": body, "policy": json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
            "versioning": s3.get_bucket_versioning(Bucket=bucket)["Status"]}


def table_facts(local_aws, table):
    dynamodb = client(local_aws, "dynamodb")
    described = dynamodb.describe_table(TableName=table)["Table"]
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    return {"created": described["CreationDateTime"], "arn": described["TableArn"],
            "deletion_protection": described.get("DeletionProtectionEnabled"),
            "pitr": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
            "item": dynamodb.get_item(TableName=table, Key={"sessionId": {"S": "renamed-session"}})["Item"]}


def holds(local_aws, stack):
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in client(local_aws, "cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
            if r["ResourceStatus"] not in ("DELETE_COMPLETE", "DELETE_SKIPPED")}


def stack_policy(local_aws, stack):
    return json.loads(client(local_aws, "cloudformation").get_stack_policy(StackName=stack)["StackPolicyBody"])


def test_a_rename_is_one_finding_whose_printed_fix_moves_the_bucket_and_keeps_it(local_aws, deployed, tmp_path):
    """MediaBucket becomes UploadsBucket and, in the same run, SessionsTable SessionStore."""
    storage, bucket, table = deployed["stacks"]["storage"], deployed["bucket"], deployed["table"]
    before, table_before = bucket_facts(local_aws, bucket), table_facts(local_aws, table)
    assert before["versions"] == deployed["versions"] and before["body"] == b"version two"
    assert (table_before["pitr"], table_before["deletion_protection"]) == ("ENABLED", True)
    render(local_aws, tmp_path, renamed=True)

    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3, checked.stderr[-3000:]
    blocking = [f for f in report["findings"] if f["blocking"]]
    assert [(f["kind"], f["subject"]) for f in blocking] == [
        ("rename", "AWS::S3::Bucket MediaBucket -> UploadsBucket"),
        ("rename", "AWS::DynamoDB::Table SessionsTable -> SessionStore")], blocking
    fix = blocking[0]["fix"]
    assert fix == "python deploy.py rename MediaBucket=UploadsBucket SessionsTable=SessionStore --env dev --local"
    assert blocking[1]["fix"] == fix and blocking[0]["override"] is None

    # the dry run prints every step and changes nothing
    dry, plan = deploy_json(local_aws, "rename", "MediaBucket=UploadsBucket", "SessionsTable=SessionStore", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert [(s["kind"], s["resources"]) for s in plan["steps"]] == [
        ("guard", ["MediaBucket", "SessionsTable"]), ("retain", ["MediaBucket", "MediaBucketPolicy"]),
        ("remove", ["MediaBucket", "SessionsTable", "MediaBucketPolicy"]),
        ("import", [f"{bucket} -> UploadsBucket", f"{table} -> SessionStore"])]
    assert [(t["state"], t["physical_id"]) for t in plan["targets"]] == [("in-stack", bucket), ("in-stack", table)]
    assert "1. guard" in dry.stderr and "4. import" in dry.stderr  # printed as well
    assert {"MediaBucket", "SessionsTable"} <= set(holds(local_aws, storage))

    renamed = run_printed(environment(local_aws), fix)
    assert renamed.returncode == 0, renamed.stdout[-4000:] + renamed.stderr[-2000:]
    assert "remove: UPDATE_COMPLETE" in renamed.stdout
    held = holds(local_aws, storage)
    assert held.get("UploadsBucket") == bucket and "MediaBucket" not in held
    assert held.get("SessionStore") == table and "SessionsTable" not in held
    after = bucket_facts(local_aws, bucket)
    assert after == before  # same bucket: creation date, every version, the object, its policy, versioning
    assert table_facts(local_aws, table) == table_before  # same table: created, item, PITR, deletion protection
    assert stack_policy(local_aws, storage) == json.loads((OUT / "storage-stack-policy.json").read_text())
    cfn = client(local_aws, "cloudformation")
    assert cfn.describe_stacks(StackName=storage)["Stacks"][0]["EnableTerminationProtection"] is True
    # the exports kept their values all along: the backend still imports the same bucket
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    assert exports[f"{storage}-MediaBucketName"] == bucket

    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert [f for f in report["findings"] if f["blocking"]] == []
    applied = deploy_py(local_aws, "apply", "--env", "dev", "--local")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert "MediaBucketPolicy" in holds(local_aws, storage)  # back in the stack, the same policy in force
    assert bucket_facts(local_aws, bucket) == before and table_facts(local_aws, table) == table_before
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["stacks_to_deploy"] == [] and report["findings"] == [], report
    again, data = run_printed(environment(local_aws), fix), None
    assert again.returncode == 0 and "steps: none" in again.stdout, again.stdout[-2000:] + again.stderr[-2000:]


def test_b_an_interrupted_rename_resumes_and_finishes(local_aws, deployed, tmp_path):
    """The rename back (the real templates again), stopped after its removal: the bucket is
    then in no stack, the stack policy is the render's, and a re-run imports it."""
    storage, bucket = deployed["stacks"]["storage"], deployed["bucket"]
    before = bucket_facts(local_aws, bucket)
    render(local_aws, tmp_path, renamed=False)
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    fix = next(f["fix"] for f in report["findings"] if f["kind"] == "rename")
    assert fix == "python deploy.py rename SessionStore=SessionsTable UploadsBucket=MediaBucket --env dev --local"
    table_before = table_facts(local_aws, deployed["table"])

    stopped = run_printed(environment(local_aws), fix, "--stop-after", "retain")
    assert stopped.returncode == 130, stopped.stdout[-3000:] + stopped.stderr[-2000:]
    assert "UploadsBucket" in holds(local_aws, storage)
    stopped = run_printed(environment(local_aws), fix, "--stop-after", "remove")
    assert stopped.returncode == 130, stopped.stdout[-3000:] + stopped.stderr[-2000:]
    held = holds(local_aws, storage)
    assert not {"UploadsBucket", "MediaBucket", "SessionStore", "SessionsTable"} & set(held)
    assert stack_policy(local_aws, storage) == json.loads((OUT / "storage-stack-policy.json").read_text())
    assert bucket_facts(local_aws, bucket) == before and table_facts(local_aws, deployed["table"]) == table_before

    dry, plan = deploy_json(local_aws, "rename", "SessionStore=SessionsTable", "UploadsBucket=MediaBucket", "--dry-run")
    assert dry.returncode == 0 and [s["kind"] for s in plan["steps"]] == ["import"], dry.stderr[-2000:]
    resumed = run_printed(environment(local_aws), fix)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    assert holds(local_aws, storage).get("MediaBucket") == bucket
    assert holds(local_aws, storage).get("SessionsTable") == deployed["table"]
    applied = deploy_py(local_aws, "apply", "--env", "dev", "--local")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["findings"] == [], report
    assert bucket_facts(local_aws, bucket) == before and table_facts(local_aws, deployed["table"]) == table_before


def test_c_an_export_in_use_that_the_rename_would_drop_is_refused_with_the_order(local_aws, deployed, tmp_path):
    """Outputs renamed with the bucket, the backend's render moved to the new exports while the
    deployed backend imports the old ones: the rename refuses before any change, with the
    order; following it, every command as printed, the rename and the apply go through, the
    backend moves to the new exports, and the old ones can then go."""
    import re

    storage, bucket = deployed["stacks"]["storage"], deployed["bucket"]
    before = bucket_facts(local_aws, bucket)
    render(local_aws, tmp_path, renamed=True, outputs="renamed")
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    assert {f["kind"] for f in report["findings"] if f["blocking"]} == {"rename", "export-in-use"}
    fix = next(f["fix"] for f in report["findings"] if f["kind"] == "rename")
    refused = run_printed(environment(local_aws), fix, "--json")
    assert refused.returncode == 3, refused.stderr[-3000:]
    reasons = json.loads(refused.stdout)["refused"]
    assert len(reasons) == 2 and all(f"{deployed['stacks']['backend']}" in r for r in reasons), reasons
    assert "MediaBucket" in holds(local_aws, storage)  # nothing changed

    order = reasons[0]
    assert "1) keep output MediaBucket" in order
    render(local_aws, tmp_path, renamed=True, outputs="both")  # 1) the old outputs kept beside the new
    for step in (2, 3):
        printed = re.search(rf"{step}\) (python deploy\.py [^;]+);", order).group(1)
        done = run_printed(environment(local_aws), printed)
        assert done.returncode == 0, printed + done.stdout[-3000:] + done.stderr[-2000:]
    assert holds(local_aws, storage).get("UploadsBucket") == bucket
    exports = {e["Name"]: e["Value"] for e in client(local_aws, "cloudformation").list_exports()["Exports"]}
    assert exports[f"{storage}-MediaBucketName"] == exports[f"{storage}-UploadsBucketName"] == bucket
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["findings"] == [] and report["stacks_to_deploy"] == [], (report, done.stdout[-5000:])
    imports = client(local_aws, "cloudformation").list_imports(ExportName=f"{storage}-UploadsBucketName")["Imports"]
    assert imports == [deployed["stacks"]["backend"]]  # the backend moved to the new export
    # 4) the old outputs removed: nothing imports them now, so nothing blocks. (An update that
    # changes only Outputs is "no changes" to the local AWS, so it is not applied here.)
    render(local_aws, tmp_path, renamed=True, outputs="renamed")
    assert f"once no stack imports {storage}-MediaBucket" in order
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["stacks_to_deploy"] == ["storage"], report
    assert [f for f in report["findings"] if f["blocking"]] == [], report
    assert bucket_facts(local_aws, bucket) == before
