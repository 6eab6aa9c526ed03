"""tooling/deploy/gate/findings.py: what check finds, as plain data.

Covers every finding kind and its override, stack-state findings, named-resource
findings for each inventory state, the export contract (including the order of
deploys it prints), the stateful gate, change set outcomes, change set vs schema
disagreements, and by_kind's split into blocking, overridden and notes."""
from __future__ import annotations

import re

import shlex

import pytest

from tooling.deploy import changes, states
from tooling.deploy.gate import findings, inventory
from tooling.deploy.gate.findings import Finding
from tooling.deploy.gate.replacement import Resolver
from tooling.render import naming

ENV = "dev"
STORAGE_NAME = "acme-dev-storage"


# --- kinds and overrides ---------------------------------------------------------------------

def test_every_kind_is_listed_and_only_orphan_and_unknown_can_be_overridden():
    assert set(findings.OVERRIDES) == {"stack-state", "orphan", "other-owner", "foreign", "unknown",
                                       "export-in-use", "stateful-change", "change-set", "unprotected", "drift", "rename"}
    assert {k: v for k, v in findings.OVERRIDES.items() if v} == {"orphan": "--allow-orphans", "unknown": "--allow-unknown"}


@pytest.mark.parametrize("kind", sorted(findings.OVERRIDES))
def test_finding_override_and_json(kind):
    f = Finding(kind, "storage", "subject", "detail", "fix")
    assert f.override == findings.OVERRIDES[kind]
    assert f.blocking is True
    assert f.as_json() == {"kind": kind, "stack": "storage", "subject": "subject", "detail": "detail", "fix": "fix",
                           "blocking": True, "override": findings.OVERRIDES[kind]}


def test_unknown_kind_has_no_override_entry():
    with pytest.raises(KeyError):
        Finding("made-up", "s", "x", "d", "f").override


def test_command_line():
    assert findings.command("dev", False, "apply", "--only", "backend") == "python deploy.py apply --only backend --env dev"
    assert findings.command("prod", True, "adopt") == "python deploy.py adopt --env prod --local"


# --- stack states ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", sorted(s for s, row in states.TABLE.items() if row.action == states.RECOVER))
def test_state_finding_recover(status):
    stuck = ["MediaBucket", "SessionsTable"]
    f = findings.state_finding("storage", STORAGE_NAME, states.TABLE[status], stuck)
    assert f.kind == "stack-state" and f.blocking and f.override is None
    assert f.stack == "storage" and f.subject == STORAGE_NAME
    assert status in f.detail
    assert "MediaBucket, SessionsTable" in f.detail
    assert f.fix == states.recovery(STORAGE_NAME, status, stuck)


def test_state_finding_recover_without_stuck_resources_names_none():
    f = findings.state_finding("storage", STORAGE_NAME, states.TABLE["UPDATE_ROLLBACK_FAILED"], [])
    assert "stuck on" not in f.detail
    assert f.fix == f"aws cloudformation continue-update-rollback --stack-name {STORAGE_NAME}"


def test_state_finding_busy():
    f = findings.state_finding("backend", "acme-dev-backend", states.TABLE["UPDATE_IN_PROGRESS"], [])
    assert f.kind == "stack-state" and f.blocking
    assert "UPDATE_IN_PROGRESS" in f.detail
    assert "wait" in f.fix


def test_state_finding_unknown():
    f = findings.state_finding("backend", "acme-dev-backend", states.state_of({"StackStatus": "SOMETHING_NEW"}), [])
    assert f.kind == "stack-state" and f.blocking
    assert "SOMETHING_NEW" in f.detail
    assert "describe-stack-events --stack-name acme-dev-backend" in f.fix


@pytest.mark.parametrize("state", [states.TABLE["UPDATE_COMPLETE"], states.TABLE["UPDATE_ROLLBACK_COMPLETE"],
                                   states.TABLE["ROLLBACK_COMPLETE"], states.TABLE["DELETE_COMPLETE"], states.NO_STACK],
                         ids=lambda s: s.status)
