"""The operations stack: alarms and dashboard from one list, thresholds from the
environment files, pipeline failure notices, log and metric archiving through imports."""
from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, load_template
from stateless_support import (as_list, env_dir_with, iam_problems, is_import, is_under_import, literal_physical_names, load,
                               policy_statements, props, render, resources_of)
from tooling.render import environment

ENVS = ("dev", "prod")
BACKEND_FUNCTIONS = {"CreateSession": "create-session", "GetSession": "get-session",
                     "CreateUploadUrl": "create-upload-url", "ListUploads": "list-uploads"}
TOPIC = {"Ref": "AlarmTopic"}


def expected_thresholds(env_name: str, thresholds: dict) -> dict[str, float]:
    """Alarm name -> threshold, written out from the requirements, not from the template."""
    prefix = f"ai-social-media-{env_name}"
    expected = {}
    for slug in [*BACKEND_FUNCTIONS.values(), "webhook"]:
        expected[f"{prefix}-{slug}-errors"] = thresholds["lambda_errors"]
        expected[f"{prefix}-{slug}-throttles"] = thresholds["lambda_throttles"]
        duration = "webhook_duration_p99_ms" if slug == "webhook" else "lambda_duration_p99_ms"
        expected[f"{prefix}-{slug}-duration-p99"] = thresholds[duration]
    expected[f"{prefix}-api-5xx"] = thresholds["api_5xx"]
    expected[f"{prefix}-api-latency-p99"] = thresholds["api_latency_p99_ms"]
    expected[f"{prefix}-dynamodb-throttled-requests"] = thresholds["dynamodb_throttled_requests"]
    expected[f"{prefix}-dynamodb-system-errors"] = thresholds["dynamodb_system_errors"]
    expected[f"{prefix}-log-archive-delivery-success"] = thresholds["firehose_delivery_success"]
    expected[f"{prefix}-webhook-signature-rejections"] = thresholds["webhook_signature_rejections"]
    expected[f"{prefix}-upload-volume"] = thresholds["upload_bytes_requested"]
    return expected


@pytest.fixture(scope="module")
def operations(rendered):
    return {env: load_template(*rendered[env], "operations") for env in ENVS}


def alarms(template) -> dict[str, dict]:
    """AlarmName -> properties."""
    return {r["Properties"]["AlarmName"]: r["Properties"] for r in resources_of(template, "AWS::CloudWatch::Alarm").values()}


