"""Pure functions over CloudFormation's reports: change sets, events, skips."""
import datetime as dt

from tooling import changes


def rc(action, logical_id, rtype="AWS::S3::Bucket", replacement=None, details=()):
    change = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": rtype, "Details": list(details)}
    if replacement is not None:
        change["Replacement"] = replacement
    return {"Type": "Resource", "ResourceChange": change}


def detail(name, requires="Always", evaluation="Static", source="DirectModification"):
    return {"Target": {"Attribute": "Properties", "Name": name, "RequiresRecreation": requires},
            "Evaluation": evaluation, "ChangeSource": source}


def test_summarize_change_set_labels_and_causes():
    summary = changes.summarize_change_set([
        rc("Add", "NewTopic", "AWS::SNS::Topic"),
        rc("Modify", "Table", "AWS::DynamoDB::Table", "True", [detail("KeySchema"), detail("BillingMode", "Never")]),
        rc("Modify", "Bucket", replacement="Conditional", details=[detail("LoggingConfiguration", "Conditionally", "Dynamic", "ResourceReference")]),
        rc("Modify", "Alarm", "AWS::CloudWatch::Alarm", "False", [detail("Threshold", "Never")]),
        rc("Remove", "Old", "AWS::Logs::LogGroup"),
    ])
    labels = {c.logical_id: c.label for c in summary}
    assert labels == {"NewTopic": "add", "Table": "replace", "Bucket": "replace?", "Alarm": "modify", "Old": "remove"}
    table = next(c for c in summary if c.logical_id == "Table")
    assert table.causes == ("KeySchema",) and table.static_causes == ("KeySchema",)
    bucket = next(c for c in summary if c.logical_id == "Bucket")
    assert bucket.causes == ("LoggingConfiguration",) and bucket.static_causes == ()
    assert changes.count_labels(summary) == {"add": 1, "replace": 1, "replace?": 1, "modify": 1, "remove": 1}


def event(minute, logical_id, status, reason="", stack="s"):
    return {"Timestamp": dt.datetime(2026, 1, 1, 0, minute, tzinfo=dt.timezone.utc), "LogicalResourceId": logical_id,
            "ResourceStatus": status, "ResourceStatusReason": reason, "StackName": stack, "ResourceType": "T"}


def test_first_failure_names_the_root_cause_not_the_cancellations():
    newest_first = list(reversed([
        event(0, "s", "CREATE_IN_PROGRESS", "User Initiated"),
        event(1, "Topic", "CREATE_COMPLETE"),
        event(2, "Fn", "CREATE_FAILED", "Resource creation cancelled"),
        event(2, "LogGroup", "CREATE_FAILED", "/aws/lambda/x already exists"),
        event(3, "s", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [LogGroup, Fn]"),
        event(4, "s", "ROLLBACK_COMPLETE"),
    ]))
    failure = changes.first_failure(newest_first)
    assert (failure["LogicalResourceId"], failure["ResourceStatusReason"]) == ("LogGroup", "/aws/lambda/x already exists")
    later = dt.datetime(2026, 1, 1, 0, 3, tzinfo=dt.timezone.utc)
    assert changes.first_failure(newest_first, since=later) is None


def test_success_is_only_a_complete_that_is_not_a_rollback():
    assert changes.succeeded("CREATE_COMPLETE") and changes.succeeded("UPDATE_COMPLETE")
    for status in ("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "CREATE_FAILED", "UPDATE_IN_PROGRESS", None):
        assert not changes.succeeded(status)


def test_blocked_follows_dependencies_transitively():
    depends_on = {"storage": [], "frontend": ["storage"], "ops": ["frontend"], "fe-pipeline": ["frontend"], "backend": ["storage"]}
    assert changes.blocked({"frontend"}, depends_on) == {"ops": "frontend", "fe-pipeline": "frontend"}
    assert changes.blocked(set(), depends_on) == {}


def test_fingerprint_covers_template_and_packaged_code(tmp_path):
    code = tmp_path / "app" / "fn"
    code.mkdir(parents=True)
    (code / "handler.py").write_text("x = 1\n")
    template = "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: app/fn\n"
    first = changes.fingerprint(template, tmp_path)
    assert changes.fingerprint(template, tmp_path) == first
    (code / "handler.py").write_text("x = 2\n")
    assert changes.fingerprint(template, tmp_path) != first
    assert changes.fingerprint(template + "# comment\n", tmp_path) != changes.fingerprint(template, tmp_path)
    assert changes.fingerprint(template, tmp_path, extra="tag") != changes.fingerprint(template, tmp_path)


def test_fingerprint_goes_into_the_top_level_metadata():
    from tooling.render import cfn_yaml

    text = "# header\nAWSTemplateFormatVersion: '2010-09-09'\nMetadata:\n  StackRole: stateless\nResources:\n  T:\n    Type: AWS::SNS::Topic\n"
    stamped = cfn_yaml.load(changes.with_fingerprint(text, "abc123"))
    assert stamped["Metadata"] == {"DeployFingerprint": "abc123", "StackRole": "stateless"}
    assert changes.fingerprint_of(stamped) == "abc123"
    bare = cfn_yaml.load(changes.with_fingerprint("Resources:\n  T:\n    Type: AWS::SNS::Topic\n", "f00"))
    assert changes.fingerprint_of(bare) == "f00" and "T" in bare["Resources"]
    assert changes.fingerprint_of({"Resources": {}}) is None


def test_resources_that_only_reference_a_changed_one_are_not_the_change():
    summary = changes.summarize_change_set([
        rc("Modify", "LogGroup", "AWS::Logs::LogGroup", "False", [detail("RetentionInDays", "Never")]),
        rc("Modify", "Fn", "AWS::Lambda::Function", "False",
           [{**detail("LoggingConfig", "Never", "Dynamic", "ResourceReference"), "CausingEntity": "LogGroup"}]),
        rc("Modify", "Integration", "AWS::ApiGatewayV2::Integration", "Conditional",
           [{**detail("IntegrationUri", "Conditionally", "Dynamic", "ResourceAttribute"), "CausingEntity": "Fn.Arn"}]),
    ])
    assert [(c.logical_id, c.direct) for c in summary] == [("Fn", False), ("Integration", False), ("LogGroup", True)]
    assert next(c for c in summary if c.logical_id == "Integration").caused_by == ("Fn",)


def test_a_conditional_replacement_stands_only_on_a_real_property_change():
    from tooling.commands import settle_replacements

    summary = changes.summarize_change_set([
        rc("Modify", "Logs", "AWS::Logs::LogGroup", "Conditional", [detail("LogGroupName", "Conditionally"), detail("RetentionInDays", "Never")]),
        rc("Modify", "Table", "AWS::DynamoDB::Table", "Conditional", [detail("KeySchema", "Conditionally")]),
    ])
    deployed = {"Resources": {"Logs": {"Properties": {"LogGroupName": "/x", "RetentionInDays": 14}},
                              "Table": {"Properties": {"KeySchema": [{"AttributeName": "a"}]}}}}
    rendered = {"Resources": {"Logs": {"Properties": {"LogGroupName": "/x", "RetentionInDays": 30}},
                              "Table": {"Properties": {"KeySchema": [{"AttributeName": "b"}]}}}}
    labels = {c.logical_id: c.label for c in settle_replacements(summary, deployed, rendered)}
    assert labels == {"Logs": "modify", "Table": "replace?"}