def test_state_finding_none_for_states_a_deploy_acts_on(state):
    assert findings.state_finding("backend", "acme-dev-backend", state, ["X"]) is None


# --- named resources ----------------------------------------------------------------------------

def surveyed(state, stack="storage", logical_id="MediaBucket", kind="AWS::S3::Bucket", name="acme-dev-media",
             owner=None, reason="", unsupported=False) -> inventory.Surveyed:
    return inventory.Surveyed(inventory.NamedResource(stack, logical_id, kind, name), state, owner, reason, unsupported)


@pytest.mark.parametrize("local", [False, True])
def test_orphan_bucket_in_storage_is_adopted(local):
    f = findings.resource_finding(surveyed(inventory.ORPHAN), STORAGE_NAME, ENV, local)
    assert f.kind == "orphan" and f.override == "--allow-orphans" and f.blocking
    assert f.subject == "AWS::S3::Bucket acme-dev-media"
    assert "deploy.py adopt --env dev" in f.fix
    assert ("--local" in f.fix) is local
    assert "storage/MediaBucket" in f.detail


def test_orphan_table_in_storage_is_adopted():
    item = surveyed(inventory.ORPHAN, logical_id="SessionsTable", kind="AWS::DynamoDB::Table", name="acme-dev-sessions")
    assert "deploy.py adopt --env dev" in findings.resource_finding(item, STORAGE_NAME, ENV, False).fix


def test_orphan_of_a_stateless_stack_is_taken_over():
    item = surveyed(inventory.ORPHAN, stack="backend", logical_id="ApiLogs", kind="AWS::Logs::LogGroup", name="/acme/dev/api")
    f = findings.resource_finding(item, "acme-dev-backend", ENV, False)
    assert f.kind == "orphan" and f.stack == "backend"
    command = "python deploy.py apply --only backend --allow-orphans --env dev"
    assert f.fix.endswith(command)
    assert shlex.split(f.fix.split(": ", 1)[1]) == ["python", "deploy.py", "apply", "--only", "backend", "--allow-orphans", "--env", "dev"]
    assert "adopt" not in f.fix


def test_orphan_non_stateful_in_storage_is_not_adopted():
    item = surveyed(inventory.ORPHAN, logical_id="AccessLogs", kind="AWS::Logs::LogGroup", name="/acme/dev/access")
    f = findings.resource_finding(item, STORAGE_NAME, ENV, True)
    assert f.fix.endswith("python deploy.py apply --only storage --allow-orphans --env dev --local")


def test_other_owner_is_another_stack():
    owner = inventory.Owner("acme-test-storage", "MediaBucket", "AWS::S3::Bucket")
    f = findings.resource_finding(surveyed(inventory.OTHER_OWNER, owner=owner), STORAGE_NAME, ENV, False)
    assert f.kind == "other-owner" and f.override is None and f.blocking
    assert "stack acme-test-storage (MediaBucket)" in f.detail
    assert "another logical id" not in f.detail
    assert "acme-test-storage/MediaBucket" in f.fix
    assert "environments/dev.toml" in f.fix


def test_other_owner_is_this_stack_under_another_logical_id():
    owner = inventory.Owner(STORAGE_NAME, "OldMediaBucket", "AWS::S3::Bucket")
    f = findings.resource_finding(surveyed(inventory.OTHER_OWNER, owner=owner), STORAGE_NAME, ENV, False)
    assert f.kind == "other-owner"
    assert "this stack under another logical id, OldMediaBucket" in f.detail
    assert "stack acme-dev-storage (" not in f.detail


def test_foreign():
    item = surveyed(inventory.FOREIGN, reason="the bucket exists in another account (403)")
    f = findings.resource_finding(item, STORAGE_NAME, ENV, False)
    assert f.kind == "foreign" and f.override is None and f.blocking
    assert f.detail.startswith("the bucket exists in another account (403)")
    assert "environments/dev.toml" in f.fix