def metric_keys(alarm: dict) -> set[tuple]:
    """(namespace, metric) pairs an alarm watches."""
    if "Metrics" in alarm:
        return {(m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"]) for m in alarm["Metrics"] if "MetricStat" in m}
    return {(alarm["Namespace"], alarm["MetricName"])}


def test_alarms_cover_every_service_and_notify_the_topic(operations, rendered):
    for env in ENVS:
        found = alarms(operations[env])
        expected = expected_thresholds(env, environment.load(env)["operations"]["thresholds"])
        if env == "prod":  # the metrics archive has its own delivery stream to watch
            expected[f"ai-social-media-{env}-metrics-archive-delivery-success"] = environment.load(env)["operations"]["thresholds"]["firehose_delivery_success"]
        assert len(found) >= 17
        assert set(found) == set(expected)
        for name, alarm in found.items():
            assert alarm["AlarmActions"] == [TOPIC] and alarm["OKActions"] == [TOPIC], name
            assert alarm["ActionsEnabled"] is True
            assert alarm["Threshold"] == expected[name], name
        assert literal_physical_names(rendered[env][0], rendered[env][1], ["operations"]) == []


def test_alarms_watch_the_imported_resources(operations):
    template = operations["dev"]
    found = alarms(template)
    for logical_id, slug in BACKEND_FUNCTIONS.items():
        (dimension,) = found[f"ai-social-media-dev-{slug}-errors"]["Dimensions"]
        assert dimension["Name"] == "FunctionName"
        assert is_import(dimension["Value"], "BackendStackName", f"{logical_id}FunctionName")
    (dimension,) = found["ai-social-media-dev-webhook-errors"]["Dimensions"]
    assert is_import(dimension["Value"], "WebhookStackName", "WebhookFunctionName")
    assert found["ai-social-media-dev-create-session-duration-p99"]["ExtendedStatistic"] == "p99"
    (api,) = found["ai-social-media-dev-api-5xx"]["Dimensions"]
    assert is_import(api["Value"], "BackendStackName", "HttpApiId")
    for name in ("dynamodb-throttled-requests", "dynamodb-system-errors"):
        metrics = found[f"ai-social-media-dev-{name}"]["Metrics"]
        tables = [d["Value"] for m in metrics if "MetricStat" in m for d in m["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "TableName"]
        assert tables and all(is_import(t, "StorageStackName", "SessionsTableName") for t in tables)
        assert [m["Expression"] for m in metrics if "Expression" in m] == ["SUM(METRICS())"]
    assert "ai-social-media-dev-cloudfront-5xx-error-rate" not in found  # in the edge stack, where CloudFront's metrics are


def test_every_threshold_follows_the_environment_file(tmp_path):
    # A distinct value per key, so a threshold read from the wrong key (or written as a
    # literal that happens to equal today's value) cannot pass.
    keys = sorted(environment.load("dev")["operations"]["thresholds"])
    changed = {key: str(100 + index) + (".5" if index % 2 else "") for index, key in enumerate(keys)}
    env_dir = env_dir_with(tmp_path, {"dev": changed})
    out, _ = render(tmp_path, "dev", env_dir=env_dir)
    thresholds = environment.load("dev", env_dir)["operations"]["thresholds"]
    assert sorted(thresholds.values()) == sorted(float(v) for v in changed.values())
    found = alarms(load(out, "operations"))
    expected = expected_thresholds("dev", thresholds)
    assert {name: alarm["Threshold"] for name, alarm in found.items()} == expected


def test_dashboard_shows_exactly_what_the_alarms_watch(operations, rendered):
    for env in ENVS:
        template = operations[env]
        edge = alarms(load_template(*rendered[env], "edge"))  # the CloudFront alarm: its widget reads us-east-1
        body, variables = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]
        for name, value in variables.items():
            assert "Fn::ImportValue" in value, name
        placeholders = set(re.findall(r"\$\{([^}]+)\}", body))
        assert placeholders <= set(variables) | set(template["Resources"]) | {"AWS::Region"}
        widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
        headers = [w["properties"]["markdown"] for w in widgets if w["type"] == "text"]
        assert headers[:6] == ["## Lambda", "## API", "## DynamoDB", "## CloudFront", "## Firehose", "## Webhook"]
        graphs = [w["properties"] for w in widgets if w["type"] == "metric"]
        found = {**alarms(template), **edge}
        assert sorted(g["annotations"]["horizontal"][0]["label"] for g in graphs) == sorted(found)
        assert [g["region"] for g in graphs if g["annotations"]["horizontal"][0]["label"] in edge] == ["us-east-1"]
        for graph in graphs:
            name = graph["annotations"]["horizontal"][0]["label"]
            assert graph["annotations"]["horizontal"][0]["value"] == found[name]["Threshold"]
            shown = {(line[0], line[1]) for line in graph["metrics"] if isinstance(line[0], str)}
            assert shown == metric_keys(found[name]), name


def test_topic_email_and_pipeline_failures(operations, tmp_path):
    for env in ENVS:
        template = operations[env]
        assert resources_of(template, "AWS::SNS::Subscription") == {}  # alarm_email is "" in both files
        rule = props(template, "PipelineFailureRule")
        assert rule["EventPattern"]["detail"]["state"] == ["FAILED"]
        backend, frontend = rule["EventPattern"]["detail"]["pipeline"]
        assert is_import(backend, "BackendPipelineStackName", "BackendPipelineName")
        assert is_import(frontend, "FrontendPipelineStackName", "FrontendPipelineName")
        assert [t["Arn"] for t in rule["Targets"]] == [TOPIC]
        statements = {s["Sid"]: s for s in props(template, "AlarmTopicPolicy")["PolicyDocument"]["Statement"]}
        events = statements["PipelineFailureRule"]
        assert events["Principal"] == {"Service": "events.amazonaws.com"} and events["Action"] == "sns:Publish"
        assert events["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["PipelineFailureRule", "Arn"]}}}
        assert statements["AlarmsOfThisEnvironment"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    out, _ = render(tmp_path, "dev", env_dir=env_dir_with(tmp_path, {"dev": {"alarm_email": '"ops@example.org"'}}))
    (subscription,) = resources_of(load(out, "operations"), "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {"TopicArn": TOPIC, "Protocol": "email", "Endpoint": "ops@example.org"}


def test_signature_rejections_are_counted_from_the_webhook_log(operations):
    for env in ENVS:
        template = operations[env]
        filter_props = props(template, "SignatureRejectionsMetricFilter")
        assert is_import(filter_props["LogGroupName"], "WebhookStackName", "WebhookLogGroupName")
        assert filter_props["FilterPattern"] == '{ $.event = "signature_rejected" }'
        (transformation,) = filter_props["MetricTransformations"]
        alarm = alarms(template)[f"ai-social-media-{env}-webhook-signature-rejections"]
        assert transformation["MetricNamespace"] == f"AiSocialMedia/{env}" == alarm["Namespace"]
        assert transformation["MetricName"] == alarm["MetricName"]


def test_function_logs_are_archived_through_firehose(operations):
    for env in ENVS:
        template = operations[env]
        stream = props(template, "LogArchiveStream")
        assert stream["DeliveryStreamType"] == "DirectPut"
        assert stream["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
        destination = stream["ExtendedS3DestinationConfiguration"]
        assert is_import(destination["BucketARN"], "StorageStackName", "LogArchiveBucketArn")
        assert destination["Prefix"].startswith("cloudwatch-logs/") and destination["ErrorOutputPrefix"].startswith("cloudwatch-logs/")
        writes = {s["Sid"]: s for role, s in policy_statements(template) if role == "LogArchiveDeliveryRole"}
        assert is_under_import(writes["WriteUnderCloudwatchLogs"]["Resource"], "/cloudwatch-logs/*", "StorageStackName", "LogArchiveBucketArn")
        assert is_import(writes["Bucket"]["Resource"], "StorageStackName", "LogArchiveBucketArn")
        filters = resources_of(template, "AWS::Logs::SubscriptionFilter")
        groups = sorted(json.dumps(f["Properties"]["LogGroupName"], sort_keys=True) for f in filters.values())
        assert groups == sorted(json.dumps({"Fn::ImportValue": {"Fn::Sub": sub}}, sort_keys=True) for sub in [
            *(f"${{BackendStackName}}-{fn}LogGroupName" for fn in BACKEND_FUNCTIONS), "${WebhookStackName}-WebhookLogGroupName"])
        for subscription in filters.values():
            assert subscription["Properties"]["DestinationArn"] == {"Fn::GetAtt": ["LogArchiveStream", "Arn"]}
            assert subscription["Properties"]["RoleArn"] == {"Fn::GetAtt": ["LogSubscriptionRole", "Arn"]}
        (trust,) = props(template, "LogSubscriptionRole")["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
        assert "aws:SourceArn" in trust["Condition"]["StringLike"]
        assert iam_problems("operations", template, f"ai-social-media-{env}") == []


def test_metrics_archive_follows_the_environment_switch(operations, rendered):
    for env, enabled in (("dev", False), ("prod", True)):
        template = operations[env]
        assert bool(resources_of(template, "AWS::CloudWatch::MetricStream")) is enabled
        assert len(resources_of(template, "AWS::KinesisFirehose::DeliveryStream")) == (2 if enabled else 1)
        stack = next(s for s in rendered[env][1]["stacks"] if s["key"] == "operations")
        archive_imports = sorted(name for name in stack["imports"] if "MetricsArchive" in name)
        if enabled:
            assert archive_imports == [f"ai-social-media-{env}-storage-MetricsArchiveBucketArn", f"ai-social-media-{env}-storage-MetricsArchiveBucketName"]
            stream = props(template, "MetricsArchiveStream")["ExtendedS3DestinationConfiguration"]
            assert is_import(stream["BucketARN"], "StorageStackName", "MetricsArchiveBucketArn")
            (trust,) = props(template, "MetricStreamRole")["AssumeRolePolicyDocument"]["Statement"]
            assert trust["Principal"] == {"Service": "streams.metrics.cloudwatch.amazonaws.com"}
            assert props(template, "MetricStream")["FirehoseArn"] == {"Fn::GetAtt": ["MetricsArchiveStream", "Arn"]}
        else:
            assert archive_imports == []
            assert "MetricsArchive" not in json.dumps(template)


def test_no_role_grants_more_than_its_job(operations):
    for env in ENVS:
        for role_id, statement in policy_statements(operations[env]):
            for resource in as_list(statement["Resource"]):
                assert resource != "*", (role_id, statement)


def depends_on(template: dict, logical_id: str) -> set[str]:
    """Every resource CloudFormation creates before logical_id: what it names (Ref, GetAtt,
    ${...} in Fn::Sub) or waits for (DependsOn), and so on, transitively."""
    resources = template["Resources"]

    def direct(node) -> set[str]:
        found = set()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and value in resources:
                    found.add(value)
                elif key == "Fn::GetAtt":
                    found.add(value[0] if isinstance(value, list) else value.split(".")[0])
                elif key == "Fn::Sub":
                    text = value if isinstance(value, str) else value[0]
                    found |= {v.split(".")[0] for v in re.findall(r"\$\{([^}!]+)\}", text) if v.split(".")[0] in resources}
                found |= direct(value)
        elif isinstance(node, list):
            for value in node:
                found |= direct(value)
        return found

    seen, todo = set(), [logical_id]
    while todo:
        resource = resources[todo.pop()]
        for name in direct(resource.get("Properties", {})) | set(as_list(resource.get("DependsOn", []))):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def test_subscription_role_is_created_before_the_stream_so_iam_has_it_by_the_filters(operations):
    """PutSubscriptionFilter sends a test record at once, as the role; a role made seconds
    earlier may not be usable yet. The role comes first, then the stream (which takes a while
    to become active), then the filters."""
    for env, pairs in (("dev", [("LogSubscriptionRole", "LogArchiveStream", "log-archive")]),
                       ("prod", [("LogSubscriptionRole", "LogArchiveStream", "log-archive"),
                                 ("MetricStreamRole", "MetricsArchiveStream", "metrics-archive")])):
        template = operations[env]
        for role, stream, name in pairs:
            assert role in depends_on(template, stream), (env, role)
            assert stream not in depends_on(template, role), (env, role)
            (statement,) = props(template, role)["Policies"][0]["PolicyDocument"]["Statement"]
            assert props(template, stream)["DeliveryStreamName"] == f"ai-social-media-{env}-{name}"
            assert statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:firehose:${AWS::Region}:${AWS::AccountId}:"
                                                        f"deliverystream/ai-social-media-{env}-{name}"}
        users = [*resources_of(template, "AWS::Logs::SubscriptionFilter"), *resources_of(template, "AWS::CloudWatch::MetricStream")]
        assert users
        for user in users:
            stream = "MetricsArchiveStream" if user == "MetricStream" else "LogArchiveStream"
            assert {stream} <= depends_on(template, user)


def test_topic_and_archives_use_the_storage_key_exactly_when_the_environment_has_one(operations):
    via_s3 = {"StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}}
    for env in ENVS:
        template = operations[env]
        key = environment.load(env)["encryption"]["customer_managed_key"]
        topic = template["Resources"]["AlarmTopic"]
        skipped = [s["id"] for s in topic.get("Metadata", {}).get("checkov", {}).get("skip", [])]
        roles = [r for r in ("LogArchiveDeliveryRole", "MetricsArchiveDeliveryRole") if r in template["Resources"]]
        kms = [(role, s) for role, s in policy_statements(template) if any(a.startswith("kms:") for a in as_list(s["Action"]))]
        (group,) = resources_of(template, "AWS::Logs::LogGroup").values()
        if key:
            assert is_import(topic["Properties"]["KmsMasterKeyId"], "StorageStackName", "EncryptionKeyArn") and skipped == []
            assert is_import(group["Properties"]["KmsKeyId"], "StorageStackName", "EncryptionKeyArn")
            assert sorted(role for role, _ in kms) == sorted(roles)
            for _, statement in kms:
                assert statement["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
                assert is_import(statement["Resource"], "StorageStackName", "EncryptionKeyArn") and statement["Condition"] == via_s3
        else:
            assert "KmsMasterKeyId" not in topic["Properties"] and skipped == ["CKV_AWS_26"]
            assert "KmsKeyId" not in group["Properties"] and kms == []


def test_upload_volume_is_summed_from_the_issued_urls_signed_sizes(operations):
    """The alarm on upload volume: every issued URL's size (the upload cannot exceed it), from
    the upload URL function's log line {"event": "upload_url_issued", "size": ...}."""
    for env in ENVS:
        template = operations[env]
        filter_props = props(template, "UploadBytesMetricFilter")
        assert is_import(filter_props["LogGroupName"], "BackendStackName", "CreateUploadUrlLogGroupName")
        assert filter_props["FilterPattern"] == '{ $.event = "upload_url_issued" }'
        (transformation,) = filter_props["MetricTransformations"]
        assert (transformation["MetricValue"], transformation["Unit"]) == ("$.size", "Bytes")
        alarm = alarms(template)[f"ai-social-media-{env}-upload-volume"]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (transformation["MetricNamespace"], "UploadBytesRequested", "Sum")
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert template["Resources"]["UploadVolumeAlarm"]["DependsOn"] == "UploadBytesMetricFilter"
    source = (ROOT / "app" / "backend" / "create_upload_url.py").read_text()
    assert 'common.log("upload_url_issued", sessionId=sid, key=key, contentType=content_type, size=size)' in source
