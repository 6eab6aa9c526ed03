"""Prod's customer managed key comes back with the buckets it encrypts. On an emulator of
its own (this scenario deletes prod's storage stack): deploy prod's configuration, write
data through the application, delete every stack (storage's resources, its key and the
key's alias are retained), then check names what is left, adopt imports it all (the same
key, found by its alias), apply is clean, and the data is read back through the
application. The ledger never advises deleting the key."""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, mark_stale, run_deploy, running_local_aws
from support import printed_commands, run_printed

sys.path.insert(0, str(ROOT / "ci"))
from smoke import http  # noqa: E402

ENV = "prod"
OUT = ROOT / "build" / f"local-{ENV}"


@pytest.fixture(scope="module")
def prod_aws(tmp_path_factory):
    yield from running_local_aws(tmp_path_factory)


@pytest.fixture(scope="module")
def clients(prod_aws):
    import boto3

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    return lambda service: session.client(service, endpoint_url=prod_aws["AWS_ENDPOINT_URL"])


def deploy(env, command, *extra):
    result = run_deploy(env, command, "--env", ENV, "--local", "--json", *extra, timeout=900)
    return result, (json.loads(result.stdout) if result.stdout.strip() else {})


def api_base(env, backend_outputs) -> str:
    """The backend's HTTP API on the local AWS, path-style (as ci/smoke.py reaches it)."""
    return f"{env['AWS_ENDPOINT_URL']}/_aws/execute-api/{backend_outputs['HttpApiId']}"


def outputs(cfn, stack):
    return {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}


def test_the_key_is_adopted_with_the_buckets_and_old_data_stays_readable(prod_aws, clients):
    cfn, s3 = clients("cloudformation"), clients("s3")
    applied, _ = deploy(prod_aws, "apply")
    assert applied.returncode == 0, applied.stderr[-3000:]
    manifest = json.loads((OUT / "manifest.json").read_text())
    names = {s["key"]: s["name"] for s in manifest["stacks"]}
    physical = manifest["physical_names"]
    storage = names["storage"]
    key_id = cfn.describe_stack_resource(StackName=storage, LogicalResourceId="EncryptionKey")["StackResourceDetail"]["PhysicalResourceId"]
    alias = f"alias/{storage.removesuffix('-storage')}-storage"  # the storage template's EncryptionKeyAlias
    assert clients("kms").describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key_id

    # data written through the application: a session and an upload
    base = api_base(prod_aws, outputs(cfn, names["backend"]))
    status, body = http("POST", f"{base}/sessions", json.dumps({"title": "before"}).encode(), {"content-type": "application/json"})
    assert status == 201, body
    session = json.loads(body)["sessionId"]
    content = f"written before {uuid.uuid4()}".encode()
    request = {"filename": "before.jpg", "contentType": "image/jpeg", "size": len(content)}
    status, body = http("POST", f"{base}/sessions/{session}/uploads", json.dumps(request).encode(), {"content-type": "application/json"})
    assert status == 200, body
    grant = json.loads(body)
    status, _ = http(grant.get("method", "PUT"), grant["uploadUrl"], content, grant.get("headers", {}))
    assert status in (200, 204)
    created = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}

    # every stack deleted; storage's termination protection turned off first, by the command
    # destroy prints when it refuses, run as printed (the AWS CLI)
    destroyed, _ = deploy(prod_aws, "destroy")
    assert destroyed.returncode == 0, destroyed.stderr[-3000:]
    refused, _ = deploy(prod_aws, "destroy", "--include-storage")
    assert refused.returncode == 2 and "termination protection on" in refused.stderr, refused.stderr[-2000:]
    [protection_off] = printed_commands(refused.stderr, "update-termination-protection")
    turned = run_printed(prod_aws, protection_off)
    assert turned.returncode == 0, turned.stdout + turned.stderr
    assert not cfn.describe_stacks(StackName=storage)["Stacks"][0]["EnableTerminationProtection"]
    destroyed, ledger = deploy(prod_aws, "destroy", "--include-storage")
    assert destroyed.returncode == 0, destroyed.stderr[-3000:]
    retained = {r["type"]: r for r in ledger["retained"]}
    assert retained["AWS::KMS::Key"]["physical_id"] == key_id
    assert "deploy.py adopt" in retained["AWS::KMS::Key"]["adopt"]
    assert "delete" not in retained["AWS::KMS::Key"]["remove"] and "keep it" in retained["AWS::KMS::Key"]["remove"]
    assert cfn.describe_stacks()["Stacks"] == []
    assert clients("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"

    # check names the retained buckets, the table, the key and its alias, each with adopt as its fix
    checked, report = deploy(prod_aws, "check")
    assert checked.returncode == 3, checked.stderr[-3000:]
    orphans = {f["subject"] for f in report["findings"] if f["kind"] == "orphan"}
    assert orphans == ({f"AWS::S3::Bucket {b}" for b in physical["buckets"].values()}
                       | {f"AWS::DynamoDB::Table {physical['table']}", f"AWS::KMS::Key {key_id} ({alias})", f"AWS::KMS::Alias {alias}"})
    assert all("deploy.py adopt" in f["fix"] for f in report["findings"])

    # adopt imports them all: the storage stack holds the same key again
    adopted, data = deploy(prod_aws, "adopt")
    assert adopted.returncode == 0, adopted.stderr[-3000:]
    assert {a["type"] for a in data["adopted"]} == {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::KMS::Alias"}
    assert cfn.describe_stack_resource(StackName=storage, LogicalResourceId="EncryptionKey")["StackResourceDetail"]["PhysicalResourceId"] == key_id
    assert cfn.describe_stacks(StackName=storage)["Stacks"][0]["EnableTerminationProtection"] is True

    # an adopt stopped right after its import left storage unprotected: a re-run protects it
    cfn.update_termination_protection(StackName=storage, EnableTerminationProtection=False)
    cfn.set_stack_policy(StackName=storage, StackPolicyBody=json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}]}))
    again, data = deploy(prod_aws, "adopt")
    assert again.returncode == 0 and data["adopted"] == [], again.stderr[-2000:]
    assert "is protected (termination protection and stack policy verified)" in again.stderr
    assert cfn.describe_stacks(StackName=storage)["Stacks"][0]["EnableTerminationProtection"] is True
    policy = json.loads(cfn.get_stack_policy(StackName=storage)["StackPolicyBody"])
    assert policy == json.loads((ROOT / "templates" / "storage-stack-policy.json").read_text())

    # apply brings every stack back; a check after it is clean
    applied, _ = deploy(prod_aws, "apply")
    assert applied.returncode == 0, applied.stderr[-3000:]
    checked, report = deploy(prod_aws, "check")
    assert checked.returncode == 0 and report["findings"] == [], report
    assert cfn.describe_stack_resource(StackName=storage, LogicalResourceId="EncryptionKey")["StackResourceDetail"]["PhysicalResourceId"] == key_id
    key_arn = outputs(cfn, storage)["EncryptionKeyArn"]
    assert key_arn.endswith(f"key/{key_id}")

    # what was written before is read back through the application, from the same buckets
    base = api_base(prod_aws, outputs(cfn, names["backend"]))
    status, body = http("GET", f"{base}/sessions/{session}")
    assert status == 200 and json.loads(body)["sessionId"] == session
    status, body = http("GET", f"{base}/sessions/{session}/uploads")
    uploads = json.loads(body)["uploads"]
    assert [(u["key"], u["size"]) for u in uploads] == [(grant["key"], len(content))]
    assert s3.get_object(Bucket=physical["buckets"]["media"], Key=grant["key"])["Body"].read() == content
    after = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}
    assert {n: after[n] for n in physical["buckets"].values()} == {n: created[n] for n in physical["buckets"].values()}

    # the key renamed in the template (its alias points at it by Ref, the buckets by GetAtt) and
    # the stack policy: check's one finding, its fix run as printed; the same key, data readable
    try:
        _rename_the_key(prod_aws, clients, storage, key_id, physical["buckets"]["media"], grant, content)
    finally:
        mark_stale(OUT)