@pytest.mark.parametrize("local,unsupported,blocking", [
    (False, False, True),
    (False, True, True),   # on AWS an unsupported lookup still blocks
    (True, False, True),
    (True, True, False),   # the local AWS lacks the service: a note
])
def test_unknown_blocks_except_unsupported_on_the_local_aws(local, unsupported, blocking):
    item = surveyed(inventory.UNKNOWN, kind="AWS::CloudWatch::MetricStream", name="s", reason="AccessDenied", unsupported=unsupported)
    f = findings.resource_finding(item, STORAGE_NAME, ENV, local)
    assert f.kind == "unknown" and f.override == "--allow-unknown"
    assert f.blocking is blocking
    assert "AccessDenied" in f.detail
    assert ("a note on the local AWS" in f.detail) is (not blocking)


def test_unknown_with_unresolved_name_uses_the_logical_id():
    f = findings.resource_finding(surveyed(inventory.UNKNOWN, name=""), STORAGE_NAME, ENV, False)
    assert f.subject == "AWS::S3::Bucket MediaBucket"


@pytest.mark.parametrize("state", [inventory.FREE, inventory.OURS])
def test_free_and_ours_find_nothing(state):
    owner = inventory.Owner(STORAGE_NAME, "MediaBucket", "AWS::S3::Bucket") if state == inventory.OURS else None
    assert findings.resource_finding(surveyed(state, owner=owner), STORAGE_NAME, ENV, False) is None


# --- the export contract -------------------------------------------------------------------------

KEYS_OF = {"acme-dev-backend": "backend", "acme-dev-webhook": "webhook", "acme-dev-storage": "storage"}
EXPORT = "acme-dev-media-bucket"


def test_removed_export_imported_by_others_deploys_the_importers_first():
    found = findings.export_findings("storage", [EXPORT], [], {EXPORT: ["acme-dev-webhook", "acme-dev-backend"]}, {},
                                     KEYS_OF, ENV, False)
    assert len(found) == 1
    f = found[0]
    assert f.kind == "export-in-use" and f.override is None and f.blocking
    assert f.stack == "storage" and f.subject == EXPORT
    assert "removes" in f.detail and "acme-dev-backend, acme-dev-webhook" in f.detail
    assert "python deploy.py apply --only backend webhook --env dev" in f.fix  # keys, sorted by stack name
    assert "--only acme-dev" not in f.fix
    assert f.fix.endswith("then deploy storage")


def test_changed_export_value_and_local_flag():
    found = findings.export_findings("storage", [], [EXPORT], {EXPORT: ["acme-dev-backend"]}, {}, KEYS_OF, ENV, True)
    assert len(found) == 1
    assert "changes the value of" in found[0].detail
    assert "python deploy.py apply --only backend --env dev --local" in found[0].fix


def test_importer_waiting_for_a_new_export_neither_order_works():
    found = findings.export_findings("storage", [EXPORT], [], {EXPORT: ["acme-dev-backend"]}, {}, KEYS_OF, ENV, False,
                                     waiting_for_new={"acme-dev-backend"})
    fix = found[0].fix
    assert "neither order works" in fix
    assert "acme-dev-backend need(s) the new export" in fix
    assert "python deploy.py apply --only backend --env dev" in fix
    # the three steps, in order
    assert fix.index("1)") < fix.index("2)") < fix.index("3)")


def test_importer_whose_render_still_imports_it():
    found = findings.export_findings("storage", [EXPORT], [], {EXPORT: ["acme-dev-backend", "acme-dev-webhook"]},
                                     {EXPORT: {"acme-dev-webhook"}}, KEYS_OF, ENV, False)
    fix = found[0].fix
    assert fix.startswith("the new render still imports it in acme-dev-webhook:")
    assert "acme-dev-backend" not in fix.split(":")[0]
    assert "deploy.py apply" not in fix


def test_unknown_importer_stack_keeps_its_name():
    found = findings.export_findings("storage", [EXPORT], [], {EXPORT: ["someone-else"]}, {}, KEYS_OF, ENV, False)
    assert "--only someone-else --env dev" in found[0].fix


