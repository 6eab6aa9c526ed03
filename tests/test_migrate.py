"""migrate's pure parts: the templates it writes for the old stacks, what it lets a
change set do, the order of its steps, and how a second run resumes."""
from __future__ import annotations

import pytest

from tooling.deploy.recover import migrate
from tooling.deploy.recover.migrate import Move

REGION, ACCOUNT = "eu-west-1", "123456789012"

OLD_FRONTEND = {
    "Resources": {
        "FrontendBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Delete", "Properties": {"BucketName": "fe-bucket"}},
        "AutoDelete": {"Type": "Custom::S3AutoDeleteObjects", "DependsOn": ["FrontendBucket", "Provider"],
                       "Properties": {"ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]}, "BucketName": {"Ref": "FrontendBucket"}}},
        "Provider": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "index.handler"}},
        "Setting": {"Type": "AWS::SSM::Parameter",
                    "Properties": {"Value": {"Fn::Sub": "${FrontendBucket}|${FrontendBucket.RegionalDomainName}|${AWS::Region}"}}},
    },
    "Outputs": {"BucketArn": {"Value": {"Fn::GetAtt": "FrontendBucket.Arn"}, "Export": {"Name": "old-FrontendBucketArn"}}},
}
MOVED = {"FrontendBucket": ("AWS::S3::Bucket", "fe-bucket")}


def test_retain_adds_both_policies_and_changes_nothing_else():
    result = migrate.retain_template(OLD_FRONTEND, ["FrontendBucket", "AutoDelete"])
    assert result["Resources"]["FrontendBucket"]["DeletionPolicy"] == "Retain"
    assert result["Resources"]["AutoDelete"]["UpdateReplacePolicy"] == "Retain"
    for lid in ("FrontendBucket", "AutoDelete"):
        stripped = {k: v for k, v in result["Resources"][lid].items() if k not in ("DeletionPolicy", "UpdateReplacePolicy")}
        assert stripped == {k: v for k, v in OLD_FRONTEND["Resources"][lid].items() if k not in ("DeletionPolicy", "UpdateReplacePolicy")}
    assert result["Resources"]["Setting"] == OLD_FRONTEND["Resources"]["Setting"] and result["Outputs"] == OLD_FRONTEND["Outputs"]
    assert OLD_FRONTEND["Resources"]["FrontendBucket"]["DeletionPolicy"] == "Delete"  # the input is left alone


def test_auto_delete_resources_are_found_by_what_they_refer_to():
    assert migrate.auto_delete_resources(OLD_FRONTEND, {"FrontendBucket"}) == ["AutoDelete"]
    assert migrate.auto_delete_resources(OLD_FRONTEND, {"OtherBucket"}) == []


