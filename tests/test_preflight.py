"""The preflight classification and the import template, as pure functions."""
from tooling import changes, preflight
from tooling.adopting import import_template


def test_classify():
    assert preflight.classify("app-storage", False, None) == "free"
    assert preflight.classify("app-storage", True, "app-storage") == "ours"
    assert preflight.classify("app-storage", True, "someone-else") == "other-stack"
    assert preflight.classify("app-storage", True, None) == "orphan"
    assert preflight.classify("app-storage", None, None) == "unknown"


def test_owner_of_matches_names_and_arn_suffixes():
    owners = {"my-bucket": "a", "arn:aws:sns:us-east-1:1:alarms": "b", "/aws/lambda/fn": "c"}
    assert preflight.owner_of("my-bucket", owners) == "a"
    assert preflight.owner_of("alarms", owners) == "b"
    assert preflight.owner_of("/aws/lambda/fn", owners) == "c"
    assert preflight.owner_of("bucket", owners) is None


def test_named_resources_resolves_names_and_ignores_generated_ones():
    template = {
        "Parameters": {"Prefix": {"Type": "String", "Default": "app-dev"}},
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${Prefix}-fn"}}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "app-dev-uploads-123456789012"}},
            "Unnamed": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Computed": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": {"Fn::GetAtt": ["X", "Y"]}}},
        },
    }
    found = {(r.logical_id, r.name) for r in preflight.named_resources("backend", "app-dev-backend", template, "123456789012", "us-east-1")}
    assert found == {("Logs", "/aws/lambda/app-dev-fn"), ("Bucket", "app-dev-uploads-123456789012")}


def test_export_findings_name_the_importers_and_the_safe_order():
    findings = preflight.export_findings(
        "storage", removed=["s-MediaBucketName"], changed=["s-TableArn", "s-Unused"],
        importers={"s-MediaBucketName": ["app-backend"], "s-TableArn": ["app-ops", "app-backend"], "s-Unused": []},
        importing_in_render={"s-TableArn": {"app-ops"}})
    assert [(f.kind, f.subject) for f in findings] == [("export-in-use", "s-MediaBucketName"), ("export-in-use", "s-TableArn")]
    assert "app-backend" in findings[0].detail and "--only app-backend" in findings[0].fix
    assert "still imports it in app-ops" in findings[1].fix
    assert findings[0].override == "--allow-export-change"


def change(action, logical_id, rtype, replacement="", causes=(), static=()):
    return changes.Change(action, logical_id, rtype, replacement, tuple(causes), tuple(static))


def test_stateful_gate_blocks_real_replacements_and_removals_only():
    deployed = {"Resources": {
        "Table": {"Properties": {"KeySchema": [{"AttributeName": "sessionId"}]}},
        "Bucket": {"Properties": {"BucketName": "b", "LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}}}},
    }}
    rendered = {"Resources": {
        "Table": {"Properties": {"KeySchema": [{"AttributeName": "id"}]}},
        "Bucket": {"Properties": {"BucketName": "b", "LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}}}},
    }}
    findings = preflight.stateful_findings([
        change("Modify", "Table", "AWS::DynamoDB::Table", "Conditional", ["KeySchema"], ["KeySchema"]),
        change("Modify", "Bucket", "AWS::S3::Bucket", "Conditional", ["BucketName", "LoggingConfiguration"], ["BucketName"]),
        change("Remove", "Media", "AWS::S3::Bucket"),
        change("Modify", "Alarm", "AWS::CloudWatch::Alarm", "True", ["AlarmName"], ["AlarmName"]),
    ], deployed, rendered)
    assert [(f.subject, f.kind) for f in findings] == [
        ("AWS::DynamoDB::Table Table", "stateful-change"), ("AWS::S3::Bucket Media", "stateful-change")]
    assert "KeySchema" in findings[0].detail


def test_import_template_adds_orphans_and_stands_them_alone():
    rendered = {"Description": "storage", "Resources": {
        "Logs": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {"BucketName": "logs-1"}},
        "Media": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain",
                  "Properties": {"BucketName": "media-1", "LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}}}},
        "MediaPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Media"}}},
    }}
    only_media = import_template({}, rendered, ["Media"])
    assert set(only_media["Resources"]) == {"Media"}
    assert only_media["Resources"]["Media"]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == "logs-1"
    assert only_media["Resources"]["Media"]["DeletionPolicy"] == "Retain"
    both = import_template({}, rendered, ["Logs", "Media"])
    assert both["Resources"]["Media"]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "Logs"}
    existing = {"Resources": {"Logs": rendered["Resources"]["Logs"]}, "Outputs": {"X": {"Value": 1}}}
    onto_stack = import_template(existing, rendered, ["Media"])
    assert set(onto_stack["Resources"]) == {"Logs", "Media"} and onto_stack["Outputs"] == {"X": {"Value": 1}}


def test_a_renamed_export_needs_three_steps():
    findings = preflight.export_findings(
        "storage", removed=["s-MediaBucketName"], changed=[], importers={"s-MediaBucketName": ["app-backend"]},
        importing_in_render={}, waiting_for_new={"app-backend"})
    assert len(findings) == 1
    assert "neither order works" in findings[0].fix and "beside s-MediaBucketName" in findings[0].fix
