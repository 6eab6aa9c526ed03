"""The safety promises, on the local AWS, where they hold on AWS's own terms:

6. the stateful gate runs in every updatable state, UPDATE_ROLLBACK_COMPLETE included
7. replacement is decided by the resource schema: a change the emulator flags as a
   conditional replacement, but that AWS updates in place, is not refused
8. every fix check prints is run as printed, to the end
9. `check --json | head` ends quietly; the samconfig path (render.py, then sam deploy
   --config-env KEY) deploys a stack, and deploy.py takes that stack over

Each test starts from a full apply and leaves one behind."""
from __future__ import annotations

import shlex
import subprocess
import sys

from conftest import ROOT, mark_stale, run_deploy
from support import (ENV, delete_with_dependents, deploy_json, edit_file, ensure_applied, names, printed_commands, run_printed,
                     seed_data, stack_state)

KEY_CHANGE = ("AttributeName: sessionId", "AttributeName: mediaSessionId")
FAIL_STORAGE_UPDATE = ("\nResources:\n", "\nResources:\n"
                       "  InjectedFailureHandle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n"
                       "  InjectedFailure:\n    Type: AWS::CloudFormation::WaitCondition\n"
                       "    Properties:\n      Handle: !Ref InjectedFailureHandle\n      Timeout: \"1\"\n      Count: 1\n")


# --- 6. the gate after a failed storage update --------------------------------------------

def test_6_the_stateful_gate_runs_in_update_rollback_complete(local_aws, boto, variant):
    ensure_applied(local_aws)
    cfn = boto("cloudformation")
    intact = seed_data(boto)
    variant(lambda t: edit_file(t / "storage.yaml.j2", *FAIL_STORAGE_UPDATE))
    failed, _ = deploy_json(local_aws, "apply", "--only", "storage")
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert stack_state(cfn, names()["storage"])[0] == "UPDATE_ROLLBACK_COMPLETE"

    variant(lambda t: (t / "storage.yaml.j2").write_text((t / "storage.yaml.j2").read_text().replace(*KEY_CHANGE)))
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3, checked.stderr[-2000:]
    assert report["states"]["storage"] == "UPDATE_ROLLBACK_COMPLETE"
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [("stateful-change", "AWS::DynamoDB::Table SessionsTable")]
    assert "KeySchema" in report["findings"][0]["detail"] and report["findings"][0]["override"] is None
    refused = run_deploy(local_aws, "apply", "--env", ENV, "--local")
    assert refused.returncode == 3 and "SessionsTable" in refused.stdout
    assert stack_state(cfn, names()["storage"])[0] == "UPDATE_ROLLBACK_COMPLETE"
    intact()
    mark_stale()  # the real render is what the rollback restored: nothing to deploy, nothing blocks
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["findings"] == [] and report["stacks_to_deploy"] == []
    ensure_applied(local_aws)


# --- 7. the schema decides -----------------------------------------------------------------

def test_7_an_in_place_bucket_change_is_not_refused_though_the_emulator_flags_it(local_aws, boto, variant):
    ensure_applied(local_aws)
    intact = seed_data(boto)
    # The media bucket's access logs go under another prefix: an in-place update on AWS
    # (LoggingConfiguration is not createOnly in the AWS::S3::Bucket schema).
    variant(lambda t: edit_file(t / "storage.yaml.j2", "LogFilePrefix: s3-access/", "LogFilePrefix: s3-access-v2/"))
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert report["findings"] == []
    said = report["change_sets"]["storage"]
    assert said["outcome"] == "ready"
    for note in said["schema_notes"]:  # where the emulator flags a replacement, the schema overrules it, out loud
        assert note["schema"] == "none" and "the schema decides" in note["text"]
    applied, summary = deploy_json(local_aws, "apply")
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert next(s for s in summary["stacks"] if s["key"] == "storage")["result"] == "deployed"
    intact()
    mark_stale()
    ensure_applied(local_aws)


# --- 8. printed fixes, followed to the end -----------------------------------------------------