def test_export_without_importers_finds_nothing():
    assert findings.export_findings("storage", [EXPORT, "other"], ["third"], {EXPORT: [], "x": ["acme-dev-backend"]},
                                    {}, KEYS_OF, ENV, False) == []


def test_one_finding_per_export_in_use():
    found = findings.export_findings("storage", ["a", "b"], ["c"], {"a": ["acme-dev-backend"], "c": ["acme-dev-webhook"]},
                                     {}, KEYS_OF, ENV, False)
    assert [(f.subject, "removes" in f.detail) for f in found] == [("a", True), ("c", False)]


def test_changed_exports_compared_resolved():
    resolver = Resolver(variables={"AWS::Partition": "aws"}, physical={"Media": "acme-dev-media"}, types={"Media": "AWS::S3::Bucket"})
    deployed = {"Name": {"Value": "acme-dev-media"}, "Arn": {"Value": "arn:aws:s3:::acme-dev-media"}, "Other": {"Value": "x"}}
    rendered = {"Name": {"Value": {"Ref": "Media"}}, "Arn": {"Value": {"Fn::GetAtt": ["Media", "Arn"]}}, "Other": {"Value": "y"}}
    kept = {"e-name": "Name", "e-arn": "Arn", "e-other": "Other"}
    assert findings.changed_exports(deployed, rendered, kept, resolver, resolver) == ["e-other"]
    # an unresolvable value written differently counts as changed
    rendered["Name"] = {"Value": {"Ref": "Missing"}}
    assert findings.changed_exports(deployed, rendered, kept, resolver, resolver) == ["e-name", "e-other"]


# --- the stateful gate ---------------------------------------------------------------------------

def storage_template(**resources) -> dict:
    base = {
        "MediaBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "acme-dev-media"}},
        "SessionsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": "acme-dev-sessions", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}},
        "ApiLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/acme/dev/api"}},
    }
    base.update(resources)
    return {"Resources": {k: v for k, v in base.items() if v is not None}}


def gate(deployed, rendered):
    return findings.stateful_findings(deployed, rendered, Resolver(), Resolver())


def test_removing_a_bucket_is_a_stateful_change():
    found = gate(storage_template(), storage_template(MediaBucket=None))
    assert [(f.kind, f.subject, f.stack) for f in found] == [("stateful-change", "AWS::S3::Bucket MediaBucket", naming.STORAGE)]
    assert "removes" in found[0].detail and found[0].override is None


def test_key_schema_change_may_replace():
    table = storage_template()["Resources"]["SessionsTable"]
    changed = {**table, "Properties": {**table["Properties"], "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}}
    found = gate(storage_template(), storage_template(SessionsTable=changed))
    assert len(found) == 1
    assert found[0].kind == "stateful-change"
    assert "may replace" in found[0].detail
    assert "KeySchema" in found[0].fix


def test_table_name_change_replaces():
    table = storage_template()["Resources"]["SessionsTable"]
    changed = {**table, "Properties": {**table["Properties"], "TableName": "acme-dev-sessions-v2"}}
    found = gate(storage_template(), storage_template(SessionsTable=changed))
    assert len(found) == 1
    assert "the new render replaces it" in found[0].detail
    assert "TableName" in found[0].fix


def test_logging_configuration_change_finds_nothing():
    changed = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "acme-dev-media",
                                                         "LoggingConfiguration": {"DestinationBucketName": "acme-dev-logs"}}}
    assert gate(storage_template(), storage_template(MediaBucket=changed)) == []


def test_non_stateful_resources_are_ignored():
    renamed = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/acme/dev/api-2"}}
    assert gate(storage_template(), storage_template(ApiLogs=renamed)) == []
    assert gate(storage_template(), storage_template(ApiLogs=None)) == []


def test_unresolvable_create_only_difference_is_unknown():
    changed = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::GetAtt": ["X", "Y"]}}}
    found = gate(storage_template(), storage_template(MediaBucket=changed))
    assert [(f.kind, f.override) for f in found] == [("unknown", "--allow-unknown")]
    assert "BucketName" in found[0].detail


def test_unchanged_storage_finds_nothing():
    assert gate(storage_template(), storage_template()) == []


