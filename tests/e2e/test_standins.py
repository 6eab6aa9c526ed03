"""The stand-ins (tooling/aws/standins) keep their promises, on the session's emulator:
they refuse what CloudFormation refuses (the registry schema) and what names a
resource the local AWS does not have, answer Ref and Fn::GetAtt as AWS documents,
and the API they stand in for reads back what they created."""
from __future__ import annotations

import json
import time

import pytest

from support import ensure_applied, manifest, names

ACCOUNT, REGION = "000000000000", "us-east-1"
ROLE = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"},
                                            "Action": "sts:AssumeRole"}]}}}
BUCKET = {"Type": "AWS::S3::Bucket"}


def pipeline(name: str, stages: list | None = None, **extra) -> dict:
    return {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
        "Name": name, "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
        "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Bucket"}},
        "Stages": stages or [
            {"Name": "Source", "Actions": [{"Name": "Source", "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
                                            "Configuration": {"S3Bucket": {"Ref": "Bucket"}, "S3ObjectKey": "source.zip"},
                                            "OutputArtifacts": [{"Name": "Src"}]}]},
            {"Name": "Deploy", "Actions": [{"Name": "Copy", "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": "1"},
                                            "Configuration": {"BucketName": {"Ref": "Bucket"}, "Extract": "true"},
                                            "InputArtifacts": [{"Name": "Src"}]}]}],
        **extra}}


def deploy(cfn, name: str, resources: dict, outputs: dict | None = None, update: bool = False) -> dict:
    """Create (or update) a stack and wait for its end: the stack, with its events."""
    body = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs or {}})
    (cfn.update_stack if update else cfn.create_stack)(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    for _ in range(240):
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            stack["events"] = cfn.describe_stack_events(StackName=name)["StackEvents"]
            return stack
        time.sleep(0.25)
    raise AssertionError(f"{name} did not finish")


def remove(cfn, name: str) -> None:
    cfn.delete_stack(StackName=name)
    for _ in range(240):
        if not [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == name]:
            return
        time.sleep(0.25)
    raise AssertionError(f"{name} was not deleted")


def failure(stack: dict) -> tuple[str, str]:
    failed = [e for e in stack["events"] if e["ResourceStatus"].endswith("_FAILED") and e["LogicalResourceId"] != stack["StackName"]]
    assert failed, [(e["LogicalResourceId"], e["ResourceStatus"]) for e in stack["events"]]
    return failed[-1]["LogicalResourceId"], failed[-1].get("ResourceStatusReason", "")


def test_pipeline_answers_ref_and_getatt_and_its_version_follows_updates(local_aws, boto):
    cfn, codepipeline = boto("cloudformation"), boto("codepipeline")
    outputs = {"Name": {"Value": {"Ref": "Pipeline"}}, "Version": {"Value": {"Fn::GetAtt": ["Pipeline", "Version"]}},
               "Arn": {"Value": {"Fn::GetAtt": ["Pipeline", "Arn"]}}, "Role": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}}}
    stack = deploy(cfn, "standin-pipeline", {"Role": ROLE, "Bucket": BUCKET, "Pipeline": pipeline("standin-pipeline")}, outputs)
    try:
        assert stack["StackStatus"] == "CREATE_COMPLETE", failure(stack)
        out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert (out["Name"], out["Version"]) == ("standin-pipeline", "1")
        assert out["Arn"] == f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:standin-pipeline"
        declared = codepipeline.get_pipeline(name="standin-pipeline")
        assert declared["pipeline"]["roleArn"] == out["Role"] and declared["pipeline"]["version"] == 1
        assert [s["name"] for s in declared["pipeline"]["stages"]] == ["Source", "Deploy"]
        assert declared["metadata"]["pipelineArn"] == out["Arn"]

        renamed = pipeline("standin-pipeline")
        renamed["Properties"]["Stages"][1]["Name"] = "Publish"
        stack = deploy(cfn, "standin-pipeline", {"Role": ROLE, "Bucket": BUCKET, "Pipeline": renamed}, outputs, update=True)
        assert stack["StackStatus"] == "UPDATE_COMPLETE", failure(stack)
        assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["Version"] == "2"
        assert codepipeline.get_pipeline(name="standin-pipeline")["pipeline"]["version"] == 2
    finally:
        remove(cfn, "standin-pipeline")
    with pytest.raises(codepipeline.exceptions.PipelineNotFoundException):
        codepipeline.get_pipeline(name="standin-pipeline")


