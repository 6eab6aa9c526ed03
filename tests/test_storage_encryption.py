"""The storage stack's encryption and events: the customer managed key an environment may
opt into (encryption.customer_managed_key), the buckets' and the table's encryption, Object
Lock, object events to EventBridge, and the TLS-only bucket policies."""
from __future__ import annotations

import fnmatch
import json

import pytest

from conftest import ROOT, load_template
from stateless_support import env_dir_with, load, render
from tooling.render import environment
from tooling.render.graph import _walk

ENVS = ("dev", "prod")
KEY_ARN = {"Fn::GetAtt": ["EncryptionKey", "Arn"]}


@pytest.fixture(scope="module")
def storage(rendered):
    return {env: load_template(*rendered[env], "storage") for env in ENVS}


@pytest.fixture(scope="module")
def dev_with_key(tmp_path_factory):
    """dev with its switch turned on: the key must follow the switch, not the environment's name."""
    tmp = tmp_path_factory.mktemp("dev-with-key")
    out, manifest = render(tmp, "dev", env_dir=env_dir_with(tmp, {"dev": {"customer_managed_key": "true"}}))
    return out, manifest


def buckets(template: dict) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}


def has_key(env: str) -> bool:
    return environment.load(env)["encryption"]["customer_managed_key"]


def test_the_switch_is_visible_in_every_environment_file_and_dev_opts_out():
    for name in environment.available():
        text = (environment.ENVIRONMENTS_DIR / f"{name}.toml").read_text()
        assert "[encryption]" in text and "customer_managed_key = " in text, name
    assert has_key("prod") is True and has_key("dev") is False