def test_unchanged_stateful_resource_without_a_schema_finds_nothing():
    simple = {"Type": "AWS::Serverless::SimpleTable", "Properties": {"PrimaryKey": {"Name": "id", "Type": "String"}}}
    assert gate(storage_template(Simple=simple), storage_template(Simple=simple)) == []


# --- change sets ---------------------------------------------------------------------------------

def test_change_set_ready():
    assert findings.change_set_outcome({"Status": "CREATE_COMPLETE", "StatusReason": "ignored"}) == ("ready", "")


@pytest.mark.parametrize("reason", [
    "The submitted information didn't contain changes. Submit different information to create a change set.",
    "No updates are to be performed.",
])
def test_change_set_without_changes(reason):
    assert findings.change_set_outcome({"Status": "FAILED", "StatusReason": reason}) == ("no-changes", reason)


@pytest.mark.parametrize("reason,expected", [
    ("Requires capabilities : [CAPABILITY_IAM]", "Requires capabilities : [CAPABILITY_IAM]"),
    (None, "no reason given"),
])
def test_change_set_failed(reason, expected):
    assert findings.change_set_outcome({"Status": "FAILED", "StatusReason": reason}) == ("failed", expected)


def test_change_set_unfinished():
    outcome, reason = findings.change_set_outcome({"Status": "CREATE_IN_PROGRESS"})
    assert outcome == "unfinished" and "CREATE_IN_PROGRESS" in reason
    assert findings.change_set_outcome({})[0] == "unfinished"


def test_change_set_finding():
    failed = findings.change_set_finding("backend", "acme-dev-backend", "failed", "Template error")
    assert failed.kind == "change-set" and failed.blocking and failed.override is None
    assert "Template error" in failed.detail and failed.subject == "acme-dev-backend"
    unfinished = findings.change_set_finding("backend", "acme-dev-backend", "unfinished", "still CREATE_PENDING")
    assert unfinished.kind == "unknown" and unfinished.override == "--allow-unknown"
    assert findings.change_set_finding("backend", "acme-dev-backend", "ready", "") is None
    assert findings.change_set_finding("backend", "acme-dev-backend", "no-changes", "x") is None


# --- change set vs schema ------------------------------------------------------------------------

def logging_change(replacement_flag: str):
    deployed = storage_template()
    rendered = storage_template(MediaBucket={"Type": "AWS::S3::Bucket", "Properties": {
        "BucketName": "acme-dev-media", "LoggingConfiguration": {"DestinationBucketName": "acme-dev-logs"}}})
    change = changes.Change("Modify", "MediaBucket", "AWS::S3::Bucket", replacement_flag)
    return [change], deployed, rendered


def test_disagreement_conditional_flag_on_a_stateless_type_is_a_note():
    deployed = storage_template()
    rendered = storage_template(ApiLogs={"Type": "AWS::Logs::LogGroup",
                                         "Properties": {"LogGroupName": "/acme/dev/api", "RetentionInDays": 30}})
    change = changes.Change("Modify", "ApiLogs", "AWS::Logs::LogGroup", "Conditional")
    notes = findings.disagreements([change], deployed, rendered, Resolver(), Resolver())
    assert len(notes) == 1
    note = notes[0]
    assert (note["logical_id"], note["type"], note["change_set"], note["schema"]) == ("ApiLogs", "AWS::Logs::LogGroup", "Conditional", "none")
    assert "Replacement=Conditional" in note["text"]
    assert "schema says modify" in note["text"]
    assert note["text"].endswith("the schema decides")


def test_a_stateful_type_gets_no_disagreement_note_but_a_finding():
    """What a change set says of a bucket is never settled by a note (see the change-set rule below)."""
    change_list, deployed, rendered = logging_change("Conditional")
    assert findings.disagreements(change_list, deployed, rendered, Resolver(), Resolver()) == []
    found = findings.change_set_stateful_findings(naming.STORAGE, change_list, deployed, rendered, Resolver(), Resolver(), local=False)
    assert [(f.kind, f.blocking) for f in found] == [("stateful-change", True)]


