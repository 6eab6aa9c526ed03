"""adopt's import template and parameters, pure functions, held to AWS's rules for an
import: it adds the resources to import to the deployed template and changes nothing
else (no Outputs added, the stack's Parameters and Conditions as deployed, their values
passed on), and it never sends a reference the template cannot resolve."""
import pytest

from conftest import load_template
from tooling.deploy.recover.adopt import NotImportable, import_parameters, import_template, needed_sections

REGION, ACCOUNT = "eu-west-1", "123456789012"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


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


def test_a_reference_with_no_literal_form_refuses_the_import():
    rendered = {"Resources": {
        "Site": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "site-1"}},
        "Media": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "media-1", "Tags": [
            {"Key": "arn", "Value": {"Fn::GetAtt": ["Site", "Arn"]}},
            {"Key": "web", "Value": {"Fn::GetAtt": ["Site", "WebsiteURL"]}}]}},
    }}
    with pytest.raises(NotImportable, match="WebsiteURL"):
        import_template({}, rendered, ["Media"], REGION, ACCOUNT)
    rendered["Resources"]["Media"]["Properties"]["Tags"].pop()
    tags = import_template({}, rendered, ["Media"], REGION, ACCOUNT)["Resources"]["Media"]["Properties"]["Tags"]
    assert tags == [{"Key": "arn", "Value": "arn:aws:s3:::site-1"}]


def test_a_reference_to_a_key_that_does_not_exist_refuses_the_import(rendered):
    out, manifest = rendered["prod"]
    storage = load_template(out, manifest, "storage")
    with pytest.raises(NotImportable, match="MediaBucket refers to EncryptionKey"):
        import_template({}, storage, ["MediaBucket"], REGION, ACCOUNT)  # the key neither deployed, imported nor found


def test_the_key_found_by_its_alias_becomes_a_literal_arn_when_it_is_not_imported(rendered):
    out, manifest = rendered["prod"]
    storage = load_template(out, manifest, "storage")
    template = import_template({}, storage, ["MediaBucket"], REGION, ACCOUNT, {"EncryptionKey": ("AWS::KMS::Key", KEY_ID)})
    rule = template["Resources"]["MediaBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
    imported = import_template({}, storage, ["MediaBucket", "EncryptionKey", "EncryptionKeyAlias"], REGION, ACCOUNT,
                               {"EncryptionKey": ("AWS::KMS::Key", KEY_ID)})
    rule = imported["Resources"]["MediaBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    assert imported["Resources"]["EncryptionKeyAlias"]["Properties"]["TargetKeyId"] == {"Ref": "EncryptionKey"}


def test_a_created_stack_gets_the_parameters_and_conditions_its_resources_use_and_no_outputs(rendered):
    out, manifest = rendered["dev"]
    storage = load_template(out, manifest, "storage")
    template = import_template({}, storage, ["MediaBucket", "SessionsTable"], REGION, ACCOUNT)
    assert set(template["Parameters"]) == {"ServedOrigin"} and set(template["Conditions"]) == {"HasServedOrigin"}
    assert "Outputs" not in template  # an import may not add outputs
    assert template["Metadata"]["StackRole"] == "stateful"
    bare = import_template({}, storage, ["SessionsTable"], REGION, ACCOUNT)
    assert "Parameters" not in bare and "Conditions" not in bare  # only what the imported resources use


def test_an_import_into_a_deployed_stack_keeps_its_sections_as_deployed(rendered):
    out, manifest = rendered["dev"]
    storage = load_template(out, manifest, "storage")
    deployed = {"Metadata": {"deploy-fingerprint": "abc"}, "Parameters": {"ServedOrigin": {"Type": "String", "Default": "x"}},
                "Conditions": {"HasServedOrigin": {"Fn::Equals": ["a", "a"]}},
                "Resources": {"SessionsTable": storage["Resources"]["SessionsTable"]},
                "Outputs": {"SessionsTableName": storage["Outputs"]["SessionsTableName"]}}
    template = import_template(deployed, storage, ["MediaBucket"], REGION, ACCOUNT)
    for section in ("Metadata", "Parameters", "Conditions", "Outputs"):
        assert template[section] == deployed[section], section
    assert set(template["Resources"]) == {"SessionsTable", "MediaBucket"}


def test_needed_sections_follow_conditions_through_conditions():
    rendered = {"Parameters": {"A": {"Type": "String"}, "B": {"Type": "String"}, "Unused": {"Type": "String"}},
                "Conditions": {"Outer": {"Fn::And": [{"Condition": "Inner"}, {"Fn::Equals": [{"Ref": "A"}, "x"]}]},
                               "Inner": {"Fn::Equals": [{"Ref": "B"}, "y"]}, "Other": {"Fn::Equals": ["1", "1"]}},
                "Mappings": {"M": {"k": {"v": "1"}}}}
    resources = {"R": {"Type": "AWS::S3::Bucket", "Condition": "Outer",
                       "Properties": {"Tags": [{"Key": "k", "Value": {"Fn::FindInMap": ["M", "k", "v"]}}]}}}
    sections = needed_sections(resources, rendered)
    assert set(sections["Parameters"]) == {"A", "B"} and set(sections["Conditions"]) == {"Outer", "Inner"}
    assert set(sections["Mappings"]) == {"M"}


def test_parameters_keep_their_deployed_values_and_new_ones_take_what_a_deploy_gives():
    template = {"Parameters": {"ServedOrigin": {}, "Other": {}, "Defaulted": {}}}
    assert import_parameters(template, {"ServedOrigin": "https://d.example"}, {"Other": "v", "ServedOrigin": "ignored"}) == [
        {"ParameterKey": "Other", "ParameterValue": "v"},
        {"ParameterKey": "ServedOrigin", "UsePreviousValue": True}]
    assert import_parameters(template, None, {"ServedOrigin": "https://d.example"}) == [
        {"ParameterKey": "ServedOrigin", "ParameterValue": "https://d.example"}]