def test_removal_rewrites_every_reference_to_the_literal_value():
    result = migrate.removal_template(OLD_FRONTEND, MOVED, REGION, ACCOUNT)
    assert "FrontendBucket" not in result["Resources"]
    assert result["Resources"]["AutoDelete"]["Properties"]["BucketName"] == "fe-bucket"
    assert result["Resources"]["AutoDelete"]["DependsOn"] == ["Provider"]  # DependsOn on it dropped, the rest kept
    assert result["Resources"]["AutoDelete"]["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["Provider", "Arn"]}
    assert result["Resources"]["Setting"]["Properties"]["Value"] == {"Fn::Sub": "fe-bucket|fe-bucket.s3.eu-west-1.amazonaws.com|${AWS::Region}"}
    assert result["Outputs"]["BucketArn"]["Value"] == "arn:aws:s3:::fe-bucket"  # the export keeps its value: importers are fine


def test_removal_of_everything_leaves_a_placeholder():
    only = {"Resources": {"Table": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain"}},
            "Outputs": {"TableArn": {"Value": {"Fn::GetAtt": ["Table", "Arn"]}}}}
    result = migrate.removal_template(only, {"Table": ("AWS::DynamoDB::Table", "sessions")}, REGION, ACCOUNT)
    assert result["Resources"] == {migrate.PLACEHOLDER: {"Type": "AWS::CloudFormation::WaitConditionHandle"}}
    assert result["Outputs"]["TableArn"]["Value"] == "arn:aws:dynamodb:eu-west-1:123456789012:table/sessions"


def test_an_attribute_without_a_known_literal_stops_the_removal():
    template = {"Resources": {"B": {"Type": "AWS::S3::Bucket"}, "P": {"Type": "AWS::SSM::Parameter",
                                                                     "Properties": {"Value": {"Fn::GetAtt": ["B", "WebsiteURL"]}}}}}
    with pytest.raises(migrate.Unmovable, match="WebsiteURL"):
        migrate.removal_template(template, {"B": ("AWS::S3::Bucket", "b")}, REGION, ACCOUNT)


def change(action, lid, **extra):
    return {"Type": "Resource", "ResourceChange": {"Action": action, "LogicalResourceId": lid, **extra}}


FOLLOWS = {"Replacement": "False", "Details": [{"Evaluation": "Dynamic", "ChangeSource": "ResourceAttribute",
                                                "CausingEntity": "Bucket.Arn", "Target": {"Attribute": "Properties"}}]}


def test_a_retain_change_set_may_change_only_the_policies_of_the_retained():
    ok = [change("Modify", "Bucket", Scope=["DeletionPolicy", "UpdateReplacePolicy"], Replacement="False"),
          change("Modify", "Setting", **FOLLOWS)]
    assert migrate.unexpected_changes(ok, "retain", {"Bucket"}) == []
    assert migrate.unexpected_changes([change("Modify", "Bucket", Scope=["DeletionPolicy", "Properties"])], "retain", {"Bucket"}) == \
        ["changes Properties of Bucket"]
    assert migrate.unexpected_changes([change("Modify", "Other", Scope=["Properties"])], "retain", {"Bucket"}) == ["modifies Other"]
    assert migrate.unexpected_changes([change("Add", "New")], "retain", {"Bucket"}) == ["adds New"]


def test_a_remove_change_set_may_only_retain_the_moved_resources():
    ok = [change("Remove", "Bucket", PolicyAction="Retain"), change("Add", migrate.PLACEHOLDER),
          change("Modify", "Setting", Replacement="False", Scope=["Properties"])]
    assert migrate.unexpected_changes(ok, "remove", {"Bucket"}) == []
    assert migrate.unexpected_changes([change("Remove", "Bucket", PolicyAction="Delete")], "remove", {"Bucket"}) == \
        ["removes Bucket with PolicyAction Delete (it would be deleted)"]
    assert migrate.unexpected_changes([change("Remove", "Other", PolicyAction="Retain")], "remove", {"Bucket"}) == ["removes Other"]
    assert migrate.unexpected_changes([change("Modify", "Fn", Replacement="True")], "remove", {"Bucket"}) == ["replaces Fn"]
    assert migrate.unexpected_changes([change("Add", "Extra")], "remove", {"Bucket"}) == ["adds Extra"]


def moves(policy="Delete"):
    return [Move("FrontendBucket", "AWS::S3::Bucket", "fe-bucket", "in-old-stack", "Old-Frontend", "FrontendBucket", policy),
            Move("MediaBucket", "AWS::S3::Bucket", "media", "in-storage"),
            Move("LogArchiveBucket", "AWS::S3::Bucket", "logs", "orphan")]


def test_every_old_stack_is_made_harmless_before_anything_is_removed():
    steps = migrate.plan_steps(moves(), {"Old-Frontend": OLD_FRONTEND}, tagged={"fe-bucket"})
    assert [(s.kind, s.stack) for s in steps] == [
        ("untag", "Old-Frontend"), ("retain", "Old-Frontend"), ("remove", "Old-Frontend"), ("import", "storage"), ("protect", "storage")]
    assert steps[1].resources == ["AutoDelete", "FrontendBucket"]
    assert steps[3].resources == ["FrontendBucket", "LogArchiveBucket"]  # the orphan is imported too


def test_a_second_run_resumes_from_what_is_deployed():
    retained = migrate.retain_template(OLD_FRONTEND, ["FrontendBucket", "AutoDelete"])
    steps = migrate.plan_steps(moves("Retain"), {"Old-Frontend": retained}, tagged=set())
    assert [s.kind for s in steps] == ["remove", "import", "protect"]  # untagged and retained already
    done = [Move("FrontendBucket", "AWS::S3::Bucket", "fe-bucket", "in-storage")]
    assert migrate.plan_steps(done, {}) == []


def test_old_stacks_are_deleted_importers_first():
    order = migrate.deletion_order(["Storage", "Pipeline", "Ops"], {"Storage": {"Pipeline"}, "Pipeline": set(), "Ops": set()})
    assert order.index("Pipeline") < order.index("Storage")
    with pytest.raises(migrate.Refused, match="cycle"):
        migrate.deletion_order(["A", "B"], {"A": {"B"}, "B": {"A"}})


def test_retain_accepts_a_retained_policy_re_evaluated_through_its_retained_bucket():
    """As CloudFormation describes it (and the local AWS measured it): the bucket policy's
    PolicyDocument refers to the bucket's Arn, so beside its own policy change it shows a
    dynamic re-evaluation caused by the bucket, which is retained in the same step."""
    def detail(attribute, evaluation="Static", source="DirectModification", causing=None):
        return {"Target": {"Attribute": attribute, "RequiresRecreation": "Never"}, "Evaluation": evaluation,
                "ChangeSource": source, **({"CausingEntity": causing} if causing else {})}
    policy = {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "MediaBucketPolicy", "Replacement": "Conditional",
                                 "Scope": ["Properties", "DeletionPolicy", "UpdateReplacePolicy"],
                                 "Details": [detail("Properties", "Dynamic", "ResourceAttribute", "MediaBucket.Arn"),
                                             detail("DeletionPolicy"), detail("UpdateReplacePolicy")]}}
    assert migrate.unexpected_changes([policy], "retain", {"MediaBucket", "MediaBucketPolicy"}) == []
    # caused by something that is not retained in this step, or a direct property change: refused
    assert migrate.unexpected_changes([policy], "retain", {"MediaBucketPolicy"}) == ["changes Properties of MediaBucketPolicy"]
    direct = {"ResourceChange": {**policy["ResourceChange"], "Details": [detail("Properties"), detail("DeletionPolicy")]}}
    assert migrate.unexpected_changes([direct], "retain", {"MediaBucket", "MediaBucketPolicy"}) == ["changes Properties of MediaBucketPolicy"]
    replaced = {"ResourceChange": {**policy["ResourceChange"], "Replacement": "True"}}
    assert migrate.unexpected_changes([replaced], "retain", {"MediaBucket", "MediaBucketPolicy"}) != []


def test_policies_attached_to_a_moved_bucket_leave_with_it():
    template = {"Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        "Policy": {"Type": "AWS::S3::BucketPolicy", "DeletionPolicy": "Retain", "Properties": {"Bucket": {"Ref": "Bucket"}}},
        "OtherPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": "someone-elses"}},
        "Reader": {"Type": "AWS::IAM::Policy", "Properties": {"Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}}},
    }}
    assert migrate.attached_resources(template, {"Bucket"}) == ["Policy"]
    result = migrate.removal_template(template, {"Bucket": ("AWS::S3::Bucket", "b-1")}, REGION, ACCOUNT, ["Policy"])
    assert set(result["Resources"]) == {"OtherPolicy", "Reader"}
    assert result["Resources"]["Reader"]["Properties"]["Resource"] == "arn:aws:s3:::b-1"
    template["Resources"]["Reader"]["DependsOn"] = "Policy"
    assert set(migrate.removal_template(template, {"Bucket": ("AWS::S3::Bucket", "b-1")}, REGION, ACCOUNT, ["Policy"])["Resources"]) \
        == {"OtherPolicy", "Reader"}
    template["Resources"]["Reader"]["Properties"]["Extra"] = {"Ref": "Policy"}
    with pytest.raises(migrate.Unmovable):
        migrate.removal_template(template, {"Bucket": ("AWS::S3::Bucket", "b-1")}, REGION, ACCOUNT, ["Policy"])


