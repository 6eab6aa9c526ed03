"""The inventory of named resources (tooling/deploy/gate/inventory.py): names resolved
from templates, classification, and ownership by type and exact physical id,
proven against AWS's own answers replayed with botocore's Stubber (no network)."""
from __future__ import annotations

import datetime as dt

import pytest
from botocore.stub import Stubber

from aws_stubs import REGION
from conftest import ACCOUNT, load_template
from tooling.aws import lookups
from tooling.deploy.gate import inventory, replacement
from tooling.deploy import states
from tooling.deploy.gate.inventory import NamedResource, Owner

pytestmark = pytest.mark.usefixtures("no_real_aws")

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
EXISTS, MISSING = lookups.EXISTS, lookups.MISSING


# --- fixtures ---------------------------------------------------------------------------

class _Serial:
    """A ThreadPoolExecutor stand-in: survey's lookups run in order, so that the
    stubbed answers (consumed in order, per client) meet the calls they answer."""

    def __init__(self, max_workers=None):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return [fn(item) for item in items]


@pytest.fixture
def serial(monkeypatch):
    monkeypatch.setattr(inventory, "ThreadPoolExecutor", _Serial)


def not_owned(cf: Stubber, physical: str) -> None:
    """AWS's answer to DescribeStackResources for a physical id no stack holds."""
    cf.add_client_error("describe_stack_resources", service_error_code="ValidationError",
                        service_message=f"Stack for {physical} does not exist", http_status_code=400,
                        expected_params={"PhysicalResourceId": physical})


def held_by(cf: Stubber, physical: str, resources: list[dict]) -> None:
    cf.add_response("describe_stack_resources", {"StackResources": resources}, {"PhysicalResourceId": physical})


def stack_resource(stack: str, logical_id: str, rtype: str, physical: str, status: str = "UPDATE_COMPLETE") -> dict:
    return {"StackName": stack, "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/1",
            "LogicalResourceId": logical_id, "PhysicalResourceId": physical, "ResourceType": rtype,
            "Timestamp": T0, "ResourceStatus": status}


def function_exists(lam: Stubber, name: str) -> None:
    lam.add_response("get_function", {"Configuration": {"FunctionName": name}}, {"FunctionName": name})


def log_group_exists(logs: Stubber, name: str) -> None:
    logs.add_response("describe_log_groups", {"logGroups": [{"logGroupName": name}]}, {"logGroupNamePrefix": name})


# --- named_resources -------------------------------------------------------------------------

TEMPLATE = {
    "Parameters": {"Env": {"Type": "String", "Default": "dev"}, "Suffix": {"Type": "String"}},
    "Resources": {
        "Media": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "media-123456789012"}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": {"Fn::Sub": "sessions-${Env}"}}},
        "Topic": {"Type": "AWS::SNS::Topic",
                  "Properties": {"TopicName": {"Fn::Sub": "${AWS::StackName}-alarms-${AWS::Region}-${AWS::AccountId}"}}},
        "Fn": {"Type": "AWS::Serverless::Function",
               "Properties": {"FunctionName": {"Fn::Sub": ["${AWS::StackName}-${Part}", {"Part": {"Ref": "Env"}}]}}},
        "FnLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${Fn}"}}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": {"Fn::Sub": "app-${Suffix}"}}},
        "Unnamed": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": {"Status": "Enabled"}}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
        "Permission": {"Type": "AWS::Lambda::Permission", "Properties": {"FunctionName": "f", "Action": "lambda:InvokeFunction"}},
    },
}


def test_named_resources_resolves_literals_subs_defaults_and_pseudo_parameters():
    found = inventory.named_resources("backend", "app-dev-backend", TEMPLATE, ACCOUNT, REGION)
    assert found == [
        NamedResource("backend", "Media", "AWS::S3::Bucket", "media-123456789012"),
        NamedResource("backend", "Table", "AWS::DynamoDB::Table", "sessions-dev"),
        NamedResource("backend", "Topic", "AWS::SNS::Topic", f"app-dev-backend-alarms-{REGION}-{ACCOUNT}"),
        NamedResource("backend", "Fn", "AWS::Serverless::Function", "app-dev-backend-dev"),
        NamedResource("backend", "FnLogs", "AWS::Logs::LogGroup", ""),  # ${Fn}: a resource, known only after the deploy
        NamedResource("backend", "Role", "AWS::IAM::Role", ""),  # ${Suffix}: a parameter without a default
    ]
    assert found[3].deployed_type == "AWS::Lambda::Function"
    assert found[0].deployed_type == "AWS::S3::Bucket"


