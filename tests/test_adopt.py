"""adopt's import template, a pure function: the orphans added to what is deployed,
each standing on its own (references to what the template lacks become literal values)."""
from tooling.deploy.recover.adopt import import_template

REGION, ACCOUNT = "eu-west-1", "123456789012"


def test_import_template_adds_orphans_and_stands_them_alone():
    rendered = {"Description": "storage", "Resources": {
        "Logs": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {"BucketName": "logs-1"}},
        "Media": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain",
                  "Properties": {"BucketName": "media-1", "LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}}}},
        "MediaPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Media"}}},
    }}
    only_media = import_template({}, rendered, ["Media"], REGION, ACCOUNT)
    assert set(only_media["Resources"]) == {"Media"}
    assert only_media["Resources"]["Media"]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == "logs-1"
    assert only_media["Resources"]["Media"]["DeletionPolicy"] == "Retain"
    both = import_template({}, rendered, ["Logs", "Media"], REGION, ACCOUNT)
    assert both["Resources"]["Media"]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "Logs"}
    existing = {"Resources": {"Logs": rendered["Resources"]["Logs"]}, "Outputs": {"X": {"Value": 1}}}
    onto_stack = import_template(existing, rendered, ["Media"], REGION, ACCOUNT)
    assert set(onto_stack["Resources"]) == {"Logs", "Media"} and onto_stack["Outputs"] == {"X": {"Value": 1}}


def test_a_reference_with_no_literal_form_is_left_as_written():
    rendered = {"Resources": {
        "Site": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "site-1"}},
        "Media": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "media-1", "Tags": [
            {"Key": "arn", "Value": {"Fn::GetAtt": ["Site", "Arn"]}},
            {"Key": "web", "Value": {"Fn::GetAtt": ["Site", "WebsiteURL"]}}]}},
    }}
    tags = import_template({}, rendered, ["Media"], REGION, ACCOUNT)["Resources"]["Media"]["Properties"]["Tags"]
    assert tags == [{"Key": "arn", "Value": "arn:aws:s3:::site-1"}, {"Key": "web", "Value": {"Fn::GetAtt": ["Site", "WebsiteURL"]}}]
