"""Renames of stateful resources: how check recognises one (gate/rename.py), the stack
policy the removal runs under, what the rename command refuses, the steps it plans from
what is deployed, and, on AWS's own answers through botocore's Stubber, the order of its
removal step: the policy relaxed only around it and restored whatever happens."""
from __future__ import annotations

import datetime
import json
import shlex

import pytest

from conftest import ROOT
from tooling.deploy.gate import findings, inventory, rename as gate
from tooling.deploy.gate.replacement import Resolver
from tooling.deploy.recover import rename
from tooling.deploy.recover.migrate import Step
from tooling.errors import UserError
from tooling.render import naming

REGION, ACCOUNT, STACK = "us-east-1", "123456789012", "acme-dev-storage"
POLICY = json.loads((ROOT / "templates" / "storage-stack-policy.json").read_text())


def bucket(name, **extra):
    return {"Type": "AWS::S3::Bucket", "DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain",
            "Properties": {"BucketName": name, "VersioningConfiguration": {"Status": "Enabled"}, **extra}}


def table(name, key="sessionId"):
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": {"TableName": name, "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}]}}


def key():
    return {"Type": "AWS::KMS::Key", "DeletionPolicy": "RetainExceptOnCreate", "Properties": {"EnableKeyRotation": True}}


def alias(target):
    return {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": "alias/acme-dev-storage", "TargetKeyId": {"Ref": target}}}


def policy_of(bucket_id):
    return {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": bucket_id},
                                                            "PolicyDocument": {"Statement": [{"Resource": {"Fn::GetAtt": [bucket_id, "Arn"]}}]}}}


