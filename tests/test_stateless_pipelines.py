"""The backend and frontend pipelines: CodePipeline V2 + CodeBuild on the storage stack's
artifact buckets, least-privilege roles, hardened build projects."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, load_template
from stateless_support import (as_list, env_dir_with, iam_problems, is_import, is_under_import, literal_physical_names, load,
                               policy_statements, props, render, repo_file, resources_of)
from tooling.render import environment

ENVS = ("dev", "prod")
KEYS = ("backend-pipeline", "frontend-pipeline")
ARTIFACTS = {"backend-pipeline": "BackendArtifactsBucket", "frontend-pipeline": "FrontendArtifactsBucket"}
PROJECTS = {"backend-pipeline": {"BuildProject": "BuildRole", "DeployProject": "DeployRole"},
            "frontend-pipeline": {"PublishProject": "PublishRole"}}
CONNECTION = "arn:aws:codeconnections:us-east-1:123456789012:connection/5c0b4e8a-2f7d-4e61-9a3b-7d2c1e0f9a8b"
AWS_MANAGED_S3_KEY = {"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:alias/aws/s3"}


@pytest.fixture(scope="module")
def pipelines(rendered):
    return {(env, key): load_template(*rendered[env], key) for env in ENVS for key in KEYS}


@pytest.fixture(scope="module")
def with_connection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("connection")
    out, _ = render(tmp, "dev", env_dir=env_dir_with(tmp, {"dev": {"connection_arn": f'"{CONNECTION}"'}}))
    return {key: load(out, key) for key in KEYS}


def pipeline(template):
    (logical_id,) = resources_of(template, "AWS::CodePipeline::Pipeline")
    return props(template, logical_id)


def commands(buildspec: str) -> list[str]:
    """Every command of a buildspec, in order (parsing it proves it is valid YAML)."""
    phases = yaml.safe_load(buildspec)["phases"]
    return [command.strip() for phase in phases.values() for command in phase.get("commands", [])]


def source_action(template):
    (stage, *_) = pipeline(template)["Stages"]
    (action,) = stage["Actions"]
    return action


def test_pipelines_are_v2_on_the_imported_artifact_bucket_and_create_no_bucket(pipelines, rendered):
    for (env, key), template in pipelines.items():
        assert template["Metadata"]["StackRole"] == "stateless"
        config = pipeline(template)
        assert config["PipelineType"] == "V2"
        assert config["Name"] == f"ai-social-media-{env}-{key.split('-')[0]}"
        store = config["ArtifactStore"]
        assert is_import(store["Location"], "StorageStackName", f"{ARTIFACTS[key]}Name")
        assert store["EncryptionKey"] == {"Type": "KMS", "Id": AWS_MANAGED_S3_KEY}
        kinds = {r["Type"] for r in template["Resources"].values()}
        assert "AWS::S3::Bucket" not in kinds and "AWS::CodeStarConnections::Connection" not in kinds
        assert literal_physical_names(rendered[env][0], rendered[env][1], [key]) == []


def test_without_a_connection_the_source_is_the_s3_object(pipelines):
    for (env, key), template in pipelines.items():
        action = source_action(template)
        assert action["ActionTypeId"]["Provider"] == "S3"
        assert is_import(action["Configuration"]["S3Bucket"], "StorageStackName", f"{ARTIFACTS[key]}Name")
        assert action["Configuration"]["S3ObjectKey"] == environment.load(env)["pipelines"]["source_object_key"]
        assert action["Configuration"]["PollForSourceChanges"] is False
        assert not any("UseConnection" in str(s["Action"]) for _, s in policy_statements(template))


def test_a_new_source_object_starts_the_pipeline_through_eventbridge(pipelines, rendered):
    """Not polling: CodePipeline turns polling off on a pipeline inactive for 30 days, after
    which a new source object would start nothing."""
    for (env, key), template in pipelines.items():
        pipeline_arn = {"Fn::Sub": "arn:${AWS::Partition}:codepipeline:${AWS::Region}:${AWS::AccountId}:${Pipeline}"}
        rule = props(template, "SourceChangedRule")
        assert rule["State"] == "ENABLED"
        pattern = rule["EventPattern"]
        assert (pattern["source"], pattern["detail-type"]) == (["aws.s3"], ["Object Created"])
        (bucket,) = pattern["detail"]["bucket"]["name"]
        assert is_import(bucket, "StorageStackName", f"{ARTIFACTS[key]}Name")
        assert pattern["detail"]["object"]["key"] == [environment.load(env)["pipelines"]["source_object_key"]]
        (target,) = rule["Targets"]
        assert target["Arn"] == pipeline_arn and target["RoleArn"] == {"Fn::GetAtt": ["SourceChangedRole", "Arn"]}
        role = props(template, "SourceChangedRole")
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "events.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        (start,) = role["Policies"][0]["PolicyDocument"]["Statement"]
        assert (start["Action"], start["Resource"]) == ("codepipeline:StartPipelineExecution", pipeline_arn)
        # the storage stack sends the artifacts bucket's object events to EventBridge
        storage = load_template(*rendered[env], "storage")["Resources"][ARTIFACTS[key]]["Properties"]
        assert storage["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_with_a_connection_no_rule_starts_the_pipeline(with_connection):
    for template in with_connection.values():
        assert resources_of(template, "AWS::Events::Rule") == {}
        assert "SourceChangedRole" not in template["Resources"]


def test_with_a_connection_the_source_is_the_repository(with_connection):
    dev = environment.load("dev")["pipelines"]
    for key, template in with_connection.items():
        action = source_action(template)
        assert action["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
        config = action["Configuration"]
        assert (config["ConnectionArn"], config["FullRepositoryId"], config["BranchName"]) == (CONNECTION, dev["repository"], dev["branch"])
        uses = [s for role, s in policy_statements(template) if role == "PipelineRole" and "codestar-connections:UseConnection" in s["Action"]]
        assert [s["Resource"] for s in uses] == [CONNECTION]


def test_backend_pipeline_builds_then_deploys_backend_and_webhook(pipelines):
    template = pipelines[("dev", "backend-pipeline")]
    stages = pipeline(template)["Stages"]
    assert [s["Name"] for s in stages] == ["Source", "Build", "Deploy"]
    assert [a["Configuration"]["ProjectName"] for s in stages[1:] for a in s["Actions"]] == [{"Ref": "BuildProject"}, {"Ref": "DeployProject"}]
    assert props(template, "BuildProject")["Source"]["BuildSpec"] == "ci/buildspec-backend.yml"
    build = commands(repo_file("ci/buildspec-backend.yml"))
    assert build[:3] == ["chmod +x ci/*.sh", "bash ci/setup.sh", "bash ci/test.sh --unit"]
    assert build[3].endswith('render.py --env "$ENV_NAME" --account-id "$AWS_ACCOUNT_ID"')
    deploy = commands(props(template, "DeployProject")["Source"]["BuildSpec"])
    # deploy.py with its check and gates, through the CloudFormation execution role; no bare sam deploy
    assert deploy[-1] == '.venv/bin/python deploy.py apply --env "$ENV_NAME" --only backend webhook --role-arn "$EXECUTION_ROLE_ARN"'
    assert not any("sam deploy" in c for c in deploy)
    variables = {v["Name"]: v["Value"] for v in props(template, "DeployProject")["Environment"]["EnvironmentVariables"]}
    assert variables == {"ENV_NAME": "dev", "EXECUTION_ROLE_ARN": {"Fn::GetAtt": ["ExecutionRole", "Arn"]}}


def test_deploy_role_reaches_only_the_backend_and_webhook_stacks(pipelines):
    for env in ENVS:
        statements = dict((s["Sid"], s) for role, s in policy_statements(pipelines[(env, "backend-pipeline")]) if role == "DeployRole")
        stacks = statements["ChangeSetsOfTheTwoStacks"]
        assert all(a.startswith("cloudformation:") for a in stacks["Action"])
        assert stacks["Resource"] == [
            {"Fn::Sub": f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:stack/ai-social-media-{env}-{name}/*"}
            for name in ("backend", "webhook")]
        # on "*" only the reads of deploy.py's check, and ValidateTemplate, which changes nothing
        reads = statements["CheckReadsStacksAndExports"]
        assert reads["Resource"] == "*"
        assert all(a.split(":")[1].startswith(("Describe", "List", "Validate")) for a in reads["Action"])
        writes = {a for s in statements.values() for a in as_list(s["Action"])
                  if a.startswith("cloudformation:") and not a.split(":")[1].startswith(("Describe", "List", "Get", "Validate"))}
        assert all(a in stacks["Action"] or (a == "cloudformation:CreateChangeSet" and "SamTransform" in statements) for a in writes)
        # it creates nothing itself: CloudFormation does, with the execution role
        assert not any(a.startswith(("iam:", "apigateway:", "lambda:Create", "lambda:Update", "logs:CreateLogGroup", "logs:Delete"))
                       for s in statements.values() for a in as_list(s["Action"]) if a != "iam:PassRole")
        assert statements["PassOnlyTheExecutionRoleToCloudFormation"]["Condition"] == {
            "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
        execution = dict((s["Sid"], s) for role, s in policy_statements(pipelines[(env, "backend-pipeline")]) if role == "ExecutionRole")
        assert execution["PassFunctionRolesToLambdaOnly"]["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}


def test_frontend_pipeline_publishes_to_the_imported_bucket_and_distribution(pipelines):
    for env in ENVS:
        template = pipelines[(env, "frontend-pipeline")]
        assert template["Parameters"]["FrontendStackName"]["Default"] == f"ai-social-media-{env}-frontend"
        project = props(template, "PublishProject")
        assert project["Source"]["BuildSpec"] == "ci/buildspec-frontend.yml"
        variables = {v["Name"]: v for v in project["Environment"]["EnvironmentVariables"]}
        assert is_import(variables["FRONTEND_BUCKET"]["Value"], "StorageStackName", "FrontendBucketName")
        assert is_import(variables["DISTRIBUTION_ID"]["Value"], "FrontendStackName", "DistributionId")
        # the page reads its API's address from /config.json: the build writes it from the backend's export
        assert is_import(variables["API_BASE"]["Value"], "BackendStackName", "HttpApiEndpoint")
        assert all(v.get("Type", "PLAINTEXT") == "PLAINTEXT" for v in variables.values())
        statements = {s["Sid"]: s for role, s in policy_statements(template) if role == "PublishRole"}
        assert is_under_import(statements["SyncSite"]["Resource"], "/*", "StorageStackName", "FrontendBucketArn")
        assert "s3:DeleteObject" in statements["SyncSite"]["Action"]
        assert is_import(statements["Invalidate"]["Resource"], "FrontendStackName", "DistributionArn")
    publish = commands(repo_file("ci/buildspec-frontend.yml"))
    assert any(c.startswith('aws s3 sync dist/ "s3://${FRONTEND_BUCKET}/" --delete') for c in publish)
    assert any('create-invalidation --distribution-id "$DISTRIBUTION_ID"' in c for c in publish)
    config = publish.index(next(c for c in publish if "dist/config.json" in c))
    assert publish[config].strip() == """printf '{"apiBase": "%s"}\\n' "$API_BASE" > dist/config.json"""
    assert publish[config - 1].startswith('test -n "$API_BASE"')  # no address, no publish
    assert config < publish.index(next(c for c in publish if c.startswith("aws s3 sync")))  # written before the sync
    assert 'fetch("/config.json"' in repo_file("app/frontend/app.js")
    assert "__VERSION__" in repo_file("app/frontend/index.html")


def test_build_projects_are_unprivileged_logged_encrypted_and_bounded(pipelines):
    for (env, key), template in pipelines.items():
        retention = environment.load(env)["operations"]["log_retention_days"]
        assert set(resources_of(template, "AWS::CodeBuild::Project")) == set(PROJECTS[key])
        for project_id, role_id in PROJECTS[key].items():
            project = props(template, project_id)
            assert project["Environment"]["PrivilegedMode"] is False
            assert project["EncryptionKey"] == "alias/aws/s3"
            assert 5 <= project["TimeoutInMinutes"] <= 60
            assert project["ServiceRole"] == {"Fn::GetAtt": [role_id, "Arn"]}
            logs = project["LogsConfig"]["CloudWatchLogs"]
            assert logs["Status"] == "ENABLED"
            group = props(template, logs["GroupName"]["Ref"])
            assert group["RetentionInDays"] == retention
            assert group["LogGroupName"] == f"/aws/codebuild/{project['Name']}"
            for variable in project["Environment"].get("EnvironmentVariables", []):
                assert variable.get("Type", "PLAINTEXT") in ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER")


def test_one_role_per_pipeline_and_project_each_trusting_its_service(pipelines):
    services = {"PipelineRole": "codepipeline.amazonaws.com", "SourceChangedRole": "events.amazonaws.com",
                "ExecutionRole": "cloudformation.amazonaws.com"}
    for (env, key), template in pipelines.items():
        roles = resources_of(template, "AWS::IAM::Role")
        execution = {"ExecutionRole"} if key == "backend-pipeline" else set()
        assert set(roles) == {"PipelineRole", "SourceChangedRole", *PROJECTS[key].values(), *execution}
        for role_id, role in roles.items():
            (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            assert trust["Principal"] == {"Service": services.get(role_id, "codebuild.amazonaws.com")}
        assert iam_problems(key, template, f"ai-social-media-{env}") == []


def test_iam_check_catches_what_it_forbids():
    template = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::x/*"},
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
        ]}}]}}}}
    problems = iam_problems("backend-pipeline", template, "ai-social-media-dev")
    assert len(problems) == 5, problems  # wildcard action, two writes on * (PutObject, PassRole), PassRole on *, trust


def test_pipelines_export_their_names(pipelines, rendered):
    for env in ENVS:
        for key, output in (("backend-pipeline", "BackendPipelineName"), ("frontend-pipeline", "FrontendPipelineName")):
            outputs = pipelines[(env, key)]["Outputs"]
            assert outputs == {output: {"Value": {"Ref": "Pipeline"}, "Export": {"Name": {"Fn::Sub": f"${{AWS::StackName}}-{output}"}}}}
            stack = next(s for s in rendered[env][1]["stacks"] if s["key"] == key)
            assert stack["exports"] == [f"ai-social-media-{env}-{key}-{output}"]


def run_commands(lines: list[str], folder, env: dict | None = None) -> subprocess.CompletedProcess:
    """Buildspec commands as CodeBuild runs them (version 0.2): one bash, in order, stopping at the first failure."""
    script = "set -e\n" + "\n".join(lines) + "\n"
    return subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_buildspecs_run_the_scripts_of_a_zip_that_kept_no_execute_bits(pipelines, tmp_path):
    """CodePipeline and CodeBuild hand the source on as a zip, which keeps no execute bits.
    Each script here stands in for the real one and records how it was called."""
    (tmp_path / "ci").mkdir()
    for script in (ROOT / "ci").glob("*.sh"):
        copy = tmp_path / "ci" / script.name
        copy.write_text('#!/usr/bin/env bash\necho "$(basename "$0") $*" >> calls.log\n')
        copy.chmod(0o644)
    build = [c for c in commands(repo_file("ci/buildspec-backend.yml")) if "ci/" in c]
    deploy = [c for c in commands(props(pipelines[("dev", "backend-pipeline")], "DeployProject")["Source"]["BuildSpec"]) if "ci/" in c]
    for lines, calls in ((build, ["setup.sh", "test.sh --unit"]), (deploy, ["setup.sh project", "setup.sh sam"])):
        (tmp_path / "calls.log").unlink(missing_ok=True)
        done = run_commands(lines, tmp_path)
        assert done.returncode == 0, done.stderr
        assert [line.strip() for line in (tmp_path / "calls.log").read_text().splitlines()] == calls
    # ci/test.sh calls ./ci/setup.sh and ./ci/lint.sh itself: the build restored their bits first
    assert all(os.access(script, os.X_OK) for script in (tmp_path / "ci").glob("*.sh"))


@pytest.mark.parametrize("version", ["3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo", "null", "a/b|c&d"])
def test_frontend_build_stamps_any_s3_version_id(tmp_path, version):
    """The stamp of buildspec-frontend.yml, run up to the publishing (which needs AWS)."""
    shutil.copytree(ROOT / "app" / "frontend", tmp_path / "app" / "frontend")
    publish = commands(repo_file("ci/buildspec-frontend.yml"))
    build = publish[:next(i for i, c in enumerate(publish) if c.startswith("aws "))]
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    done = run_commands(build, tmp_path, {"CODEBUILD_RESOLVED_SOURCE_VERSION": version, "API_BASE": api})
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "dist" / "config.json").read_text()) == {"apiBase": api}
    assert run_commands(build, tmp_path, {"CODEBUILD_RESOLVED_SOURCE_VERSION": version}).returncode != 0  # no API, no build
    page = (tmp_path / "dist" / "index.html").read_text()
    assert f'<span id="version">{version}</span>' in page and "__VERSION__" not in page
    assert json.loads((tmp_path / "dist" / "version.json").read_text())["version"] == version