def test_an_unresolved_name_is_unknown_and_never_looked_up(stub, serial):
    resources = [r for r in inventory.named_resources("backend", "app-dev-backend", TEMPLATE, ACCOUNT, REGION) if not r.name]
    assert [r.logical_id for r in resources] == ["FnLogs", "Role"]
    # stubbed clients with no answers: any call would fail the lookup with another reason
    logs, iam, cf = stub("logs"), stub("iam"), stub("cloudformation")
    surveyed = inventory.survey(resources, {"backend": "app-dev-backend"}, REGION, ACCOUNT)
    assert [(s.state, s.reason) for s in surveyed] == [("unknown", "its name cannot be resolved before the deploy")] * 2
    for stubber in (logs, iam, cf):
        stubber.assert_no_pending_responses()


# --- classify ---------------------------------------------------------------------------------

FN = NamedResource("backend", "Fn", "AWS::Serverless::Function", "app-dev-fn")


@pytest.mark.parametrize("lookup,owner,owner_known,state", [
    (MISSING, None, True, inventory.FREE),
    (EXISTS, Owner("app-dev-backend", "Fn", "AWS::Lambda::Function"), True, inventory.OURS),
    (EXISTS, Owner("app-dev-webhook", "Fn", "AWS::Lambda::Function"), True, inventory.OTHER_OWNER),  # another stack
    (EXISTS, Owner("app-dev-backend", "OldFn", "AWS::Lambda::Function"), True, inventory.OTHER_OWNER),  # same stack, other id
    (EXISTS, None, True, inventory.ORPHAN),
    (lookups.Lookup("foreign", "S3 answers 403"), None, True, inventory.FOREIGN),
    (lookups.Lookup("unknown", "AWS GetFunction: AccessDeniedException: no"), None, True, inventory.UNKNOWN),
    (EXISTS, None, False, inventory.UNKNOWN),
    (EXISTS, Owner("app-dev-backend", "Fn", "AWS::Lambda::Function"), False, inventory.UNKNOWN),
])
def test_classify(lookup, owner, owner_known, state):
    surveyed = inventory.classify(FN, "app-dev-backend", lookup, owner, owner_known)
    assert surveyed.state == state
    assert surveyed.owner == (owner if state in (inventory.OURS, inventory.OTHER_OWNER) else None)
    if state == inventory.UNKNOWN:
        assert surveyed.reason == (lookup.reason if lookup.state == "unknown" else "its owner could not be established")
    if state == inventory.FOREIGN:
        assert surveyed.reason == "S3 answers 403"


def test_classify_keeps_unsupported_and_an_unresolved_name_is_unknown():
    unsupported = lookups.Lookup("unknown", "this endpoint does not implement it", unsupported=True)
    assert inventory.classify(FN, "app-dev-backend", unsupported, None).unsupported is True
    nameless = NamedResource("backend", "Fn", "AWS::Serverless::Function", "")
    surveyed = inventory.classify(nameless, "app-dev-backend", EXISTS, Owner("app-dev-backend", "Fn", "AWS::Lambda::Function"))
    assert (surveyed.state, surveyed.owner) == (inventory.UNKNOWN, None)
    assert surveyed.as_json()["state"] == "unknown" and surveyed.as_json()["owner"] is None


# --- physical_id ------------------------------------------------------------------------------

def test_physical_id_of_a_topic_is_its_arn():
    assert inventory.physical_id("AWS::SNS::Topic", "alarms", ACCOUNT, "eu-west-1") == f"arn:aws:sns:eu-west-1:{ACCOUNT}:alarms"
    for rtype in ("AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::Logs::LogGroup", "AWS::IAM::Role"):
        assert inventory.physical_id(rtype, "alarms", ACCOUNT, "eu-west-1") == "alarms"