@pytest.mark.parametrize("env", ENVS)
def test_the_key_exists_exactly_when_the_environment_asks_and_is_kept_like_the_buckets(storage, env):
    template = storage[env]
    keys = {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key"}
    if not has_key(env):
        assert keys == {} and "EncryptionKeyArn" not in template["Outputs"]
        return
    assert list(keys) == ["EncryptionKey"]
    key = keys["EncryptionKey"]
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert key["Properties"]["EnableKeyRotation"] is True and key["Properties"]["PendingWindowInDays"] == 30
    assert template["Outputs"]["EncryptionKeyArn"] == {"Value": KEY_ARN, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-EncryptionKeyArn"}}}
    policy = json.loads((ROOT / "templates" / "storage-stack-policy.json").read_text())
    assert "LogicalResourceId/EncryptionKey" in policy["Statement"][1]["Resource"]


def test_the_key_policy_waits_for_nothing_and_names_only_what_uses_the_key(rendered, storage):
    """No cycle: storage deploys first, so its key policy may name no resource of any stack
    (not even its own buckets, which use the key). Every service it lets in is scoped to this
    environment's names, and those names are the ones the other stacks render."""
    template, (out, manifest) = storage["prod"], rendered["prod"]
    policy = template["Resources"]["EncryptionKey"]["Properties"]["KeyPolicy"]
    for node in _walk(policy):
        assert "Fn::ImportValue" not in node and "Fn::GetAtt" not in node
        assert node.get("Ref", "AWS::") .startswith("AWS::")
    statements = {s["Sid"]: s for s in policy["Statement"]}
    principals = {json.dumps(s["Principal"], sort_keys=True) for s in statements.values()}
    assert principals == {json.dumps(p, sort_keys=True) for p in [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}, "*",
        {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}, {"Service": "cloudfront.amazonaws.com"},
        {"Service": "logging.s3.amazonaws.com"}, {"Service": "delivery.logs.amazonaws.com"},
        {"Service": "cloudwatch.amazonaws.com"}, {"Service": "events.amazonaws.com"}]}
    for sid, statement in statements.items():
        if "Service" in statement["Principal"]:
            assert statement.get("Condition"), f"{sid}: a service principal needs a condition"

    def arn(text: str) -> str:
        return text.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", manifest["region"]).replace(
            "${AWS::AccountId}", manifest["account_id"])

    # every log group of every stateless stack is one CloudWatch Logs may encrypt with the key
    patterns = [arn(p["Fn::Sub"]) for p in statements["CloudWatchLogsEncryptsTheLogGroups"]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]]
    groups = [r["Properties"]["LogGroupName"] for stack in manifest["stacks"] if stack["key"] != "storage"
              for r in load_template(out, manifest, stack["key"])["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) >= 9
    for name in groups:
        group_arn = f"arn:aws:logs:{manifest['region']}:{manifest['account_id']}:log-group:{name}"
        assert any(fnmatch.fnmatchcase(group_arn, p) for p in patterns), name
    # CloudFront may decrypt the frontend bucket's objects, no other bucket's
    frontend = template["Resources"]["FrontendBucket"]["Properties"]["BucketName"]
    context = statements["CloudFrontReadsTheFrontendBucket"]["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
    assert [arn(c["Fn::Sub"]) for c in context] == [f"arn:aws:s3:::{frontend}", f"arn:aws:s3:::{frontend}/*"]
    # alarms and event rules publish to the operations stack's topic, encrypted with the key
    topic = load_template(out, manifest, "operations")["Resources"]["AlarmTopic"]["Properties"]["TopicName"]
    for sid in ("AlarmsPublishToTheAlarmTopic", "EventRulesPublishToTheAlarmTopic"):
        condition = statements[sid]["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]
        assert arn(condition["Fn::Sub"]) == f"arn:aws:sns:{manifest['region']}:{manifest['account_id']}:{topic}"
    # grants only for AWS resources (Control Tower's CT.KMS.PR.3)
    deny = statements["GrantsOnlyForAwsResources"]
    assert (deny["Effect"], deny["Action"], deny["Principal"]) == ("Deny", "kms:CreateGrant", "*")


@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_is_encrypted_locked_and_sends_its_events(storage, env):
    found = buckets(storage[env])
    assert len(found) >= 5
    for logical_id, bucket in found.items():
        props = bucket["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        expected = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN} if has_key(env) else {"SSEAlgorithm": "AES256"}
        assert rule == {"ServerSideEncryptionByDefault": expected, "BucketKeyEnabled": True}, logical_id
        assert props["ObjectLockEnabled"] is True and "ObjectLockConfiguration" not in props, logical_id
        assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}, logical_id
        # checkov runs CKV_AWS_144 and CKV_AWS_145 on Terraform only: a skip of them here would skip nothing
        skipped = [s["id"] for s in bucket.get("Metadata", {}).get("checkov", {}).get("skip", [])]
        assert not {"CKV_AWS_144", "CKV_AWS_145"} & set(skipped), logical_id


def test_the_switch_alone_brings_the_key(dev_with_key):
    out, manifest = dev_with_key
    template = load(out, "storage")
    assert template["Resources"]["EncryptionKey"]["Type"] == "AWS::KMS::Key"
    assert all(b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KEY_ARN
               for b in buckets(template).values())
    importers = sorted(s["key"] for s in manifest["stacks"] if "ai-social-media-dev-storage-EncryptionKeyArn" in s["imports"])
    assert importers == ["backend", "backend-pipeline", "frontend-pipeline", "operations", "webhook"]


@pytest.mark.parametrize("env", ENVS)
def test_the_table_uses_the_aws_managed_key_without_naming_it(storage, env):
    """DynamoDB's API takes KMSMasterKeyId only for a key other than aws/dynamodb."""
    table = storage[env]["Resources"]["SessionsTable"]["Properties"]
    assert table["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}


@pytest.mark.parametrize("env", ENVS)
def test_tls_only_policies_name_the_objects_as_control_tower_reads_them(storage, env):
    """CT.S3.PR.8 reads the object ARN as Fn::Join of the bucket's Arn and "/*"."""
    policies = {lid: r for lid, r in storage[env]["Resources"].items() if r["Type"] == "AWS::S3::BucketPolicy"}
    assert policies
    for logical_id, policy in policies.items():
        bucket = policy["Properties"]["Bucket"]["Ref"]
        deny = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert deny["Resource"] == [{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}], logical_id
        assert policy["Metadata"]["cfn-lint"]["config"]["ignore_checks"] == ["I1022"]


def test_checkov_runs_no_ckv_aws_144_or_145_on_cloudformation():
    """Why the storage template skips neither: checkov has them for Terraform only."""
    import subprocess

    listed = subprocess.run([str(ROOT / ".tools" / "checkov" / "bin" / "checkov"), "--list", "--framework", "cloudformation"],
                            capture_output=True, text=True, timeout=120, check=True).stdout
    assert "CKV_AWS_18 " in listed   # the listing is checkov's CloudFormation checks
    assert "CKV_AWS_144 " not in listed and "CKV_AWS_145 " not in listed


@pytest.mark.parametrize("env", ENVS)
def test_uploads_expire_with_their_session(storage, env):
    """Only the media bucket's sessions/ prefix; never before the session ends (it lives
    backend.session_ttl_hours), at most a day after."""
    hours = environment.load(env)["backend"]["session_ttl_hours"]
    for logical_id, bucket in buckets(storage[env]).items():
        rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
        if logical_id != "MediaBucket":
            assert "expire-uploads-with-their-session" not in rules, logical_id
            continue
        rule = rules["expire-uploads-with-their-session"]
        assert (rule["Status"], rule["Prefix"]) == ("Enabled", "sessions/")
        assert hours <= rule["ExpirationInDays"] * 24 < hours + 24


def test_the_expiry_follows_the_session_lifetime(tmp_path):
    out, _ = render(tmp_path, "dev", env_dir=env_dir_with(tmp_path, {"dev": {"session_ttl_hours": "49"}}))
    rules = load(out, "storage")["Resources"]["MediaBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [r["ExpirationInDays"] for r in rules if r["Id"] == "expire-uploads-with-their-session"] == [3]