def test_what_follows_a_follower_is_no_change_either():
    """A retain of the key re-evaluates the bucket encrypted with it, and that bucket's policy
    (as the local AWS shows it): nothing of theirs changes, so the change set is accepted;
    a Static change to the policy, or a replacement, is not."""
    key = {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "Key", "Scope": ["DeletionPolicy", "UpdateReplacePolicy"],
                              "Replacement": "False", "Details": []}}
    bucket = {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "Bucket", "Replacement": "Conditional", "Scope": ["Properties"],
                                 "Details": [{"Evaluation": "Dynamic", "ChangeSource": "ResourceAttribute", "CausingEntity": "Key.Arn"}]}}
    policy = {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "Policy", "Replacement": "Conditional", "Scope": ["Properties"],
                                 "Details": [{"Evaluation": "Dynamic", "ChangeSource": "ResourceReference", "CausingEntity": "Bucket"},
                                             {"Evaluation": "Dynamic", "ChangeSource": "ResourceAttribute", "CausingEntity": "Bucket.Arn"}]}}
    assert migrate.unexpected_changes([key, bucket, policy], "retain", {"Key"}) == []
    edited = {"ResourceChange": {**policy["ResourceChange"], "Details": policy["ResourceChange"]["Details"] + [
        {"Evaluation": "Static", "ChangeSource": "DirectModification"}]}}
    assert migrate.unexpected_changes([key, bucket, edited], "retain", {"Key"}) == ["modifies Policy"]
    replaced = {"ResourceChange": {**bucket["ResourceChange"], "Replacement": "True"}}
    assert migrate.unexpected_changes([key, replaced, policy], "retain", {"Key"}) == ["modifies Bucket", "modifies Policy"]