def test_survey_asks_the_owner_of_a_topic_by_its_arn(stub, serial):
    sns, cf = stub("sns"), stub("cloudformation")
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:app-dev-alarms"
    sns.add_response("get_topic_attributes", {"Attributes": {"TopicArn": arn}}, {"TopicArn": arn})
    held_by(cf, arn, [stack_resource("app-dev-operations", "AlarmTopic", "AWS::SNS::Topic", arn)])
    topic = NamedResource("operations", "AlarmTopic", "AWS::SNS::Topic", "app-dev-alarms")
    [surveyed] = inventory.survey([topic], {"operations": "app-dev-operations"}, REGION, ACCOUNT)
    assert (surveyed.state, surveyed.owner) == (inventory.OURS, Owner("app-dev-operations", "AlarmTopic", "AWS::SNS::Topic"))
    sns.assert_no_pending_responses()
    cf.assert_no_pending_responses()


# --- ownership: by type and exact physical id ---------------------------------------------------

def test_a_function_is_not_owned_through_its_log_group(stub, serial):
    """Some stack owns the log group /aws/lambda/x; the function x itself is held by
    no stack (AWS says so in its own words): the function is an orphan."""
    lam, logs, cf = stub("lambda"), stub("logs"), stub("cloudformation")
    group = NamedResource("backend", "FnLogs", "AWS::Logs::LogGroup", "/aws/lambda/x")
    function = NamedResource("backend", "Fn", "AWS::Serverless::Function", "x")
    log_group_exists(logs, "/aws/lambda/x")
    held_by(cf, "/aws/lambda/x", [stack_resource("app-dev-backend", "FnLogs", "AWS::Logs::LogGroup", "/aws/lambda/x")])
    function_exists(lam, "x")
    not_owned(cf, "x")
    surveyed = inventory.survey([group, function], {"backend": "app-dev-backend"}, REGION, ACCOUNT)
    assert [s.state for s in surveyed] == [inventory.OURS, inventory.ORPHAN]
    assert surveyed[1].owner is None
    for stubber in (lam, logs, cf):
        stubber.assert_no_pending_responses()


def emulator_cannot_tell(cf: Stubber, physical: str) -> None:
    """The local AWS's answer to every DescribeStackResources by physical id."""
    cf.add_client_error("describe_stack_resources", service_error_code="ValidationError",
                        service_message="Stack [] does not exist", http_status_code=400,
                        expected_params={"PhysicalResourceId": physical})


def live_stacks(cf: Stubber, resources: dict[str, list[dict]]) -> None:
    cf.add_response("list_stacks", {"StackSummaries": [
        {"StackName": name, "CreationTime": T0, "StackStatus": "UPDATE_COMPLETE"} for name in resources]},
        {"StackStatusFilter": states.LIVE_STATUSES})
    for name, held in resources.items():
        cf.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": r["LogicalResourceId"], "PhysicalResourceId": r["PhysicalResourceId"],
             "ResourceType": r["ResourceType"], "LastUpdatedTimestamp": T0, "ResourceStatus": r["ResourceStatus"]}
            for r in held]}, {"StackName": name})


def test_fallback_map_owns_by_type_and_exact_id_and_is_built_once(stub):
    cf = stub("cloudformation")
    emulator_cannot_tell(cf, "x")
    live_stacks(cf, {
        "app-dev-backend": [stack_resource("app-dev-backend", "FnLogs", "AWS::Logs::LogGroup", "/aws/lambda/x"),
                            stack_resource("app-dev-backend", "FnRole", "AWS::IAM::Role", "x"),
                            stack_resource("app-dev-backend", "Gone", "AWS::Lambda::Function", "y", "DELETE_COMPLETE")],
        "app-dev-webhook": [stack_resource("app-dev-webhook", "Hook", "AWS::Lambda::Function", "x-other")],
    })
    emulator_cannot_tell(cf, "/aws/lambda/x")
    emulator_cannot_tell(cf, "y")
    owners = inventory.Owners(REGION)
    # neither the log group /aws/lambda/x, nor a role named x, nor a function x-other owns function x
    assert owners.owner("AWS::Lambda::Function", "x") is None
    assert owners.owner("AWS::Logs::LogGroup", "/aws/lambda/x") == Owner("app-dev-backend", "FnLogs", "AWS::Logs::LogGroup")
    assert owners.owner("AWS::Lambda::Function", "y") is None  # deleted from its stack
    cf.assert_no_pending_responses()  # ListStacks was asked once, for all three


