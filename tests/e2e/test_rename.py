"""Renaming a stateful resource, on the local AWS: MediaBucket becomes UploadsBucket in the
storage template and its stack policy. check names it as one `rename` finding whose fix is
run as printed; storage then holds the same bucket (creation date, objects, versions, its
policy) under the new logical id, the stateless stacks keep their imports, and check and
apply are clean. Then the rename back, interrupted between its steps and run again.

It runs in an account of its own on the session's emulator (the other scenarios expect
the real templates' logical ids), so it shares nothing with them."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys

import boto3
import pytest

from conftest import ROOT, mark_stale

ACCOUNT = "191919191919"
OUT = ROOT / "build" / "local-dev"


def environment(local_aws):
    return {**local_aws, "AWS_ACCESS_KEY_ID": ACCOUNT}


def client(local_aws, service):
    return boto3.client(service, endpoint_url=local_aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=ACCOUNT, aws_secret_access_key="test")


def deploy_py(local_aws, *args, timeout=900):
    return subprocess.run([sys.executable, "deploy.py", *args], capture_output=True, text=True,
                          env=environment(local_aws), cwd=ROOT, timeout=timeout)


def deploy_json(local_aws, *args):
    result = deploy_py(local_aws, *args, "--env", "dev", "--local", "--json")
    return result, (json.loads(result.stdout) if result.stdout.strip() else {})


def run_printed(local_aws, fix: str, *extra):
    """A fix exactly as deploy.py printed it (`python deploy.py ...`), run from the repository root."""
    words = shlex.split(fix)
    assert words[:2] == ["python", "deploy.py"], fix
    return subprocess.run([sys.executable, *words[1:], *extra], capture_output=True, text=True,
                          env=environment(local_aws), cwd=ROOT, timeout=900)


def render(local_aws, tmp_path, renamed: bool):
    """dev for this account, from the real templates or from a copy with MediaBucket renamed
    UploadsBucket (template and stack policy)."""
    import shutil

    templates = tmp_path / f"templates-{'renamed' if renamed else 'real'}"
    shutil.copytree(ROOT / "templates", templates, dirs_exist_ok=True)
    if renamed:
        storage = templates / "storage.yaml.j2"
        text = storage.read_text()
        for old, new in (('bucket("MediaBucket"', 'bucket("UploadsBucket"'),
                         ('tls_only("MediaBucketPolicy", "MediaBucket")', 'tls_only("MediaBucketPolicy", "UploadsBucket")'),
                         ('"!Ref MediaBucket"', '"!Ref UploadsBucket"'), ('"!GetAtt MediaBucket.Arn"', '"!GetAtt UploadsBucket.Arn"')):
            assert old in text, old
            text = text.replace(old, new)
        storage.write_text(text)
        policy = templates / "storage-stack-policy.json"
        policy.write_text(policy.read_text().replace('"LogicalResourceId/MediaBucket"', '"LogicalResourceId/UploadsBucket"'))
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
    yield {"stacks": stacks, "bucket": bucket, "versions": [second, first]}
    mark_stale()  # the other scenarios render for their own account


def bucket_facts(local_aws, bucket):
    s3 = client(local_aws, "s3")
    created = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}[bucket]
    versions = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="sessions/renamed/")["Versions"]]
    body = s3.get_object(Bucket=bucket, Key="sessions/renamed/a.jpg")["Body"].read()
    return {"created": created, "versions": versions, "body": body, "policy": json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
            "versioning": s3.get_bucket_versioning(Bucket=bucket)["Status"]}


def holds(local_aws, stack):
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in client(local_aws, "cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
            if r["ResourceStatus"] not in ("DELETE_COMPLETE", "DELETE_SKIPPED")}


def stack_policy(local_aws, stack):
    return json.loads(client(local_aws, "cloudformation").get_stack_policy(StackName=stack)["StackPolicyBody"])


def test_a_rename_is_one_finding_whose_printed_fix_moves_the_bucket_and_keeps_it(local_aws, deployed, tmp_path):
    storage, bucket = deployed["stacks"]["storage"], deployed["bucket"]
    before = bucket_facts(local_aws, bucket)
    assert before["versions"] == deployed["versions"] and before["body"] == b"version two"
    render(local_aws, tmp_path, renamed=True)

    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3, checked.stderr[-3000:]
    blocking = [f for f in report["findings"] if f["blocking"]]
    assert [(f["kind"], f["subject"]) for f in blocking] == [("rename", "AWS::S3::Bucket MediaBucket -> UploadsBucket")], blocking
    fix = blocking[0]["fix"]
    assert fix == "python deploy.py rename MediaBucket=UploadsBucket --env dev --local"
    assert blocking[0]["override"] is None

    # the dry run prints every step and changes nothing
    dry, plan = deploy_json(local_aws, "rename", "MediaBucket=UploadsBucket", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert [s["kind"] for s in plan["steps"]] == ["guard", "retain", "remove", "import"]
    assert plan["targets"][0]["state"] == "in-stack" and plan["targets"][0]["physical_id"] == bucket
    assert "MediaBucket" in holds(local_aws, storage)

    renamed = run_printed(local_aws, fix)
    assert renamed.returncode == 0, renamed.stdout[-4000:] + renamed.stderr[-2000:]
    assert "remove: UPDATE_COMPLETE" in renamed.stdout
    held = holds(local_aws, storage)
    assert held.get("UploadsBucket") == bucket and "MediaBucket" not in held
    after = bucket_facts(local_aws, bucket)
    assert after == before  # same bucket: creation date, every version, the object, its policy, versioning
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
    assert bucket_facts(local_aws, bucket) == before
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["stacks_to_deploy"] == [] and report["findings"] == [], report
    again, data = deploy_json(local_aws, "rename", "MediaBucket=UploadsBucket")
    assert again.returncode == 0 and data["steps"] == [] and data["targets"][0]["state"] == "done", again.stderr[-2000:]


def test_b_an_interrupted_rename_resumes_and_finishes(local_aws, deployed, tmp_path):
    """The rename back (the real templates again), stopped after its removal: the bucket is
    then in no stack, the stack policy is the render's, and a re-run imports it."""
    storage, bucket = deployed["stacks"]["storage"], deployed["bucket"]
    before = bucket_facts(local_aws, bucket)
    render(local_aws, tmp_path, renamed=False)
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    fix = next(f["fix"] for f in report["findings"] if f["kind"] == "rename")
    assert fix == "python deploy.py rename UploadsBucket=MediaBucket --env dev --local"

    stopped = run_printed(local_aws, fix, "--stop-after", "retain")
    assert stopped.returncode == 130, stopped.stdout[-3000:] + stopped.stderr[-2000:]
    assert "UploadsBucket" in holds(local_aws, storage)
    stopped = run_printed(local_aws, fix, "--stop-after", "remove")
    assert stopped.returncode == 130, stopped.stdout[-3000:] + stopped.stderr[-2000:]
    held = holds(local_aws, storage)
    assert "UploadsBucket" not in held and "MediaBucket" not in held
    assert stack_policy(local_aws, storage) == json.loads((OUT / "storage-stack-policy.json").read_text())
    assert bucket_facts(local_aws, bucket) == before

    dry, plan = deploy_json(local_aws, "rename", "UploadsBucket=MediaBucket", "--dry-run")
    assert dry.returncode == 0 and [s["kind"] for s in plan["steps"]] == ["import"], dry.stderr[-2000:]
    resumed = run_printed(local_aws, fix)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    assert holds(local_aws, storage).get("MediaBucket") == bucket
    applied = deploy_py(local_aws, "apply", "--env", "dev", "--local")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["findings"] == [], report
    assert bucket_facts(local_aws, bucket) == before