def stages_with_missing_project():
    stages = pipeline("x")["Properties"]["Stages"]
    stages[1]["Actions"][0]["ActionTypeId"] = {"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild", "Version": "1"}
    stages[1]["Actions"][0]["Configuration"] = {"ProjectName": "standin-no-such-project"}
    return stages


def stages_with_unproduced_input():
    stages = pipeline("x")["Properties"]["Stages"]
    stages[1]["Actions"][0]["InputArtifacts"] = [{"Name": "Built"}]
    return stages


REFUSED = {
    "missing role": ({"Bucket": BUCKET, "Pipeline": {**pipeline("standin-refused"), "Properties": {
        **pipeline("standin-refused")["Properties"], "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/standin-no-such-role"}}},
        "Pipeline", f"RoleArn arn:aws:iam::{ACCOUNT}:role/standin-no-such-role: no such IAM role in the local AWS"),
    "schema: stages and enum": ({"Role": ROLE, "Bucket": BUCKET, "Pipeline": pipeline(
        "standin-refused", stages=pipeline("x")["Properties"]["Stages"][:1], ExecutionMode="SOMETIMES")},
        "Pipeline", "Properties validation failed for resource Pipeline with message: #/ExecutionMode: 'SOMETIMES' is not one of"),
    "schema: read-only property": ({"Role": ROLE, "Bucket": BUCKET, "Pipeline": pipeline("standin-refused", Version="3")},
                                   "Pipeline", "#/Version: is read-only"),
    "missing CodeBuild project": ({"Role": ROLE, "Bucket": BUCKET, "Pipeline": pipeline("standin-refused", stages=stages_with_missing_project())},
                                  "Pipeline", "Deploy.Copy.Configuration.ProjectName standin-no-such-project: no such CodeBuild project"),
    "input artifact nobody produces": ({"Role": ROLE, "Bucket": BUCKET, "Pipeline": pipeline("standin-refused", stages=stages_with_unproduced_input())},
                                       "Pipeline", "Deploy.Copy: input artifact Built is not the output of an earlier action"),
    "delivery destination to a missing bucket": ({"Destination": {"Type": "AWS::Logs::DeliveryDestination", "Properties": {
        "Name": "standin-refused", "DestinationResourceArn": "arn:aws:s3:::standin-no-such-bucket/logs"}}},
        "Destination", "DestinationResourceArn standin-no-such-bucket: no such S3 bucket in the local AWS"),
    "delivery source of a missing distribution": ({"Source": {"Type": "AWS::Logs::DeliverySource", "Properties": {
        "Name": "standin-refused", "LogType": "ACCESS_LOGS", "ResourceArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/ENOSUCH"}}},
        "Source", "no such CloudFront distribution in the local AWS"),
    "delivery of a missing source": ({"Bucket": BUCKET, "Destination": {"Type": "AWS::Logs::DeliveryDestination", "Properties": {
        "Name": "standin-refused", "DestinationResourceArn": {"Fn::GetAtt": ["Bucket", "Arn"]}}},
        "Delivery": {"Type": "AWS::Logs::Delivery", "Properties": {
            "DeliverySourceName": "standin-no-such-source", "DeliveryDestinationArn": {"Fn::GetAtt": ["Destination", "Arn"]}}}},
        "Delivery", "Delivery source does not exist: standin-no-such-source"),
    "metric stream into a missing delivery stream": ({"Role": ROLE, "Stream": {"Type": "AWS::CloudWatch::MetricStream", "Properties": {
        "OutputFormat": "json", "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
        "FirehoseArn": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/standin-no-such-stream"}}},
        "Stream", "no such Firehose delivery stream in the local AWS"),
    "metric math alarm returning two series": ({"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmName": "standin-refused", "ComparisonOperator": "GreaterThanThreshold", "Threshold": 1, "EvaluationPeriods": 1,
        "Metrics": [{"Id": "a", "Expression": "SUM(METRICS())"}, {"Id": "b", "Expression": "a * 2"}]}}},
        "Alarm", "exactly one query must return data"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_stand_ins_refuse_what_aws_would_refuse(local_aws, boto, case):
    resources, logical_id, reason = REFUSED[case]
    cfn = boto("cloudformation")
    stack = deploy(cfn, "standin-refused", resources)
    try:
        assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
        failed, why = failure(stack)
        assert failed == logical_id and reason in why, why
        assert "(stand-in " in why
    finally:
        remove(cfn, "standin-refused")
    assert "standin-refused" not in [p["name"] for p in boto("codepipeline").list_pipelines()["pipelines"]]
    assert "standin-refused" not in [d["name"] for d in boto("logs").describe_delivery_destinations()["deliveryDestinations"]]


def test_metric_stream_answers_ref_getatt_and_getmetricstream(local_aws, boto):
    cfn, cloudwatch = boto("cloudformation"), boto("cloudwatch")
    firehose_role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}}
    resources = {
        "Role": ROLE, "Bucket": BUCKET, "DeliveryRole": firehose_role,
        "Firehose": {"Type": "AWS::KinesisFirehose::DeliveryStream", "Properties": {
            "DeliveryStreamName": "standin-metrics", "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {"BucketARN": {"Fn::GetAtt": ["Bucket", "Arn"]},
                                                   "RoleARN": {"Fn::GetAtt": ["DeliveryRole", "Arn"]}}}},
        "Stream": {"Type": "AWS::CloudWatch::MetricStream", "Properties": {
            "OutputFormat": "json", "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]}, "FirehoseArn": {"Fn::GetAtt": ["Firehose", "Arn"]},
            "IncludeFilters": [{"Namespace": "AWS/Lambda"}]}}}
    outputs = {"Name": {"Value": {"Ref": "Stream"}}, "Arn": {"Value": {"Fn::GetAtt": ["Stream", "Arn"]}},
               "State": {"Value": {"Fn::GetAtt": ["Stream", "State"]}}}
    stack = deploy(cfn, "standin-metric-stream", resources, outputs)
    try:
        assert stack["StackStatus"] == "CREATE_COMPLETE", failure(stack)
        out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert out["Name"].startswith("standin-metric-stream-Stream-")  # no Name: CloudFormation names it
        assert out["Arn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:metric-stream/{out['Name']}" and out["State"] == "running"
        answer = cloudwatch.get_metric_stream(Name=out["Name"])
        assert answer["FirehoseArn"].endswith(":deliverystream/standin-metrics")
        assert answer["IncludeFilters"] == [{"Namespace": "AWS/Lambda"}]
    finally:
        remove(cfn, "standin-metric-stream")
    assert out["Name"] not in [e["Name"] for e in cloudwatch.list_metric_streams()["Entries"]]


def test_dev_access_logs_are_wired_through_the_emulators_delivery_api(local_aws, boto):
    ensure_applied(local_aws)
    cfn, logs = boto("cloudformation"), boto("logs")
    holder = next(name for name in names().values()  # the stack that holds the frontend's access logs
                  if any(r["LogicalResourceId"] == "AccessLogSource"
                         for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]))
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.list_stack_resources(StackName=holder)["StackResourceSummaries"]}
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    source = logs.get_delivery_source(name=resources["AccessLogSource"])["deliverySource"]
    assert source["resourceArns"] == [exports[f"{names()['frontend']}-DistributionArn"]] and source["service"] == "cloudfront"
    destination = logs.get_delivery_destination(name=resources["AccessLogDestination"])["deliveryDestination"]
    log_archive = manifest()["physical_names"]["buckets"]["log_archive"]
    assert destination["deliveryDestinationConfiguration"]["destinationResourceArn"] == f"arn:aws:s3:::{log_archive}/cloudfront"
    delivery = logs.get_delivery(id=resources["AccessLogDelivery"])["delivery"]
    assert (delivery["deliverySourceName"], delivery["deliveryDestinationArn"]) == (source["name"], destination["arn"])
    assert delivery["id"].isalnum()