def test_agreement_gives_no_note():
    change_list, deployed, rendered = logging_change("False")
    assert findings.disagreements(change_list, deployed, rendered, Resolver(), Resolver()) == []
    table = deployed["Resources"]["SessionsTable"]
    renamed = storage_template(SessionsTable={**table, "Properties": {**table["Properties"], "TableName": "t2"}})
    agree = [changes.Change("Modify", "SessionsTable", "AWS::DynamoDB::Table", "True")]
    assert findings.disagreements(agree, deployed, renamed, Resolver(), Resolver()) == []


def test_disagreements_skip_non_modify_and_unshared_resources():
    deployed, rendered = storage_template(), storage_template(MediaBucket=None)
    change_list = [changes.Change("Remove", "MediaBucket", "AWS::S3::Bucket", ""),
                   changes.Change("Modify", "NewThing", "AWS::S3::Bucket", "True"),
                   changes.Change("Modify", "ApiLogs", "AWS::S3::Bucket", "True")]  # type differs from the template's
    assert findings.disagreements(change_list, deployed, rendered, Resolver(), Resolver()) == []


# --- by_kind -------------------------------------------------------------------------------------

def test_by_kind():
    orphan = Finding("orphan", "backend", "o", "d", "f")
    unknown = Finding("unknown", "storage", "u", "d", "f")
    state = Finding("stack-state", "storage", "s", "d", "f")
    note = Finding("unknown", "operations", "n", "d", "f", blocking=False)
    every = [orphan, unknown, state, note]

    assert findings.by_kind(every, set()) == ([orphan, unknown, state], [], [note])
    assert findings.by_kind(every, {"--allow-orphans"}) == ([unknown, state], [orphan], [note])
    assert findings.by_kind(every, {"--allow-orphans", "--allow-unknown"}) == ([state], [orphan, unknown], [note])
    # no flag overrides a kind without one
    assert findings.by_kind([state], {"--allow-orphans", "--allow-unknown", "--force"}) == ([state], [], [])


# --- the gate fails closed: resolved values, conditions, what the change set says -------------

PREFIXED = {
    "Parameters": {"Prefix": {"Type": "String", "Default": "a"}},
    "Resources": {"SessionsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": {"Fn::Sub": "${Prefix}-sessions"}, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}},
}


def with_values(template: dict, **values) -> Resolver:
    from tooling.deploy.gate import replacement
    return replacement.resolver_for(template, STORAGE_NAME, "123456789012", "us-east-1", values)


def test_a_create_only_value_driven_by_a_changed_parameter_is_a_stateful_change():
    """TableName: !Sub ${Prefix}-sessions, written the same, Prefix a -> b: the table is replaced."""
    found = findings.stateful_findings(PREFIXED, PREFIXED, with_values(PREFIXED, Prefix="a"), with_values(PREFIXED, Prefix="b"))
    assert [(f.kind, f.subject) for f in found] == [("stateful-change", "AWS::DynamoDB::Table SessionsTable")]
    assert "replaces" in found[0].detail and "TableName" in found[0].detail
    assert findings.stateful_findings(PREFIXED, PREFIXED, with_values(PREFIXED, Prefix="a"), with_values(PREFIXED, Prefix="a")) == []


def test_a_parameter_whose_value_cannot_be_known_is_unknown_not_unchanged():
    no_default = {**PREFIXED, "Parameters": {"Prefix": {"Type": "String"}}}
    found = findings.stateful_findings(no_default, no_default, with_values(no_default, Prefix="a"), with_values(no_default))
    assert [(f.kind, f.blocking) for f in found] == [("unknown", True)]


CONDITIONAL = {
    "Parameters": {"Env": {"Type": "String", "Default": "dev"}, "Archive": {"Type": "String", "Default": "yes"}},
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "WantsArchive": {"Fn::Equals": [{"Ref": "Archive"}, "yes"]},
        "KeepArchive": {"Fn::Or": [{"Condition": "IsProd"}, {"Fn::And": [{"Condition": "WantsArchive"},
                                                                         {"Fn::Not": [{"Condition": "IsProd"}]}]}]},
    },
    "Resources": {"ArchiveBucket": {"Type": "AWS::S3::Bucket", "Condition": "KeepArchive",
                                    "Properties": {"BucketName": "acme-dev-archive"}}},
}


