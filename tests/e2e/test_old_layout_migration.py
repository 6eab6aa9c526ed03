"""10. Migration from the old stack layout (DDR-045's "Before"), on the local AWS:
the five old stacks with their old removal policies, a CDK-style auto-delete custom
resource, an export one old stack imports from another, and data in every bucket
and the table. migrate is interrupted at every step boundary and run again; after
every run each object, each bucket's creation date and the table item are checked.
Then apply, check, and the old stacks deleted without touching a bucket.

It runs in an account of its own on the session's emulator, so it shares nothing
with the other scenarios."""
from __future__ import annotations

import json


import legacy
from conftest import ROOT, mark_stale
from support import account_client, account_deploy, account_env

ACCOUNT = "101010101010"
OLD_PREFIX = "Dev"
OUT = ROOT / "build" / "local-dev"


def environment(local_aws):
    return account_env(local_aws, ACCOUNT)


def client(local_aws, service):
    return account_client(local_aws, ACCOUNT, service)


def deploy_py(local_aws, *args, timeout=600):
    return account_deploy(local_aws, ACCOUNT, *args, "--env", "dev", "--local", timeout=timeout)


def plan(local_aws) -> dict:
    result = deploy_py(local_aws, "migrate", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_10a_the_fixtures_auto_delete_resource_really_empties_a_tagged_bucket(local_aws):
    """The control: the fixture's custom resource empties its bucket on delete when the
    bucket carries CDK's tag, and leaves it alone without. (The buckets are retained here
    so that only the handler acts: the emulator deletes a non-empty bucket with its stack,
    where AWS fails with BucketNotEmpty; the migration must hold even so.)"""
    cfn, s3 = client(local_aws, "cloudformation"), client(local_aws, "s3")
    tagged_template = (legacy.FIXTURES / "frontend.yaml").read_text().replace("DeletionPolicy: Delete", "DeletionPolicy: Retain", 1)
    untagged_template = tagged_template.replace('      Tags:\n        - {Key: aws-cdk:auto-delete-objects, Value: "true"}\n', "")
    assert untagged_template != tagged_template
    left = {}
    for tagged in (False, True):
        template = tagged_template if tagged else untagged_template
        bucket, name = f"legacy-control-{int(tagged)}-{ACCOUNT}", f"Control{int(tagged)}-FrontendStack"
        cfn.create_stack(StackName=name, TemplateBody=template, Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": "FrontendBucketName", "ParameterValue": bucket}])
        legacy.wait(cfn, name, "CREATE_COMPLETE")
        if tagged:
            legacy.tag_for_auto_delete(s3, bucket)
        s3.put_object(Bucket=bucket, Key="index.html", Body=b"<html></html>")
        cfn.delete_stack(StackName=name)
        legacy.wait_deleted(cfn, name)
        left[tagged] = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
    assert left == {False: 1, True: 0}  # the tag is what makes the handler empty a bucket


def test_10b_migrate_moves_every_bucket_and_the_table_into_storage_with_the_data(local_aws):
    mark_stale()  # render for this test's account
    try:
        _migrate(local_aws)
    finally:
        mark_stale()  # the other scenarios render for theirs


def _migrate(local_aws):
    cfn, s3, dynamodb = (client(local_aws, s) for s in ("cloudformation", "s3", "dynamodb"))
    first = plan(local_aws)  # renders for this account; nothing is deployed yet
    manifest = json.loads((OUT / "manifest.json").read_text())
    buckets, table = manifest["physical_names"]["buckets"], manifest["physical_names"]["table"]
    assert {r["state"] for r in first["resources"]} == {"missing"} and first["steps"] == []

    old = legacy.deploy(cfn, OLD_PREFIX, buckets, table)
    legacy.tag_for_auto_delete(s3, buckets["frontend"])
    data = legacy.Data(s3, dynamodb, buckets, table)

    # 1. the plan: each resource, its old stack, its DeletionPolicy, every step; nothing changes
    before = {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}
    planned = plan(local_aws)
    where = {r["name"]: (r["state"], r["old_stack"], r["deletion_policy"]) for r in planned["resources"]}
    assert where == {
        buckets["media"]: ("in-old-stack", "Dev-StorageStack", "Delete"),
        table: ("in-old-stack", "Dev-StorageStack", "Delete"),
        buckets["frontend"]: ("in-old-stack", "Dev-FrontendStack", "Delete"),
        buckets["backend_artifacts"]: ("in-old-stack", "Dev-BackendPipelineStack", "Delete"),
        buckets["frontend_artifacts"]: ("in-old-stack", "Dev-FrontendPipelineStack", "Delete"),
        buckets["log_archive"]: ("in-old-stack", "Dev-OperationsStack", "Retain"),
    }
    kinds = [s["kind"] for s in planned["steps"]]
    assert kinds.index("untag") < kinds.index("remove") and max(i for i, k in enumerate(kinds) if k == "retain") < kinds.index("remove")
    assert kinds[-2:] == ["import", "protect"]
    retain_frontend = next(s for s in planned["steps"] if s["kind"] == "retain" and s["stack"] == "Dev-FrontendStack")
    assert "FrontendBucketAutoDeleteObjects" in retain_frontend["resources"]  # the custom resource is never invoked on delete
    assert "FrontendBucketPolicy" in retain_frontend["resources"]  # nor DeleteBucketPolicy called on the moved bucket
    removals = {s["stack"]: s["resources"] for s in planned["steps"] if s["kind"] == "remove"}
    assert removals["Dev-StorageStack"] == ["MediaBucket", "MediaBucketPolicy", "SessionsTable"]
    assert {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]} == before
    data.assert_intact("after the dry run")

    # 2-4. interrupted after every step, and run again: it resumes, and nothing is ever lost
    runs, remaining = 0, len(planned["steps"])
    while True:
        steps = plan(local_aws)["steps"]
        if not steps:
            break
        assert len(steps) < remaining or runs == 0, f"no progress: {steps}"
        remaining = len(steps)
        stopped = deploy_py(local_aws, "migrate", "--stop-after", steps[0]["kind"] if steps[0]["kind"] != "protect" else "import")
        assert stopped.returncode in (0, 130), stopped.stdout[-3000:] + stopped.stderr[-2000:]
        runs += 1
        data.assert_intact(f"after run {runs} (stopped after {steps[0]['kind']} {steps[0]['stack']})")
        assert runs < 20
    assert runs >= 8  # untag, 5 retains... each old stack made harmless, then removed, then the import

    again = deploy_py(local_aws, "migrate")
    assert again.returncode == 0, again.stdout[-2000:]
    assert "steps: none" in again.stdout
    assert f"python deploy.py migrate --delete-old {' '.join(sorted(old))} --env dev --local" in again.stdout
    storage = cfn.describe_stacks(StackName=manifest["stacks"][0]["name"])["Stacks"][0]
    assert storage["EnableTerminationProtection"] is True
    owned = {r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName=storage["StackName"])["StackResourceSummaries"]}
    assert owned == set(buckets.values()) | {table}

    # 5. hand over: apply takes over; check is clean; the old stacks hold nothing stateful
    applied = deploy_py(local_aws, "apply")
    assert applied.returncode == 0, applied.stdout[-3000:]
    data.assert_intact("after apply")
    checked = deploy_py(local_aws, "check", "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["findings"] == []
    for name in old:
        held = {r["ResourceType"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
        assert not held & {"AWS::S3::Bucket", "AWS::DynamoDB::Table"}, (name, held)
    refused = deploy_py(local_aws, "migrate", "--delete-old", storage["StackName"])
    assert refused.returncode == 3 and "a stack of this environment" in refused.stdout
    deleted = deploy_py(local_aws, "migrate", "--delete-old", *old)
    assert deleted.returncode == 0, deleted.stdout[-2000:]
    assert not {s["StackName"] for s in cfn.describe_stacks()["Stacks"]} & set(old)
    data.assert_intact("after the old stacks were deleted")
    # the policies in force are the new stacks' own: deleting the old ones removed none
    sids = {name: {s.get("Sid") for s in json.loads(s3.get_bucket_policy(Bucket=buckets[name])["Policy"])["Statement"]}
            for name in ("media", "frontend")}
    assert sids["media"] == {"DenyInsecureTransport"}, sids  # storage's TLS-only policy
    assert "AllowCloudFrontOriginAccessControl" in sids["frontend"], sids  # the frontend stack's OAC grant
