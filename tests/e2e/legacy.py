"""The old stack layout (tests/fixtures/legacy), deployed with the physical names
of the environment to migrate, and the data that must survive the migration."""
from __future__ import annotations

import time

from conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "legacy"
# old stack key -> (stack name suffix, parameters from the environment's physical names)
STACKS = {
    "storage": ("StorageStack", lambda b, t: {"MediaBucketName": b["media"], "TableName": t}),
    "frontend": ("FrontendStack", lambda b, t: {"FrontendBucketName": b["frontend"]}),
    "backend-pipeline": ("BackendPipelineStack", lambda b, t: {"ArtifactsBucketName": b["backend_artifacts"]}),
    "frontend-pipeline": ("FrontendPipelineStack", lambda b, t: {"ArtifactsBucketName": b["frontend_artifacts"]}),
    "operations": ("OperationsStack", lambda b, t: {"LogArchiveBucketName": b["log_archive"]}),
}


def stack_name(prefix: str, key: str) -> str:
    return f"{prefix}-{STACKS[key][0]}"


def deploy(cfn, prefix: str, buckets: dict, table: str) -> list[str]:
    """Create the five old stacks, storage first (the backend pipeline imports from it)."""
    names = []
    for key, (_, parameters) in STACKS.items():
        values = parameters(buckets, table)
        if key == "backend-pipeline":
            values["StorageStackName"] = stack_name(prefix, "storage")
        name = stack_name(prefix, key)
        cfn.create_stack(StackName=name, TemplateBody=(FIXTURES / f"{key}.yaml").read_text(),
                         Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()])
        wait(cfn, name, "CREATE_COMPLETE")
        names.append(name)
    return names


def wait(cfn, name: str, want: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            assert status == want, f"{name}: {status}"
            return
        time.sleep(0.5)
    raise AssertionError(f"{name}: still in progress after {seconds}s")


class Data:
    """Objects in every bucket and an item in the table; proves each is intact,
    and that no bucket was recreated (its creation date is unchanged)."""

    def __init__(self, s3, dynamodb, buckets: dict, table: str):
        self.s3, self.dynamodb, self.buckets, self.table = s3, dynamodb, dict(buckets), table
        self.objects = {}
        for purpose, bucket in self.buckets.items():
            key, body = f"migration/{purpose}.txt", f"{purpose} data, {time.time_ns()}".encode()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            self.objects[bucket] = (key, body)
        self.item = {"sessionId": {"S": f"migration-{time.time_ns()}"}, "note": {"S": "keep me"}}
        dynamodb.put_item(TableName=table, Item=self.item)
        self.created = self.creation_dates()

    def creation_dates(self) -> dict:
        return {b["Name"]: b["CreationDate"] for b in self.s3.list_buckets()["Buckets"] if b["Name"] in self.buckets.values()}

    def assert_intact(self, when: str) -> None:
        for bucket, (key, body) in self.objects.items():
            assert self.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, f"{when}: {bucket}/{key}"
        assert self.creation_dates() == self.created, f"{when}: a bucket was recreated"
        item = self.dynamodb.get_item(TableName=self.table, Key={"sessionId": self.item["sessionId"]}).get("Item")
        assert item == self.item, f"{when}: the table item"


def tag_for_auto_delete(s3, bucket: str) -> None:
    """The tag CDK puts on a bucket with autoDeleteObjects (and CloudFormation applies from
    the template's Tags on AWS; the emulator does not apply bucket Tags, so it is set here)."""
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "aws-cdk:auto-delete-objects", "Value": "true"}]})


def wait_deleted(cfn, name: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stacks = [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == name]
        if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            return
        time.sleep(0.5)
    raise AssertionError(f"{name}: not deleted after {seconds}s")