@pytest.mark.parametrize("before,after,removed", [
    ({"Archive": "yes"}, {"Archive": "no"}, True),  # And/Not/Or/Condition refs turn false
    ({"Archive": "yes"}, {"Archive": "yes"}, False),
    ({"Archive": "no", "Env": "prod"}, {"Archive": "no", "Env": "prod"}, False),
    ({"Archive": "no", "Env": "prod"}, {"Archive": "no", "Env": "dev"}, True),
    ({"Archive": "no"}, {"Archive": "yes"}, False),  # not deployed before: nothing is removed
])
def test_a_stateful_resource_whose_condition_turns_false_is_removed(before, after, removed):
    found = findings.stateful_findings(CONDITIONAL, CONDITIONAL, with_values(CONDITIONAL, **before), with_values(CONDITIONAL, **after))
    if removed:
        assert [(f.kind, f.subject, f.blocking) for f in found] == [("stateful-change", "AWS::S3::Bucket ArchiveBucket", True)]
        assert "KeepArchive is false" in found[0].detail
    else:
        assert found == []


@pytest.mark.parametrize("condition", [
    {"Fn::Equals": [{"Fn::Select": [0, ["a"]]}, "a"]},  # a function conditions are not evaluated with here
    {"Condition": "Undefined"},
    {"Fn::Equals": [{"Ref": "NoSuchParameter"}, "x"]},
])
def test_a_condition_that_cannot_be_evaluated_is_unknown_and_blocks(condition):
    template = {**CONDITIONAL, "Conditions": {**CONDITIONAL["Conditions"], "KeepArchive": condition}}
    kept = {**template, "Conditions": {**template["Conditions"], "KeepArchive": {"Fn::Equals": ["a", "a"]}}}
    found = findings.stateful_findings(kept, template, with_values(kept), with_values(template))
    assert [(f.kind, f.blocking, f.override) for f in found] == [("unknown", True, "--allow-unknown")]
    assert "KeepArchive" in found[0].detail


def change(action: str, replacement_flag: str = "", kind: str = "AWS::S3::Bucket", logical_id: str = "MediaBucket"):
    return changes.Change(action, logical_id, kind, replacement_flag if action == "Modify" else "")


@pytest.mark.parametrize("local", [False, True])
def test_the_change_set_saying_remove_or_replace_blocks_whatever_the_schema_says(local):
    """The schema says a LoggingConfiguration change is in place; the change set says
    Replacement True (or Remove): that blocks, on AWS and on the local AWS alike."""
    change_list, deployed, rendered = logging_change("True")
    found = findings.change_set_stateful_findings(naming.STORAGE, change_list + [change("Remove", logical_id="SessionsTable",
                                                                                         kind="AWS::DynamoDB::Table")],
                                                  deployed, rendered, Resolver(), Resolver(), local)
    assert [(f.kind, f.subject, f.blocking, f.override) for f in found] == [
        ("stateful-change", "AWS::S3::Bucket MediaBucket", True, None),
        ("stateful-change", "AWS::DynamoDB::Table SessionsTable", True, None)]
    assert "replaces it" in found[0].detail and "removes it" in found[1].detail