def test_8a_the_export_fix_runs_as_printed(local_aws, boto, variant):
    """storage drops an export whose only importer (frontend) no longer needs it: check
    prints 'deploy the importers first: <command>; then deploy storage'. frontend's new
    render also changes its distribution's comment: the emulator compares resolved
    values and would call an import swapped for the same literal value "no changes"
    (AWS takes the new template either way)."""
    ensure_applied(local_aws)
    domain = "{{ names.buckets.frontend }}.s3.${AWS::Region}.amazonaws.com"

    def drop_export(templates):
        edit_file(templates / "storage.yaml.j2", '      ("FrontendBucketRegionalDomainName", "!GetAtt FrontendBucket.RegionalDomainName"),\n', "")
        frontend = templates / "stateless" / "frontend.yaml.j2"
        edit_file(frontend, 'Fn::ImportValue: !Sub "${StorageStackName}-FrontendBucketRegionalDomainName"', f'!Sub "{domain}"')
        edit_file(frontend, "Comment: ai-social-media {{ env.name }} frontend", "Comment: ai-social-media {{ env.name }} frontend, v2")
    variant(drop_export)
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    [finding] = [f for f in report["findings"] if f["kind"] == "export-in-use"]
    assert finding["subject"].endswith("-FrontendBucketRegionalDomainName")
    assert "python deploy.py apply --only frontend --env dev --local" in finding["fix"]
    first = run_printed(local_aws, printed_commands(finding["fix"], "python deploy.py")[0])
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    then = run_deploy(local_aws, "apply", "--env", ENV, "--local")  # "then deploy storage": the whole render
    assert then.returncode == 0, then.stdout[-3000:]
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["findings"] == []
    mark_stale()
    ensure_applied(local_aws)


def test_8b_the_orphan_fix_of_a_stateless_stack_runs_as_printed(local_aws, boto):
    ensure_applied(local_aws)
    cfn, logs = boto("cloudformation"), boto("logs")
    delete_with_dependents(cfn, "webhook")  # operations imports from it
    log_group = "/aws/lambda/ai-social-media-dev-webhook"  # WebhookLogGroup's name in the render
    logs.create_log_group(logGroupName=log_group)
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 3
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"]) == ("orphan", f"AWS::Logs::LogGroup {log_group}")
    assert finding["override"] == "--allow-orphans"
    fixed = run_printed(local_aws, printed_commands(finding["fix"], "python deploy.py")[0])
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-2000:]
    assert f"OVERRIDDEN by --allow-orphans: [orphan] webhook: AWS::Logs::LogGroup {log_group}" in fixed.stdout
    owner = cfn.describe_stack_resource(StackName=names()["webhook"], LogicalResourceId="WebhookLogGroup")
    assert owner["StackResourceDetail"]["PhysicalResourceId"] == log_group
    checked, report = deploy_json(local_aws, "check")
    assert checked.returncode == 0 and report["findings"] == []


# --- 9. small promises ---------------------------------------------------------------------------

def test_9a_check_json_into_a_closed_pipe_is_quiet(local_aws):
    command = f"{shlex.quote(sys.executable)} deploy.py check --env {ENV} --local --json | head -c 20"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=local_aws, cwd=ROOT, timeout=300)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.stdout.startswith("{")


def test_9b_a_stack_deployed_with_sam_and_samconfig_is_taken_over_by_deploy_py(local_aws, tmp_path):
    """The documented by-hand path: render.py, then `sam deploy --config-env KEY` from the
    repository root; then deploy.py treats that stack as deployed (its own account here)."""
    account = "444455556666"
    env = {**local_aws, "AWS_ACCESS_KEY_ID": account}
    out = ROOT / "build" / "samconfig-e2e"
    rendered = subprocess.run([sys.executable, "render.py", "--env", ENV, "--account-id", account, "--region", "us-east-1",
                               "--out", str(out), "-q"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    sam = subprocess.run([str(ROOT / ".tools" / "sam" / "bin" / "sam"), "deploy", "--config-file", str(out / "samconfig.toml"),
                          "--config-env", "storage", "--no-progressbar"],
                         capture_output=True, text=True, env={**env, "SAM_CLI_POLL_DELAY": "1"}, cwd=ROOT, timeout=600)
    assert sam.returncode == 0, sam.stdout[-2000:] + sam.stderr[-2000:]
    import boto3

    cfn = boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id=account, aws_secret_access_key="test")
    stack = cfn.describe_stacks(StackName="ai-social-media-dev-storage")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {t["Key"]: t["Value"] for t in stack["Tags"]} == {"project": "ai-social-media", "environment": ENV, "stack": "storage"}
    # deploy.py on the same account: storage is deployed (no fingerprint yet), goes through the gate, then is protected
    mark_stale()  # the local render is for the session's account: render for this one
    try:
        applied = subprocess.run([sys.executable, "deploy.py", "apply", "--env", ENV, "--local", "--only", "storage", "--json"],
                                 capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    finally:
        mark_stale()
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert "1 stack(s) differ from what is deployed: storage" in applied.stderr
    assert cfn.describe_stacks(StackName="ai-social-media-dev-storage")["Stacks"][0]["EnableTerminationProtection"] is True