def test_survey_falls_back_to_the_map_on_the_emulators_answer(stub, serial):
    lam, cf = stub("lambda"), stub("cloudformation")
    function_exists(lam, "x")
    emulator_cannot_tell(cf, "x")
    live_stacks(cf, {"app-dev-backend": [stack_resource("app-dev-backend", "FnLogs", "AWS::Logs::LogGroup", "/aws/lambda/x")]})
    function_exists(lam, "hook")
    emulator_cannot_tell(cf, "hook")
    surveyed = inventory.survey([NamedResource("backend", "Fn", "AWS::Serverless::Function", "x"),
                                 NamedResource("webhook", "Hook", "AWS::Lambda::Function", "hook")],
                                {"backend": "app-dev-backend", "webhook": "app-dev-webhook"}, REGION, ACCOUNT)
    assert [s.state for s in surveyed] == [inventory.ORPHAN, inventory.ORPHAN]
    lam.assert_no_pending_responses()
    cf.assert_no_pending_responses()


def test_owner_from_aws_answer(stub):
    cf = stub("cloudformation")
    held_by(cf, "media-123456789012", [stack_resource("app-dev-storage", "Media", "AWS::S3::Bucket", "media-123456789012")])
    held_by(cf, "old-bucket", [stack_resource("app-dev-storage", "Old", "AWS::S3::Bucket", "old-bucket", "DELETE_SKIPPED")])
    live_stacks(cf, {"app-dev-storage": [stack_resource("app-dev-storage", "Media", "AWS::S3::Bucket", "media-123456789012")]})
    owners = inventory.Owners(REGION)
    assert owners.owner("AWS::S3::Bucket", "media-123456789012") == Owner("app-dev-storage", "Media", "AWS::S3::Bucket")
    # retained by a delete: no longer that stack's, and no live stack holds it either
    assert owners.owner("AWS::S3::Bucket", "old-bucket") is None
    cf.assert_no_pending_responses()


def test_a_name_held_under_another_type_is_looked_up_further(stub, serial):
    """A BucketPolicy's physical id is its bucket's name. Asked for the bucket
    acme-dev-media, AWS may answer with the old stack whose policy holds that id; the
    bucket itself is the storage stack's. That answer is no proof of "no owner"."""
    s3, cf = stub("s3"), stub("cloudformation")
    s3.add_response("head_bucket", {"BucketRegion": REGION}, {"Bucket": "acme-dev-media"})
    held_by(cf, "acme-dev-media", [stack_resource("acme-old-media", "MediaPolicy", "AWS::S3::BucketPolicy", "acme-dev-media"),
                                   stack_resource("acme-old-media", "Other", "AWS::S3::Bucket", "acme-dev-other")])
    live_stacks(cf, {"acme-old-media": [stack_resource("acme-old-media", "MediaPolicy", "AWS::S3::BucketPolicy", "acme-dev-media")],
                     "acme-dev-storage": [stack_resource("acme-dev-storage", "MediaBucket", "AWS::S3::Bucket", "acme-dev-media")]})
    [surveyed] = inventory.survey([NamedResource("storage", "MediaBucket", "AWS::S3::Bucket", "acme-dev-media")],
                                  {"storage": "acme-dev-storage"}, REGION, ACCOUNT)
    s3.assert_no_pending_responses()
    cf.assert_no_pending_responses()
    assert (surveyed.state, surveyed.owner) == (inventory.OURS, Owner("acme-dev-storage", "MediaBucket", "AWS::S3::Bucket"))


def test_a_name_held_only_under_another_type_is_an_orphan_once_looked_up(stub, serial):
    s3, cf = stub("s3"), stub("cloudformation")
    s3.add_response("head_bucket", {"BucketRegion": REGION}, {"Bucket": "acme-dev-media"})
    policy = stack_resource("acme-old-media", "MediaPolicy", "AWS::S3::BucketPolicy", "acme-dev-media")
    held_by(cf, "acme-dev-media", [policy])
    live_stacks(cf, {"acme-old-media": [policy]})
    [surveyed] = inventory.survey([NamedResource("storage", "MediaBucket", "AWS::S3::Bucket", "acme-dev-media")],
                                  {"storage": "acme-dev-storage"}, REGION, ACCOUNT)
    cf.assert_no_pending_responses()
    assert (surveyed.state, surveyed.owner) == (inventory.ORPHAN, None)


# DescribeStackResources(PhysicalResourceId=...) answers with every resource of the stack
# that holds the id (AWS API reference), not only the one resource: the owner is the
# resource of that type AND that physical id. (The emulator never answers this call, so
# only these stubbed answers cover it.)