def test_a_conditional_replacement_where_the_schema_says_modify_is_a_note_on_the_local_aws_only():
    change_list, deployed, rendered = logging_change("Conditional")
    on_aws = findings.change_set_stateful_findings(naming.STORAGE, change_list, deployed, rendered, Resolver(), Resolver(), local=False)
    assert [(f.kind, f.blocking) for f in on_aws] == [("stateful-change", True)]
    assert findings.disagreements(change_list, deployed, rendered, Resolver(), Resolver(), local=False) == []
    here = findings.change_set_stateful_findings(naming.STORAGE, change_list, deployed, rendered, Resolver(), Resolver(), local=True)
    assert here == []
    [note] = findings.disagreements(change_list, deployed, rendered, Resolver(), Resolver(), local=True)
    assert (note["logical_id"], note["change_set"], note["schema"]) == ("MediaBucket", "Conditional", "none")
    assert "the schema decides" in note["text"] and "on the local AWS only; on AWS this blocks" in note["text"]
    # Replacement True stays a finding on the local AWS too, never a note
    true_flag, _, _ = logging_change("True")
    assert findings.disagreements(true_flag, deployed, rendered, Resolver(), Resolver(), local=True) == []


def test_a_conditional_replacement_the_schema_agrees_with_blocks_on_the_local_aws_too():
    table = storage_template()["Resources"]["SessionsTable"]
    rekeyed = {**table, "Properties": {**table["Properties"], "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}}
    found = findings.change_set_stateful_findings(naming.STORAGE, [change("Modify", "Conditional", "AWS::DynamoDB::Table", "SessionsTable")],
                                                  storage_template(), storage_template(SessionsTable=rekeyed), Resolver(), Resolver(), local=True)
    assert [(f.kind, f.blocking) for f in found] == [("stateful-change", True)]


def test_the_change_set_rule_leaves_stateless_types_and_in_place_changes_alone():
    found = findings.change_set_stateful_findings(
        "backend", [change("Remove", kind="AWS::Logs::LogGroup", logical_id="ApiLogs"), change("Modify", "False"), change("Add")],
        storage_template(), storage_template(), Resolver(), Resolver(), local=False)
    assert found == []


def numbered_steps(fix: str) -> list[str]:
    """A fix's numbered steps, in the order they are printed ("1) ...; 2) ...")."""
    return [step.rstrip("; ") for step in re.split(r"(?:^|; )\d\) ", fix) if step]


@pytest.mark.parametrize("status", ["DELETE_FAILED", "IMPORT_ROLLBACK_FAILED", "ROLLBACK_FAILED"])
def test_storage_that_can_only_be_deleted_is_deleted_then_adopted_then_applied(status):
    state = states.TABLE[status]
    finding = findings.state_finding("storage", "app-dev-storage", state, ["MediaBucketPolicy"], "dev", True)
    steps = numbered_steps(finding.fix)
    assert len(steps) == 4, steps
    # in the order they run: CloudFormation deletes no stack with termination protection on
    assert steps[0].endswith("aws cloudformation update-termination-protection --no-enable-termination-protection "
                             "--stack-name app-dev-storage")
    assert "delete-stack --stack-name app-dev-storage" in steps[1]
    # DeleteStack returns before the delete ends: adopt must not start while it is in progress
    assert steps[1].endswith("aws cloudformation wait stack-delete-complete --stack-name app-dev-storage")
    assert "continue-update-rollback" not in finding.fix
    assert steps[2:] == ["python deploy.py adopt --env dev --local", "python deploy.py apply --env dev --local"]
    other = findings.state_finding("backend", "app-dev-backend", state, [], "dev", True)
    assert "deploy.py adopt" not in other.fix  # only storage holds what adopt takes back


@pytest.mark.parametrize("status", ["DELETE_FAILED", "IMPORT_ROLLBACK_FAILED", "ROLLBACK_FAILED"])
def test_storage_whose_exports_are_imported_has_its_importers_deleted_before_it(status):
    finding = findings.state_finding("storage", "app-dev-storage", states.TABLE[status], [], "dev", False,
                                     importers=["app-dev-webhook", "app-dev-backend"])
    steps = numbered_steps(finding.fix)
    assert len(steps) == 5, steps
    # CloudFormation deletes no stack whose exports another stack imports
    assert "app-dev-backend, app-dev-webhook" in steps[1] and steps[1].endswith("python deploy.py destroy --env dev")
    assert "delete-stack --stack-name app-dev-storage" in steps[2]
    assert steps[3:] == ["python deploy.py adopt --env dev", "python deploy.py apply --env dev"]
