"""taskcat, for real, on the session's local AWS, beside a deployed dev: every test of
.taskcat.yml passes, taskcat's report is written, nothing of taskcat's environment is
left afterwards, and dev (its stacks and its data) is never touched."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

from support import ensure_applied, names, seed_data

PREFIX = "ai-social-media-taskcat"
TABLE = "media-selection-sessions-taskcat"


def run(local_aws, *command, timeout=600):
    return subprocess.run(list(command), capture_output=True, text=True, env=local_aws, cwd=ROOT, timeout=timeout)


def taskcat_leftovers(boto) -> list[str]:
    cfn, s3, dynamodb = boto("cloudformation"), boto("s3"), boto("dynamodb")
    found = [s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackName"].startswith(PREFIX)]
    found += [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith((PREFIX, "tcat-"))]
    found += [t for t in dynamodb.list_tables()["TableNames"] if t == TABLE]
    found += [p["name"] for p in boto("codepipeline").list_pipelines()["pipelines"] if p["name"].startswith(PREFIX)]
    return found


def test_taskcat_refuses_an_environment_that_is_not_its_own(local_aws, boto):
    before = [s["StackName"] for s in boto("cloudformation").describe_stacks()["Stacks"]]
    for command in (["./ci/taskcat.sh", "--local", "--env", "dev"],
                    [sys.executable, "ci/taskcat_cleanup.py", "--env", "dev", "--local"]):
        result = run(local_aws, *command)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "environment 'dev' is not taskcat's" in lines[0], result.stderr
    assert [s["StackName"] for s in boto("cloudformation").describe_stacks()["Stacks"]] == before


def test_taskcat_runs_every_test_and_leaves_nothing_and_dev_untouched(local_aws, boto):
    ensure_applied(local_aws)
    intact = seed_data(boto)
    cfn = boto("cloudformation")
    dev = {s["StackName"]: (s["StackStatus"], s.get("LastUpdatedTime") or s["CreationTime"]) for s in cfn.describe_stacks()["Stacks"]}
    assert set(names().values()) <= set(dev)

    result = run(local_aws, "./ci/taskcat.sh", "--local", "--env", "taskcat", "--minimal-output")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "taskcat: test run passed (exit 0)" in output
    # created in wave order, deleted in reverse: the launcher held what imports from the rest
    assert f"create {PREFIX}-operations waits for" in output and f"delete {PREFIX}-frontend waits for" in output
    # taskcat's report: one row per test of .taskcat.yml, every one CREATE_COMPLETE
    report = (ROOT / "taskcat_outputs" / "index.html").read_text()
    tests = re.findall(r"^  ([a-z-]+):\n    template:", (ROOT / ".taskcat.yml").read_text(), re.M)
    stateless = [key for key in names() if key != "storage"]
    assert sorted(tests) == sorted(stateless) and report.count("CREATE_COMPLETE") == len(tests), report[-2000:]
    for test in tests:
        assert f"{PREFIX}-{test}" in report
    operations_log = (ROOT / "taskcat_outputs" / f"{PREFIX}-operations-us-east-1-cfnlogs.txt").read_text()
    assert "MetricStream" in operations_log  # taskcat's environment archives metrics: the metric stream was created
    # the storage stack went last, its ledger named what it retained, the cleanup removed it
    assert "retained: 7 resource(s) left behind" in output
    assert "cleanup: nothing of taskcat's environment is left" in output
    assert taskcat_leftovers(boto) == []
    # dev: every stack as it was, its data intact
    after = {s["StackName"]: (s["StackStatus"], s.get("LastUpdatedTime") or s["CreationTime"]) for s in cfn.describe_stacks()["Stacks"]}
    assert after == dev
    intact()


def test_cleanup_leaves_alone_what_its_environment_did_not_tag(local_aws, boto):
    s3 = boto("s3")
    bucket = f"{PREFIX}-uploads-000000000000"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="someone-elses.txt", Body=b"not taskcat's")
    try:
        result = run(local_aws, sys.executable, "ci/taskcat_cleanup.py", "--env", "taskcat", "--local")
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"cleanup: bucket {bucket}: LEFT ALONE: not tagged environment=taskcat" in result.stdout
        assert s3.get_object(Bucket=bucket, Key="someone-elses.txt")["Body"].read() == b"not taskcat's"
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "project", "Value": "ai-social-media"},
                                                                 {"Key": "environment", "Value": "taskcat"}]})
        result = run(local_aws, sys.executable, "ci/taskcat_cleanup.py", "--env", "taskcat", "--local")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"cleanup: bucket {bucket}: emptied (1 objects and versions) and deleted" in result.stdout
    finally:
        if bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)
    assert taskcat_leftovers(boto) == []