def test_owner_is_the_resource_with_that_physical_id_not_the_first_of_its_type(stub, serial):
    """A stack holding two functions: AWS answers a query for the second with both."""
    lam, cf = stub("lambda"), stub("cloudformation")
    both = [stack_resource("app-dev-backend", "CreateSessionFunction", "AWS::Lambda::Function", "app-dev-create-session"),
            stack_resource("app-dev-backend", "GetSessionFunction", "AWS::Lambda::Function", "app-dev-get-session"),
            stack_resource("app-dev-backend", "GetSessionLogGroup", "AWS::Logs::LogGroup", "/aws/lambda/app-dev-get-session")]
    function_exists(lam, "app-dev-get-session")
    held_by(cf, "app-dev-get-session", both)
    resource = NamedResource("backend", "GetSessionFunction", "AWS::Serverless::Function", "app-dev-get-session")
    [surveyed] = inventory.survey([resource], {"backend": "app-dev-backend"}, REGION, ACCOUNT)
    lam.assert_no_pending_responses()
    cf.assert_no_pending_responses()
    assert surveyed.owner == Owner("app-dev-backend", "GetSessionFunction", "AWS::Lambda::Function")
    assert surveyed.state == inventory.OURS


def test_an_orphan_is_not_owned_by_the_stack_holding_another_resource_of_that_name(stub, serial):
    """Function x exists outside any stack; the backend stack holds a role named x and
    its function Fn under an older name. AWS answers the query for x with the whole stack."""
    lam, cf = stub("lambda"), stub("cloudformation")
    function_exists(lam, "x")
    held_by(cf, "x", [stack_resource("app-dev-backend", "FnRole", "AWS::IAM::Role", "x"),
                      stack_resource("app-dev-backend", "Fn", "AWS::Lambda::Function", "x-old-name")])
    # held there only as a role: looked up further, in every live stack, by type and id
    live_stacks(cf, {"app-dev-backend": [stack_resource("app-dev-backend", "FnRole", "AWS::IAM::Role", "x"),
                                         stack_resource("app-dev-backend", "Fn", "AWS::Lambda::Function", "x-old-name")]})
    resource = NamedResource("backend", "Fn", "AWS::Serverless::Function", "x")
    [surveyed] = inventory.survey([resource], {"backend": "app-dev-backend"}, REGION, ACCOUNT)
    lam.assert_no_pending_responses()
    cf.assert_no_pending_responses()
    assert (surveyed.state, surveyed.owner) == (inventory.ORPHAN, None)


# --- survey end to end ----------------------------------------------------------------------

def test_survey_an_existing_unowned_log_group_is_an_orphan(stub, serial):
    # Stubbed on purpose: the local emulator silently takes over an existing log group
    # when a stack creates it, instead of failing "already exists" as AWS does, so no
    # emulator run can show the harm. Only AWS's own answers (the group is listed;
    # DescribeStackResources says "Stack for /aws/lambda/fn does not exist") prove
    # that the check finds the orphan and blocks the create.
    logs, cf = stub("logs"), stub("cloudformation")
    logs.add_response("describe_log_groups", {"logGroups": [{"logGroupName": "/aws/lambda/fn", "retentionInDays": 30}]},
                      {"logGroupNamePrefix": "/aws/lambda/fn"})
    not_owned(cf, "/aws/lambda/fn")
    resource = NamedResource("backend", "FnLogGroup", "AWS::Logs::LogGroup", "/aws/lambda/fn")
    [surveyed] = inventory.survey([resource], {"backend": "app-dev-backend"}, REGION, ACCOUNT)
    assert (surveyed.state, surveyed.owner) == (inventory.ORPHAN, None)
    logs.assert_no_pending_responses()
    cf.assert_no_pending_responses()