def _rename_the_key(prod_aws, clients, storage, key_id, media_bucket, grant, content):
    import shutil
    import subprocess
    import tempfile

    cfn = clients("cloudformation")
    templates = Path(tempfile.mkdtemp()) / "templates"
    shutil.copytree(ROOT / "templates", templates)
    text = (templates / "storage.yaml.j2").read_text()
    for old, new in (("  EncryptionKey:\n    Type: AWS::KMS::Key", "  StorageKey:\n    Type: AWS::KMS::Key"),
                     ("!GetAtt [EncryptionKey, Arn]", "!GetAtt [StorageKey, Arn]"), ("TargetKeyId: !Ref EncryptionKey", "TargetKeyId: !Ref StorageKey"),
                     ('"!GetAtt EncryptionKey.Arn"', '"!GetAtt StorageKey.Arn"')):
        assert old in text, old
        text = text.replace(old, new)
    (templates / "storage.yaml.j2").write_text(text)
    policy = templates / "storage-stack-policy.json"
    policy.write_text(policy.read_text().replace('"LogicalResourceId/EncryptionKey"', '"LogicalResourceId/StorageKey"'))
    rendered = subprocess.run([sys.executable, str(ROOT / "render.py"), "--env", ENV, "--account-id", "000000000000", "--region", "us-east-1",
                               "--out", str(OUT), "--templates-dir", str(templates), "-q"], capture_output=True, text=True, env=prod_aws)
    assert rendered.returncode == 0, rendered.stderr
    checked, report = deploy(prod_aws, "check")
    assert checked.returncode == 3, checked.stderr[-3000:]
    blocking = [f for f in report["findings"] if f["blocking"]]
    assert [(f["kind"], f["subject"]) for f in blocking] == [("rename", "AWS::KMS::Key EncryptionKey -> StorageKey")], blocking
    assert blocking[0]["fix"].startswith("python deploy.py rename ")
    renamed = run_printed(prod_aws, blocking[0]["fix"])
    assert renamed.returncode == 0, renamed.stdout[-4000:] + renamed.stderr[-2000:]
    assert cfn.describe_stack_resource(StackName=storage, LogicalResourceId="StorageKey")["StackResourceDetail"]["PhysicalResourceId"] == key_id
    held = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=storage)["StackResourceSummaries"]}
    assert "EncryptionKey" not in held and "EncryptionKeyAlias" in held
    assert clients("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    applied, _ = deploy(prod_aws, "apply")
    assert applied.returncode == 0, applied.stderr[-3000:]
    checked, report = deploy(prod_aws, "check")
    assert checked.returncode == 0 and report["findings"] == [], report
    assert outputs(cfn, storage)["EncryptionKeyArn"].endswith(f"key/{key_id}")
    assert clients("s3").get_object(Bucket=media_bucket, Key=grant["key"])["Body"].read() == content
