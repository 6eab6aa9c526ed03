"""Pure functions over CloudFormation's reports: change sets and events."""
import datetime as dt

from tooling.deploy import changes


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