def test_survey_free_foreign_and_failed_owner_lookup(stub, serial):
    lam, s3, cf = stub("lambda"), stub("s3"), stub("cloudformation")
    lam.add_client_error("get_function", service_error_code="ResourceNotFoundException",
                         service_message=f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:new-fn",
                         http_status_code=404, expected_params={"FunctionName": "new-fn"})
    s3.add_client_error("head_bucket", service_error_code="403", service_message="Forbidden", http_status_code=403,
                        expected_params={"Bucket": "taken-name"})
    s3.add_response("list_buckets", {"Buckets": [], "Owner": {"ID": "owner"}}, {"Prefix": "taken-name"})  # not this account's
    function_exists(lam, "fn")
    cf.add_client_error("describe_stack_resources", service_error_code="AccessDenied", http_status_code=403,
                        service_message="User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
                                        "cloudformation:DescribeStackResources")
    resources = [NamedResource("backend", "New", "AWS::Lambda::Function", "new-fn"),
                 NamedResource("storage", "Media", "AWS::S3::Bucket", "taken-name"),
                 NamedResource("backend", "Fn", "AWS::Lambda::Function", "fn")]
    surveyed = inventory.survey(resources, {"backend": "app-dev-backend", "storage": "app-dev-storage"}, REGION, ACCOUNT)
    assert [s.state for s in surveyed] == [inventory.FREE, inventory.FOREIGN, inventory.UNKNOWN]
    assert surveyed[2].reason.startswith("owner lookup failed: AWS DescribeStackResources: AccessDenied: ")
    for stubber in (lam, s3, cf):  # neither the free nor the foreign resource asked for an owner
        stubber.assert_no_pending_responses()


def test_survey_runs_in_parallel_and_keeps_the_order(monkeypatch):
    """survey's real pool: results come back in the order of the resources."""
    monkeypatch.setattr(inventory.lookups, "lookup", lambda region, account, rtype, name: MISSING)
    resources = [NamedResource("backend", f"L{i}", "AWS::Logs::LogGroup", f"/g/{i}") for i in range(20)]
    surveyed = inventory.survey(resources, {"backend": "app-dev-backend"}, REGION, ACCOUNT)
    assert [s.resource for s in surveyed] == resources and {s.state for s in surveyed} == {inventory.FREE}


# --- guard over the real renders ------------------------------------------------------------

def _created_names(template: dict, schemas: dict) -> list[tuple[str, str, str]]:
    """(logical id, type, property) for every createOnly top-level *Name property set."""
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        rtype = resource.get("Type")
        schema = schemas.get(rtype)
        if not schema:
            continue
        properties = resource.get("Properties") or {}
        for pointer in schema.get("createOnly", []):
            parts = pointer.split("/")
            if len(parts) == 3 and parts[1] == "properties" and parts[2].endswith("Name") and parts[2] in properties:
                found.append((logical_id, rtype, parts[2]))
    return found


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_created_name_in_the_renders_is_surveyed_or_declared_not_global(rendered, env):
    out, manifest = rendered[env]
    schemas = replacement.schemas()
    checked, missed = 0, []
    for stack in manifest["stacks"]:
        template = load_template(out, manifest, stack["key"])
        for logical_id, rtype, prop in _created_names(template, schemas):
            checked += 1
            if inventory.NAME_PROPERTIES.get(rtype) != prop and rtype not in inventory.NOT_GLOBAL_NAMES:
                missed.append(f"{stack['key']}/{logical_id} {rtype}.{prop}")
    assert checked > 20  # the guard did look at the renders
    assert not missed, "names neither surveyed (inventory.NAME_PROPERTIES) nor declared not global (NOT_GLOBAL_NAMES): " + ", ".join(missed)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_name_in_the_renders_resolves(rendered, env):
    """A name the inventory cannot resolve is 'unknown' (blocking) on every run."""
    out, manifest = rendered[env]
    unresolved = [f"{r.stack}/{r.logical_id}" for stack in manifest["stacks"]
                  for r in inventory.named_resources(stack["key"], stack["name"], load_template(out, manifest, stack["key"]),
                                                     manifest["account_id"], manifest["region"]) if not r.name]
    assert unresolved == []


def test_every_named_type_has_a_lookup():
    for rtype in inventory.NAME_PROPERTIES:
        assert inventory.DEPLOYED_TYPE.get(rtype, rtype) in lookups.LOOKUPS, rtype
    assert not set(inventory.NAME_PROPERTIES) & set(inventory.NOT_GLOBAL_NAMES)


def test_a_key_is_named_by_the_alias_that_points_at_it():
    template = {"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "KeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": "alias/app-storage", "TargetKeyId": {"Ref": "Key"}}},
        "Loose": {"Type": "AWS::KMS::Key", "Properties": {}},  # no alias: nothing can find it once no stack holds it
    }}
    named = inventory.named_resources("storage", "app-storage", template, "123456789012", "us-east-1")
    assert [(r.logical_id, r.type, r.name, r.by_alias) for r in named] == [
        ("KeyAlias", "AWS::KMS::Alias", "alias/app-storage", False), ("Key", "AWS::KMS::Key", "alias/app-storage", True)]