DEPLOYED = {"Resources": {"MediaBucket": bucket("media-1"), "MediaBucketPolicy": policy_of("MediaBucket"),
                          "LogBucket": bucket("logs-1"), "SessionsTable": table("sessions")},
            "Outputs": {"MediaBucketName": {"Value": {"Ref": "MediaBucket"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-MediaBucketName"}}}}}
RENDERED = {"Resources": {"UploadsBucket": bucket("media-1"), "MediaBucketPolicy": policy_of("UploadsBucket"),
                          "LogBucket": bucket("logs-1"), "SessionsTable": table("sessions")},
            "Outputs": {"MediaBucketName": {"Value": {"Ref": "UploadsBucket"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-MediaBucketName"}}}}}
HELD = {"MediaBucket": "media-1", "MediaBucketPolicy": "media-1", "LogBucket": "logs-1", "SessionsTable": "sessions"}


def resolvers(held=HELD):
    return Resolver(physical=dict(held)), Resolver(physical=dict(held))


# --- check: recognising a rename ---------------------------------------------------------------

def test_a_bucket_under_a_new_logical_id_with_the_same_name_is_a_rename():
    pairs = gate.recognise(DEPLOYED, RENDERED, *resolvers())
    assert [(p.old, p.new, p.identity, p.physical_id, p.safe) for p in pairs] == [("MediaBucket", "UploadsBucket", "media-1", "media-1", True)]


def test_the_rename_is_one_blocking_finding_whose_fix_is_the_command_for_every_pair():
    deployed = {"Resources": {**DEPLOYED["Resources"], "OldTable": table("sessions-2")}}
    rendered = {"Resources": {**RENDERED["Resources"], "NewTable": table("sessions-2")}}
    pairs = gate.recognise(deployed, rendered, *resolvers())
    found = gate.rename_findings(pairs, "dev", True)
    assert [(f.kind, f.subject, f.blocking, f.override) for f in found] == [
        ("rename", "AWS::S3::Bucket MediaBucket -> UploadsBucket", True, None),
        ("rename", "AWS::DynamoDB::Table OldTable -> NewTable", True, None)]
    assert {f.fix for f in found} == {"python deploy.py rename MediaBucket=UploadsBucket OldTable=NewTable --env dev --local"}
    words = shlex.split(found[0].fix)  # the fix parses as deploy.py's own command line
    from tooling import cli
    args = cli.parse_args(words[2:])
    assert args.command == "rename" and rename.parse(args.pairs) == [("MediaBucket", "UploadsBucket"), ("OldTable", "NewTable")]


def test_the_generic_removal_finding_is_not_given_for_a_recognised_pair():
    old, new = resolvers()
    pairs = gate.recognise(DEPLOYED, RENDERED, old, new)
    assert [f.subject for f in findings.stateful_findings(DEPLOYED, RENDERED, old, new)] == ["AWS::S3::Bucket MediaBucket"]
    assert findings.stateful_findings(DEPLOYED, RENDERED, old, new, renamed={p.old for p in pairs}) == []


def test_the_inventory_finding_for_new_is_covered_by_the_rename():
    pairs = gate.recognise(DEPLOYED, RENDERED, *resolvers())
    mine = findings.Finding("other-owner", naming.STORAGE, "AWS::S3::Bucket media-1", "owned by this stack under MediaBucket", "")
    other = findings.Finding("other-owner", naming.STORAGE, "AWS::S3::Bucket logs-1", "", "")
    assert gate.covered(mine, pairs) and not gate.covered(other, pairs)


def test_the_change_sets_removal_and_the_policy_read_back_are_covered_too():
    pairs = gate.recognise(DEPLOYED, RENDERED, *resolvers())
    removal = findings.Finding("stateful-change", naming.STORAGE, "AWS::S3::Bucket MediaBucket", "the change set removes it", "")
    other = findings.Finding("stateful-change", naming.STORAGE, "AWS::S3::Bucket LogBucket", "the change set removes it", "")
    assert gate.covered(removal, pairs) and not gate.covered(other, pairs)
    differs = findings.Finding("unprotected", naming.STORAGE, STACK, gate.POLICY_DIFFERS, "")
    render = render_policy()
    before = json.loads(json.dumps(POLICY))  # the policy as deployed before the rename: it names MediaBucket
    assert gate.policy_explained(before, render, pairs) and gate.policy_explained(gate.guard_policy(render, [("MediaBucket", "UploadsBucket")]), render, pairs)
    assert gate.covered(differs, pairs, policy_explained=True) and not gate.covered(differs, pairs)
    loosened = {"Statement": [POLICY["Statement"][0]]}  # a policy that protects nothing is no rename's doing
    assert not gate.policy_explained(loosened, render, pairs) and not gate.policy_explained(None, render, pairs)


def test_an_export_of_the_renamed_resource_keeps_its_value():
    old, new = resolvers()
    pairs = gate.recognise(DEPLOYED, RENDERED, old, new)
    deployed = {**DEPLOYED["Outputs"], "Arn": {"Value": {"Fn::GetAtt": "MediaBucket.Arn"}},
                "Sub": {"Value": {"Fn::Sub": "${MediaBucket.Arn}/*|${MediaBucket}|${LogBucket}"}}}
    rendered = {**RENDERED["Outputs"], "Arn": {"Value": {"Fn::GetAtt": "UploadsBucket.Arn"}},
                "Sub": {"Value": {"Fn::Sub": "${UploadsBucket.Arn}/*|${UploadsBucket}|${LogBucket}"}}}
    kept = {"s-MediaBucketName": "MediaBucketName", "s-Arn": "Arn", "s-Sub": "Sub"}
    assert findings.changed_exports(deployed, rendered, kept, old, new) == ["s-Arn", "s-MediaBucketName", "s-Sub"]
    assert findings.changed_exports(deployed, gate.as_deployed(rendered, pairs), kept, old, new) == []
    moved = {**rendered, "Sub": {"Value": {"Fn::Sub": "${LogBucket}"}}}  # a value that does change still does
    assert findings.changed_exports(deployed, gate.as_deployed(moved, pairs), kept, old, new) == ["s-Sub"]


def test_a_key_is_paired_by_the_alias_that_points_at_it():
    deployed = {"Resources": {"EncryptionKey": key(), "EncryptionKeyAlias": alias("EncryptionKey")}}
    rendered = {"Resources": {"StorageKey": key(), "EncryptionKeyAlias": alias("StorageKey")}}
    pairs = gate.recognise(deployed, rendered, *resolvers({"EncryptionKey": "1234abcd"}))
    assert [(p.old, p.new, p.identity, p.physical_id, p.safe) for p in pairs] == [
        ("EncryptionKey", "StorageKey", "alias/acme-dev-storage", "1234abcd", True)]


def test_a_rename_that_also_changes_a_create_only_property_is_not_a_plain_rename():
    deployed = {"Resources": {"OldTable": table("sessions")}}
    rendered = {"Resources": {"NewTable": table("sessions", key="id")}}
    pairs = gate.recognise(deployed, rendered, *resolvers({"OldTable": "sessions"}))
    assert len(pairs) == 1 and "KeySchema" in pairs[0].problem
    (finding,) = gate.rename_findings(pairs, "dev", False)
    assert finding.kind == "stateful-change" and "KeySchema" in finding.detail


def test_a_rename_with_a_type_change_is_not_a_rename():
    deployed = {"Resources": {"OldTable": table("sessions")}}
    rendered = {"Resources": {"NewTable": {"Type": "AWS::DynamoDB::GlobalTable", "Properties": {"TableName": "sessions"}}}}
    (pair,) = gate.recognise(deployed, rendered, *resolvers({"OldTable": "sessions"}))
    assert "type changes too" in pair.problem and not pair.safe


def test_no_rename_without_exactly_one_resource_taking_the_name():
    deployed = {"Resources": {"MediaBucket": bucket("media-1")}}
    assert gate.recognise(deployed, {"Resources": {"Other": bucket("media-2")}}, *resolvers()) == []
    two = {"Resources": {"A": bucket("media-1"), "B": bucket("media-1")}}
    assert gate.recognise(deployed, two, *resolvers()) == []
    unresolved = {"Resources": {"A": bucket({"Ref": "Unknown"})}}
    assert gate.recognise(deployed, unresolved, *resolvers()) == []


# --- the stack policy ---------------------------------------------------------------------------

OTHERS = ["FrontendBucket", "LogArchiveBucket", "MetricsArchiveBucket", "BackendArtifactsBucket",
          "FrontendArtifactsBucket", "SessionsTable", "EncryptionKey"]


def render_policy(new="UploadsBucket"):
    return json.loads(json.dumps(POLICY).replace('"LogicalResourceId/MediaBucket"', f'"LogicalResourceId/{new}"'))


def test_the_guard_policy_protects_old_as_new_is():
    guard = rename.guard_policy(render_policy(), [("MediaBucket", "UploadsBucket")])
    for action in ("Update:Delete", "Update:Replace"):
        assert rename.denies(guard, action, "MediaBucket") and rename.denies(guard, action, "UploadsBucket")
        assert all(rename.denies(guard, action, other) for other in OTHERS)
    assert not rename.denies(guard, "Update:Modify", "MediaBucket")


def test_the_relaxed_policy_allows_only_the_delete_of_old():
    guard = rename.guard_policy(render_policy(), [("MediaBucket", "UploadsBucket")])
    relaxed = rename.relaxed_policy(guard, ["MediaBucket"])
    assert not rename.denies(relaxed, "Update:Delete", "MediaBucket")
    assert rename.denies(relaxed, "Update:Replace", "MediaBucket")  # still never replaced
    for other in OTHERS + ["UploadsBucket"]:
        assert rename.denies(relaxed, "Update:Delete", other) and rename.denies(relaxed, "Update:Replace", other), other
    assert rename.relaxed_policy(relaxed, ["MediaBucket"]) == relaxed  # a resumed run relaxes nothing more


def test_an_update_wildcard_keeps_modify_and_replace_denied():
    policy = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "Update:*", "Resource": ["LogicalResourceId/A", "LogicalResourceId/B"]}]}
    relaxed = rename.relaxed_policy(policy, ["A"])
    assert [rename.denies(relaxed, a, "A") for a in ("Update:Modify", "Update:Replace", "Update:Delete")] == [True, True, False]
    assert all(rename.denies(relaxed, a, "B") for a in ("Update:Modify", "Update:Replace", "Update:Delete"))


@pytest.mark.parametrize("statement", [
    {"Effect": "Deny", "Principal": "*", "Action": "Update:Delete", "Resource": "*"},
    {"Effect": "Deny", "Principal": "*", "Action": "Update:Delete", "Resource": "LogicalResourceId/Media*"},
    {"Effect": "Deny", "Principal": "*", "Action": "Update:Delete", "NotResource": "LogicalResourceId/Other"},
    {"Effect": "Deny", "Principal": "*", "Action": "Update:*", "Resource": "*",
     "Condition": {"StringEquals": {"ResourceType": ["AWS::S3::Bucket"]}}},
])
def test_a_policy_that_cannot_be_narrowed_to_old_is_refused(statement):
    with pytest.raises(rename.NotRelaxable):
        rename.relaxed_policy({"Statement": [statement]}, ["MediaBucket"])


# --- the command: arguments, refusals, steps ----------------------------------------------------

@pytest.mark.parametrize("arguments, problem", [
    (["MediaBucket"], "expected OLD=NEW"), (["MediaBucket=Media-Bucket"], "expected OLD=NEW"), (["=New"], "expected OLD=NEW"),
    (["A=A"], "the same logical id"), (["A=B", "B=C"], "named twice"),
])
def test_bad_arguments_are_refused_naming_the_argument(arguments, problem):
    with pytest.raises(UserError, match=problem) as raised:
        rename.parse(arguments)
    assert raised.value.status == 2


def surveyed(logical_id, state, owner_id=None, physical="media-1", kind="AWS::S3::Bucket"):
    owner = inventory.Owner(STACK, owner_id, kind) if owner_id else None
    return inventory.Surveyed(inventory.NamedResource(naming.STORAGE, logical_id, kind, physical), state, owner)


def facts(deployed=DEPLOYED, rendered=RENDERED, held=HELD, items=None, importers=None, render_exports=None):
    old, new = resolvers(held)
    items = items if items is not None else {"UploadsBucket": surveyed("UploadsBucket", inventory.OTHER_OWNER, "MediaBucket")}
    outputs = {"MediaBucketName": f"{STACK}-MediaBucketName"}
    return rename.Facts(STACK, deployed, rendered, dict(held), items, outputs, importers or {},
                        render_exports if render_exports is not None else {f"{STACK}-MediaBucketName"}, old, new)


def test_a_rename_in_the_stack_plans_guard_retain_remove_import():
    f = facts()
    (target,) = rename.assess(f, [("MediaBucket", "UploadsBucket")])
    assert (target.state, target.physical_id, target.reason) == ("in-stack", "media-1", "")
    steps = rename.plan_steps(f, [target])
    assert [(s.kind, s.resources) for s in steps] == [
        ("guard", ["MediaBucket"]), ("retain", ["MediaBucket", "MediaBucketPolicy"]),
        ("remove", ["MediaBucket", "MediaBucketPolicy"]), ("import", ["media-1 -> UploadsBucket"])]


def test_a_retained_resource_needs_no_retain_step():
    deployed = {"Resources": {"OldTable": table("sessions")}}
    rendered = {"Resources": {"NewTable": table("sessions")}}
    f = facts(deployed, rendered, {"OldTable": "sessions"},
              {"NewTable": surveyed("NewTable", inventory.OTHER_OWNER, "OldTable", "sessions", "AWS::DynamoDB::Table")})
    targets = rename.assess(f, [("OldTable", "NewTable")])
    assert [s.kind for s in rename.plan_steps(f, targets)] == ["guard", "remove", "import"]


def test_a_second_run_resumes_from_what_is_deployed():
    after_removal = {k: v for k, v in HELD.items() if k not in ("MediaBucket", "MediaBucketPolicy")}
    f = facts(held=after_removal, items={"UploadsBucket": surveyed("UploadsBucket", inventory.ORPHAN)})
    targets = rename.assess(f, [("MediaBucket", "UploadsBucket")])
    assert targets[0].state == "removed"
    assert [s.kind for s in rename.plan_steps(f, targets)] == ["import"]
    finished = {**after_removal, "UploadsBucket": "media-1"}
    f = facts(held=finished, items={"UploadsBucket": surveyed("UploadsBucket", inventory.OURS, "UploadsBucket")})
    targets = rename.assess(f, [("MediaBucket", "UploadsBucket")])
    assert targets[0].state == "done" and rename.plan_steps(f, targets) == []


@pytest.mark.parametrize("case, requested, reason", [
    ("new not rendered", [("MediaBucket", "Nowhere")], "Nowhere is not in the storage render"),
    ("old still rendered", [("LogBucket", "UploadsBucket")], "LogBucket is still in the storage render"),
    ("not stateful", [("MediaBucket", "MediaBucketPolicy")], "not a stateful resource"),
])
def test_refusals_from_the_render(case, requested, reason):
    (target,) = rename.assess(facts(), requested)
    assert target.state == "refused" and reason in target.reason, case


def test_a_new_that_already_exists_in_the_stack_is_refused():
    held = {**HELD, "UploadsBucket": "media-2"}
    (target,) = rename.assess(facts(held=held), [("MediaBucket", "UploadsBucket")])
    assert target.state == "refused" and "already exists in the deployed stack" in target.reason


def test_a_type_change_is_refused():
    rendered = {"Resources": {**RENDERED["Resources"], "UploadsBucket": {"Type": "AWS::S3Express::DirectoryBucket",
                                                                       "Properties": {"BucketName": "media-1"}}}}
    (target,) = rename.assess(facts(rendered=rendered), [("MediaBucket", "UploadsBucket")])
    assert target.state == "refused" and "type change" in target.reason


def test_a_create_only_change_is_refused_with_the_property():
    deployed = {"Resources": {"OldTable": table("sessions")}}
    rendered = {"Resources": {"NewTable": table("sessions", key="id")}}
    f = facts(deployed, rendered, {"OldTable": "sessions"},
              {"NewTable": surveyed("NewTable", inventory.OTHER_OWNER, "OldTable", "sessions", "AWS::DynamoDB::Table")})
    (target,) = rename.assess(f, [("OldTable", "NewTable")])
    assert target.state == "refused" and "KeySchema" in target.reason


def test_a_new_naming_another_resource_is_not_a_rename():
    items = {"UploadsBucket": surveyed("UploadsBucket", inventory.OTHER_OWNER, "LogBucket")}
    (target,) = rename.assess(facts(items=items), [("MediaBucket", "UploadsBucket")])
    assert target.state == "refused" and "not a rename" in target.reason
    held = {k: v for k, v in HELD.items() if k != "MediaBucket"}
    (target,) = rename.assess(facts(held=held, items={"UploadsBucket": surveyed("UploadsBucket", inventory.FREE)}),
                              [("MediaBucket", "UploadsBucket")])
    assert target.state == "refused" and "nothing to rename" in target.reason


def test_an_export_in_use_that_the_render_drops_is_refused_with_the_order():
    f = facts(importers={f"{STACK}-MediaBucketName": ["acme-dev-backend"]}, render_exports={f"{STACK}-UploadsBucketName"})
    targets = rename.assess(f, [("MediaBucket", "UploadsBucket")])
    (problem,) = rename.export_problems(f, targets, "dev", False)
    assert "acme-dev-backend" in problem and "keep output MediaBucketName" in problem
    assert "python deploy.py rename MediaBucket=UploadsBucket --env dev" in problem
    # kept by the render, or imported by nobody: the rename keeps its value, apply moves it
    assert rename.export_problems(facts(importers={f"{STACK}-MediaBucketName": ["acme-dev-backend"]}), targets, "dev", False) == []
    assert rename.export_problems(facts(render_exports=set()), targets, "dev", False) == []


# --- the removal step on AWS's answers (Stubber): the policy relaxed only around it -----------------

class Ws:
    env, local, region, account_id = "dev", False, REGION, ACCOUNT
    stacks = {naming.STORAGE: {"name": STACK}}

    def stack_policy(self):
        return render_policy()


CS = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/deploy-py-abc/1111"
NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.timezone.utc)


def stack(status):
    return {"Stacks": [{"StackName": STACK, "StackStatus": status, "CreationTime": NOW,
                        "Capabilities": ["CAPABILITY_IAM"], "Parameters": [], "Tags": [{"Key": "app", "Value": "acme"}]}]}


def summaries(ids):
    return {"StackResourceSummaries": [{"LogicalResourceId": i, "PhysicalResourceId": HELD[i], "ResourceType": "AWS::S3::Bucket",
                                        "LastUpdatedTimestamp": NOW, "ResourceStatus": "UPDATE_COMPLETE"} for i in ids]}


def expect_policy(cfn, policy):
    cfn.add_response("set_stack_policy", {}, {"StackName": STACK, "StackPolicyBody": json.dumps(policy)})
    cfn.add_response("get_stack_policy", {"StackPolicyBody": json.dumps(policy)}, {"StackName": STACK})


def expect_removal_up_to_execute(cfn, deployed, relaxed):
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    cfn.add_response("get_template", {"TemplateBody": json.dumps(deployed)}, {"StackName": STACK, "TemplateStage": "Original"})
    expect_policy(cfn, relaxed)  # relaxed before the change set runs ...
    cfn.add_response("create_change_set", {"Id": CS}, None)
    removal = {"ChangeSetId": CS, "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": [
        {"Type": "Resource", "ResourceChange": {"Action": "Remove", "LogicalResourceId": lid, "PolicyAction": "Retain",
                                                "ResourceType": "AWS::S3::Bucket"}} for lid in ("MediaBucket", "MediaBucketPolicy")]}
    cfn.add_response("describe_change_set", removal, None)  # the waiter
    cfn.add_response("describe_change_set", removal, None)
    cfn.add_response("describe_stack_events", {"StackEvents": [{"StackId": "s", "EventId": "e0", "StackName": STACK,
                                                                "Timestamp": NOW}]}, None)
    cfn.add_response("execute_change_set", {}, None)


def retained(template):
    result = json.loads(json.dumps(template))
    for lid in ("MediaBucket", "MediaBucketPolicy"):
        result["Resources"][lid].update(DeletionPolicy="Retain", UpdateReplacePolicy="Retain")
    return result


def moving():
    (target,) = rename.assess(facts(), [("MediaBucket", "UploadsBucket")])
    return [target]


def test_the_removal_runs_under_the_relaxed_policy_then_the_renders_is_restored(stub, no_real_aws):
    cfn = stub("cloudformation")
    guard = rename.guard_policy(render_policy(), [("MediaBucket", "UploadsBucket")])
    expect_removal_up_to_execute(cfn, retained(DEPLOYED), rename.relaxed_policy(guard, ["MediaBucket"]))
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    cfn.add_response("list_stack_resources", summaries(["LogBucket", "SessionsTable"]), {"StackName": STACK})
    expect_policy(cfn, render_policy())  # ... and the render's (naming NEW) once OLD has left
    lines = []
    rename.run_step(Ws(), Step("remove", naming.STORAGE, ""), moving(), lines.append)
    cfn.assert_no_pending_responses()
    assert any("remove: UPDATE_COMPLETE" in line for line in lines)


def test_a_removal_aws_refuses_leaves_old_protected_again(stub, no_real_aws):
    """On AWS a stack policy that still denied the delete fails the update and rolls it back
    (the emulator does not enforce stack policies): the tool reports it, and OLD, still in
    the stack, gets the guard policy back."""
    cfn = stub("cloudformation")
    guard = rename.guard_policy(render_policy(), [("MediaBucket", "UploadsBucket")])
    expect_removal_up_to_execute(cfn, retained(DEPLOYED), rename.relaxed_policy(guard, ["MediaBucket"]))
    cfn.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK})
    denied = {"StackId": "s", "EventId": "e1", "StackName": STACK, "Timestamp": NOW + datetime.timedelta(seconds=5),
              "LogicalResourceId": "MediaBucket", "ResourceStatus": "UPDATE_FAILED", "ResourceType": "AWS::S3::Bucket",
              "ResourceStatusReason": "Action denied by stack policy: Statement [#1] does not allow [Update:Delete] "
                                      "for resource [LogicalResourceId/MediaBucket]"}
    cfn.add_response("describe_stack_events", {"StackEvents": [denied]}, None)
    cfn.add_response("list_stack_resources", summaries(list(HELD)), {"StackName": STACK})
    expect_policy(cfn, guard)
    with pytest.raises(rename.Refused, match="denied by stack policy"):
        rename.run_step(Ws(), Step("remove", naming.STORAGE, ""), moving(), lambda _: None)
    cfn.assert_no_pending_responses()


def test_nothing_is_removed_that_the_stack_would_delete(stub, no_real_aws):
    cfn = stub("cloudformation")
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    cfn.add_response("get_template", {"TemplateBody": json.dumps(DEPLOYED)}, {"StackName": STACK, "TemplateStage": "Original"})
    with pytest.raises(rename.Refused, match="not retained"):
        rename.run_step(Ws(), Step("remove", naming.STORAGE, ""), moving(), lambda _: None)
    cfn.assert_no_pending_responses()  # no policy was relaxed, no change set made


def test_a_value_left_literal_by_the_removal_equals_the_getatt_it_stands_for():
    """After a rename the deployed outputs are literals until apply: check compares them with
    the render's GetAtt of NEW by one table of GetAtt values (gate/attributes.py), the table
    the literals are written from."""
    from tooling.deploy.gate.replacement import resolver_for, same_value
    from tooling.deploy.recover import literals

    rendered = {"Resources": {"SessionStore": table("sessions"), "StorageKey": key(), "UploadsBucket": bucket("media-1")}}
    new = resolver_for(rendered, STACK, ACCOUNT, REGION, physical={"SessionStore": "sessions", "StorageKey": "1234abcd",
                                                                   "UploadsBucket": "media-1"})
    for lid, kind, name, attribute in (("SessionStore", "AWS::DynamoDB::Table", "sessions", "Arn"),
                                       ("StorageKey", "AWS::KMS::Key", "1234abcd", "Arn"),
                                       ("UploadsBucket", "AWS::S3::Bucket", "media-1", "RegionalDomainName")):
        written = literals.literal(kind, name, attribute, REGION, ACCOUNT)
        assert same_value(written, {"Fn::GetAtt": [lid, attribute]}, Resolver(), new) is True, lid
    assert literals.literal("AWS::DynamoDB::Table", "sessions", "Arn", REGION, ACCOUNT) == \
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/sessions"
