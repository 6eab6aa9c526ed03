"""The backend pipeline's deploy stage, run as CodeBuild runs it: the rendered DeployProject
buildspec's build commands, with the real deploy.py, against the local AWS where dev is
applied. No CodeBuild runs here (the emulator has none): the commands run in one bash, as
CodeBuild's shell does, from the repository with the build stage's render in build/dev.

- a change deploys through deploy.py, every change set naming the CloudFormation execution
  role of the backend-pipeline stack (RoleARN);
- a blocking finding fails the stage (exit 3) with the finding in its log, and changes nothing.
(The emulator does not enforce IAM: that the execution role may create what the stacks
declare, and nothing more, rests on tests/test_iam.py and the cfripper gate.)"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

from conftest import ROOT, mark_stale
from recorder import Recorder
from support import ensure_applied, names, stack_state
from tooling.render import cfn_yaml

BUILD = ROOT / "build" / "dev"   # where the build stage's render lands (ci/buildspec-backend.yml)


def build_stage_render(local_aws, tmp_path, edit=None):
    """What the build stage hands on: render.py of the repository (here with an edit of its templates)."""
    templates = tmp_path / f"templates-{len(list(tmp_path.glob('templates-*')))}"
    shutil.copytree(ROOT / "templates", templates)
    if edit:
        edit(templates)
    done = subprocess.run([sys.executable, "render.py", "--env", "dev", "--account-id", "000000000000", "--region", "us-east-1",
                           "--out", str(BUILD), "--templates-dir", str(templates), "-q"],
                          capture_output=True, text=True, env=local_aws, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


def deploy_stage(local_aws, boto) -> subprocess.CompletedProcess:
    """The DeployProject's build phase as rendered, with the variables the project sets."""
    template = cfn_yaml.load((ROOT / "build" / "local-dev" / "stateless" / "backend-pipeline.yaml").read_text())
    project = template["Resources"]["DeployProject"]["Properties"]
    spec = yaml.safe_load(project["Source"]["BuildSpec"])
    commands = spec["phases"]["build"]["commands"]   # install (ci/setup.sh) is done: ./ci/test.sh ran it
    role_name = boto("cloudformation").describe_stack_resource(
        StackName=names()["backend-pipeline"], LogicalResourceId="ExecutionRole")["StackResourceDetail"]["PhysicalResourceId"]
    role_arn = boto("iam").get_role(RoleName=role_name)["Role"]["Arn"]
    variables = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    assert variables == {"ENV_NAME": "dev", "EXECUTION_ROLE_ARN": {"Fn::GetAtt": ["ExecutionRole", "Arn"]}}
    env = {**local_aws, "ENV_NAME": "dev", "EXECUTION_ROLE_ARN": role_arn, "PATH": os.environ["PATH"]}
    return subprocess.run(["bash", "-c", "set -e\n" + "\n".join(commands) + "\n"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600), role_arn


def test_the_deploy_stage_deploys_through_deploy_py_with_the_execution_role(local_aws, boto, tmp_path):
    ensure_applied(local_aws)
    cfn = boto("cloudformation")
    try:
        build_stage_render(local_aws, tmp_path, lambda t: _edit(t / "stateless" / "backend.yaml.j2", "sessions and uploads API\n",
                                                                 "sessions and uploads API (deployed by its pipeline)\n"))
        # A recording proxy keeps the parameters of every CreateChangeSet (the emulator itself ignores RoleARN).
        with Recorder(local_aws["AWS_ENDPOINT_URL"]) as proxy:
            done, role_arn = deploy_stage({**local_aws, "AWS_ENDPOINT_URL": proxy.endpoint}, boto)
        created = [call["params"] for call in proxy.actions("CreateChangeSet")]
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert "apply: done" in done.stdout
        assert role_arn.startswith("arn:aws:iam::000000000000:role/ai-social-media-dev/cloudformation/")
        assert created and {c["StackName"] for c in created} <= {names()["backend"], names()["webhook"]}
        assert {c.get("RoleARN") for c in created} == {role_arn}
        api = cfn.describe_stack_resource(StackName=names()["backend"], LogicalResourceId="HttpApi")
        assert boto("apigatewayv2").get_api(ApiId=api["StackResourceDetail"]["PhysicalResourceId"])["Description"].endswith(
            "(deployed by its pipeline)")
    finally:
        mark_stale(BUILD)
        mark_stale()


def test_a_blocking_finding_fails_the_stage_with_the_finding_in_its_log(local_aws, boto, tmp_path):
    ensure_applied(local_aws)
    cfn = boto("cloudformation")
    before = {name: stack_state(cfn, name) for name in names().values()}
    try:
        # the backend drops an export operations imports: check refuses before any change
        build_stage_render(local_aws, tmp_path, lambda t: _edit(
            t / "stateless" / "backend.yaml.j2", "  {{ logical_id }}LogGroupName:\n", "  {{ logical_id }}LogGroupNameGone:\n"))
        done, _ = deploy_stage(local_aws, boto)
        assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-2000:]
        assert "export-in-use" in done.stdout and "ai-social-media-dev-backend-CreateUploadUrlLogGroupName" in done.stdout
        assert "apply: refused before any change" in done.stdout
        assert {name: stack_state(cfn, name) for name in before} == before
    finally:
        mark_stale(BUILD)
        mark_stale()
    ensure_applied(local_aws)


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))
