"""tooling/deploy/gate/replacement.py: whether a change replaces a resource, decided by
its type's CloudFormation registry schema (createOnly / conditionalCreateOnly).

Covers the verdict for the storage stack's types (DynamoDB table, S3 bucket),
values compared resolved (Ref, GetAtt Arn, Fn::Sub against literals), unresolvable
differences, type changes, types with no schema, nested pointers, resolver_for,
and that the bundled schema extract follows the pinned cfn-lint."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tooling.deploy.gate import replacement
from tooling.deploy.gate.replacement import ALWAYS, MAY, NONE, UNKNOWN, Resolver

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
LOGS = "acme-dev-logs"


def res(kind: str, **properties) -> dict:
    return {"Type": kind, "Properties": properties}


def table(**properties) -> dict:
    base = {"TableName": "acme-dev-sessions", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}
    return res("AWS::DynamoDB::Table", **{**base, **properties})


def bucket(**properties) -> dict:
    return res("AWS::S3::Bucket", **{"BucketName": "acme-dev-media", **properties})


def verdict(old: dict, new: dict, old_resolver=None, new_resolver=None):
    return replacement.verdict(new["Type"], old, new, old_resolver, new_resolver)


def logs_resolver() -> Resolver:
    """A stack whose LogsBucket is deployed as acme-dev-logs."""
    return Resolver(variables={"AWS::AccountId": ACCOUNT, "AWS::Region": "us-east-1", "AWS::Partition": "aws"},
                    physical={"LogsBucket": LOGS}, types={"LogsBucket": "AWS::S3::Bucket"})


# --- the storage types --------------------------------------------------------------------

def test_key_schema_change_may_replace_the_table():
    new_keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    v = verdict(table(), table(KeySchema=new_keys))
    assert v.replacement == MAY
    assert v.properties == ("KeySchema",)
    assert v.label == "replace?"
    assert "conditionalCreateOnly" in v.reason


def test_table_name_change_replaces_the_table():
    v = verdict(table(), table(TableName="acme-dev-sessions-2"))
    assert v.replacement == ALWAYS
    assert v.properties == ("TableName",)
    assert v.label == "replace"


def test_table_name_and_key_schema_changes_report_the_worst():
    v = verdict(table(), table(TableName="other", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}]))
    assert v.replacement == ALWAYS and v.properties == ("TableName",)


def test_billing_mode_change_is_in_place():
    assert verdict(table(), table(BillingMode="PROVISIONED")).replacement == NONE


def test_bucket_logging_configuration_change_is_in_place():
    """A change set may flag this Replacement=Conditional; the schema says in place."""
    v = verdict(bucket(), bucket(LoggingConfiguration={"DestinationBucketName": LOGS, "LogFilePrefix": "media/"}))
    assert v.replacement == NONE
    assert v.label == "modify"
    assert v.properties == ()


def test_bucket_name_change_replaces_the_bucket():
    v = verdict(bucket(), bucket(BucketName="acme-dev-media-2"))
    assert v.replacement == ALWAYS and v.properties == ("BucketName",)


def test_unchanged_is_none():
    assert verdict(table(), table()) == replacement.Verdict(NONE)
    assert verdict(bucket(), bucket()).replacement == NONE


def test_key_order_does_not_count_as_a_change():
    old = table(KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    new = table(KeySchema=[{"KeyType": "HASH", "AttributeName": "pk"}])
    assert verdict(old, new).replacement == NONE


def test_type_change_always_replaces():
    v = replacement.verdict("AWS::S3::Bucket", bucket(), res("AWS::S3Express::DirectoryBucket", BucketName="acme-dev-media"))
    assert v.replacement == ALWAYS
    assert v.properties == ("Type",)


def test_type_without_schema_is_unknown():
    v = replacement.verdict("Custom::Thing", res("Custom::Thing", A=1), res("Custom::Thing", A=2))
    assert v.replacement == UNKNOWN
    assert "no registry schema" in v.reason


# --- values compared resolved ------------------------------------------------------------------

def test_ref_and_the_literal_physical_name_are_the_same():
    old = res("AWS::S3::BucketPolicy", Bucket=LOGS, PolicyDocument={})
    new = res("AWS::S3::BucketPolicy", Bucket={"Ref": "LogsBucket"}, PolicyDocument={})
    assert verdict(old, new, logs_resolver(), logs_resolver()).replacement == NONE
    assert verdict(new, old, logs_resolver(), logs_resolver()).replacement == NONE


def test_ref_to_another_physical_name_replaces():
    other = logs_resolver()
    other.physical["LogsBucket"] = "acme-dev-logs-2"
    old = res("AWS::S3::BucketPolicy", Bucket=LOGS)
    new = res("AWS::S3::BucketPolicy", Bucket={"Ref": "LogsBucket"})
    assert verdict(old, new, logs_resolver(), other).replacement == ALWAYS


def test_get_att_arn_of_a_bucket_and_its_literal_arn_are_the_same():
    old = res("AWS::Lambda::Permission", Action="lambda:InvokeFunction", FunctionName="f", Principal="s3.amazonaws.com",
              SourceArn=f"arn:aws:s3:::{LOGS}")
    new = res("AWS::Lambda::Permission", Action="lambda:InvokeFunction", FunctionName="f", Principal="s3.amazonaws.com",
              SourceArn={"Fn::GetAtt": ["LogsBucket", "Arn"]})
    assert verdict(old, new, logs_resolver(), logs_resolver()).replacement == NONE
    dotted = res("AWS::Lambda::Permission", **{**new["Properties"], "SourceArn": {"Fn::GetAtt": "LogsBucket.Arn"}})
    assert verdict(old, dotted, logs_resolver(), logs_resolver()).replacement == NONE


def test_sub_with_account_id_and_the_literal_are_the_same():
    old = table(TableName=f"acme-{ACCOUNT}-sessions")
    new = table(TableName={"Fn::Sub": "acme-${AWS::AccountId}-sessions"})
    assert verdict(old, new, logs_resolver(), logs_resolver()).replacement == NONE


def test_sub_resolving_to_another_value_replaces():
    old = table(TableName="acme-000000000000-sessions")
    new = table(TableName={"Fn::Sub": "acme-${AWS::AccountId}-sessions"})
    assert verdict(old, new, logs_resolver(), logs_resolver()).replacement == ALWAYS


def test_unresolvable_value_written_differently_is_unknown():
    old = table(TableName="acme-dev-sessions")
    new = table(TableName={"Fn::GetAtt": ["X", "Y"]})
    v = verdict(old, new, logs_resolver(), logs_resolver())
    assert v.replacement == UNKNOWN
    assert v.properties == ("TableName",)
    assert v.label == "replace (unknown)"


def test_unresolvable_value_written_the_same_is_unchanged():
    same = table(TableName={"Fn::GetAtt": ["X", "Y"]})
    assert verdict(same, table(TableName={"Fn::GetAtt": ["X", "Y"]})).replacement == NONE


def test_unresolvable_difference_outranks_a_conditional_one():
    old = table()
    new = table(TableName={"Ref": "Missing"}, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    assert verdict(old, new).replacement == UNKNOWN


def test_sub_with_local_variables_and_get_att():
    r = logs_resolver()
    assert r.resolve({"Fn::Sub": ["${Name}-${AWS::AccountId}", {"Name": {"Ref": "LogsBucket"}}]}) == f"{LOGS}-{ACCOUNT}"
    assert r.resolve({"Fn::Sub": "${LogsBucket.Arn}/*"}) == f"arn:aws:s3:::{LOGS}/*"


def test_sub_escaped_literal_resolves_as_cloudformation_does():
    r = Resolver(variables={"X": "1"})
    assert r.resolve({"Fn::Sub": "${!Literal}-${X}"}) == "${Literal}-1"


# --- nested pointers ------------------------------------------------------------------------

def budget(**fields) -> dict:
    base = {"BudgetName": "acme-dev", "BudgetType": "COST", "TimeUnit": "MONTHLY",
            "BudgetLimit": {"Amount": 10, "Unit": "USD"}}
    return res("AWS::Budgets::Budget", Budget={**base, **fields})


def test_nested_pointer_compares_the_nested_value():
    """AWS::Budgets::Budget: /properties/Budget/BudgetName is createOnly, the rest of Budget is not."""
    v = verdict(budget(), budget(BudgetName="acme-dev-2"))
    assert v.replacement == ALWAYS
    assert v.properties == ("Budget/BudgetName",)
    assert verdict(budget(), budget(BudgetLimit={"Amount": 20, "Unit": "USD"})).replacement == NONE


def test_nested_pointer_into_a_list_compares_the_whole_list():
    """/properties/A/*/B is taken at its list A."""
    assert replacement._at({"A": [{"B": 1}, {"B": 2}]}, "/properties/A/*/B") == [{"B": 1}, {"B": 2}]
    assert replacement._at({"A": {"B": {"C": 3}}}, "/properties/A/B/C") == 3
    assert replacement._at({"A": {}}, "/properties/A/B") is None


def test_nested_pointer_under_an_intrinsic_is_not_called_unchanged():
    old = res("AWS::Budgets::Budget", Budget={"Fn::If": ["Prod", {"BudgetName": "a"}, {"BudgetName": "b"}]})
    new = res("AWS::Budgets::Budget", Budget={"Fn::If": ["Prod", {"BudgetName": "c"}, {"BudgetName": "d"}]})
    assert verdict(old, new).replacement != NONE


# --- resolver_for -------------------------------------------------------------------------------

TEMPLATE = {
    "Parameters": {"Env": {"Type": "String", "Default": "dev"}, "Retention": {"Type": "Number", "Default": 14},
                   "NoDefault": {"Type": "String"}},
    "Resources": {"LogsBucket": {"Type": "AWS::S3::Bucket"}, "Table": {"Type": "AWS::DynamoDB::Table"}},
}


def test_resolver_for_uses_parameter_defaults_and_pseudo_parameters():
    r = replacement.resolver_for(TEMPLATE, "acme-dev-storage", ACCOUNT, "eu-west-1")
    assert r.ref("Env") == "dev"
    assert r.ref("Retention") == "14"
    assert r.ref("AWS::StackName") == "acme-dev-storage"
    assert r.ref("AWS::AccountId") == ACCOUNT
    assert r.ref("AWS::Region") == "eu-west-1"
    with pytest.raises(replacement.Unresolved):
        r.ref("NoDefault")
    assert r.types == {"LogsBucket": "AWS::S3::Bucket", "Table": "AWS::DynamoDB::Table"}


def test_resolver_for_given_parameters_override_defaults():
    r = replacement.resolver_for(TEMPLATE, "acme-prod-storage", ACCOUNT, "eu-west-1", parameters={"Env": "prod", "NoDefault": "x"})
    assert r.ref("Env") == "prod"
    assert r.ref("NoDefault") == "x"
    assert r.ref("Retention") == "14"


def test_resolver_for_physical_ids_and_exports():
    r = replacement.resolver_for(TEMPLATE, "s", ACCOUNT, "us-east-1", physical={"LogsBucket": LOGS},
                                 exports={"acme-dev-logs-arn": f"arn:aws:s3:::{LOGS}"})
    assert r.resolve({"Ref": "LogsBucket"}) == LOGS
    assert r.resolve({"Fn::GetAtt": ["LogsBucket", "Arn"]}) == f"arn:aws:s3:::{LOGS}"
    assert r.resolve({"Fn::ImportValue": "acme-dev-logs-arn"}) == f"arn:aws:s3:::{LOGS}"
    assert r.resolve({"Fn::Join": ["-", [{"Ref": "AWS::Region"}, "x"]]}) == "us-east-1-x"
    with pytest.raises(replacement.Unresolved):
        r.resolve({"Fn::ImportValue": "not-exported"})
    with pytest.raises(replacement.Unresolved):
        r.resolve({"Fn::GetAtt": ["Table", "Arn"]})


# --- the schema extract -------------------------------------------------------------------------

def test_schemas_hold_the_storage_types():
    types = replacement.schemas()
    assert "/properties/TableName" in types["AWS::DynamoDB::Table"]["createOnly"]
    assert "/properties/KeySchema" in types["AWS::DynamoDB::Table"]["conditionalCreateOnly"]
    assert "/properties/BucketName" in types["AWS::S3::Bucket"]["createOnly"]


def test_schema_file_follows_the_installed_cfn_lint():
    python = ROOT / ".tools" / "cfn-lint" / "bin" / "python"
    if not python.exists():
        pytest.skip(".tools/cfn-lint is not installed (ci/setup.sh)")
    result = subprocess.run([str(python), "ci/extract_schemas.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_get_att_arn_of_a_key_and_a_table_resolves_from_their_physical_ids():
    resolver = Resolver(variables={"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"},
                        physical={"Key": "1234abcd-12ab", "Table": "sessions"},
                        types={"Key": "AWS::KMS::Key", "Table": "AWS::DynamoDB::Table"})
    assert resolver.resolve({"Fn::GetAtt": ["Key", "Arn"]}) == "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"
    assert resolver.resolve({"Fn::GetAtt": "Table.Arn"}) == "arn:aws:dynamodb:eu-west-1:123456789012:table/sessions"


# --- conditions, Fn::If and AWS::NoValue, with each side's own parameter values ---------------

CORS_TEMPLATE = {
    "Parameters": {"ServedOrigin": {"Type": "String", "Default": ""}},
    "Conditions": {"HasServedOrigin": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ServedOrigin"}, ""]}]}},
    "Resources": {"MediaBucket": {"Type": "AWS::S3::Bucket"}},
}
CORS = {"Fn::If": ["HasServedOrigin", {"CorsRules": [{"AllowedOrigins": [{"Ref": "ServedOrigin"}], "AllowedMethods": ["PUT"]}]},
                   {"Ref": "AWS::NoValue"}]}


def cors_resolver(origin: str | None) -> Resolver:
    values = {} if origin is None else {"ServedOrigin": origin}
    return replacement.resolver_for(CORS_TEMPLATE, "acme-dev-storage", ACCOUNT, "us-east-1", values)


def test_fn_if_takes_the_branch_its_condition_gives():
    """MediaBucket's CORS: !If [HasServedOrigin, {...}, !Ref AWS::NoValue]."""
    served = cors_resolver("https://d1.cloudfront.net")
    assert served.resolve(CORS) == {"CorsRules": [{"AllowedOrigins": ["https://d1.cloudfront.net"], "AllowedMethods": ["PUT"]}]}
    assert cors_resolver(None).resolve({"BucketName": "b", "CorsConfiguration": CORS}) == {"BucketName": "b"}  # NoValue: left out
    assert cors_resolver("").resolve(["x", {"Fn::If": ["HasServedOrigin", "y", {"Ref": "AWS::NoValue"}]}]) == ["x"]


def test_a_value_read_through_a_condition_compares_resolved():
    assert replacement.same_value(CORS, CORS, cors_resolver("https://a.example"), cors_resolver("https://a.example")) is True
    assert replacement.same_value(CORS, CORS, cors_resolver("https://a.example"), cors_resolver("https://b.example")) is False
    assert replacement.same_value(CORS, CORS, cors_resolver(""), cors_resolver("https://b.example")) is False


def test_a_create_only_value_written_the_same_but_resolving_differently_replaces():
    """TableName: !Sub ${Prefix}-sessions, Prefix a -> b."""
    template = {"Parameters": {"Prefix": {"Type": "String"}}, "Resources": {}}
    name = table(TableName={"Fn::Sub": "${Prefix}-sessions"})
    a = replacement.resolver_for(template, "s", ACCOUNT, "us-east-1", {"Prefix": "a"})
    b = replacement.resolver_for(template, "s", ACCOUNT, "us-east-1", {"Prefix": "b"})
    v = verdict(name, name, a, b)
    assert (v.replacement, v.properties) == (ALWAYS, ("TableName",))
    assert verdict(name, name, a, a).replacement == NONE


def test_written_the_same_and_unresolvable_is_unchanged_only_when_its_inputs_agree():
    template = {"Parameters": {"Prefix": {"Type": "String"}}, "Resources": {"Key": {"Type": "AWS::KMS::Key"}}}
    value = {"Fn::Sub": "${Prefix}-${Key.Arn}"}  # the key's ARN is not known offline
    a = replacement.resolver_for(template, "s", ACCOUNT, "us-east-1", {"Prefix": "a"})
    b = replacement.resolver_for(template, "s", ACCOUNT, "us-east-1", {"Prefix": "b"})
    unknown = replacement.resolver_for(template, "s", ACCOUNT, "us-east-1")
    assert replacement.same_value(value, value, a, a) is True
    assert replacement.same_value(value, value, a, b) is None  # the parameter differs, the rest cannot be resolved
    assert replacement.same_value(value, value, a, unknown) is None  # the new value of Prefix is not known


@pytest.mark.parametrize("condition,values,expected", [
    ({"Fn::Equals": [{"Ref": "Env"}, "prod"]}, {"Env": "prod"}, True),
    ({"Fn::Not": [{"Fn::Equals": [{"Ref": "Env"}, "prod"]}]}, {"Env": "prod"}, False),
    ({"Fn::And": [{"Condition": "Other"}, {"Fn::Equals": ["1", 1]}]}, {"Env": "dev"}, True),
    ({"Fn::Or": [{"Fn::Equals": [{"Ref": "Env"}, "prod"]}, {"Condition": "Other"}]}, {"Env": "dev"}, True),
    ({"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}, {}, True),
])
def test_conditions_evaluate(condition, values, expected):
    template = {"Parameters": {"Env": {"Type": "String"}}, "Conditions": {"C": condition, "Other": {"Fn::Equals": ["a", "a"]}}}
    assert replacement.resolver_for(template, "s", ACCOUNT, "us-east-1", values).condition("C") is expected


@pytest.mark.parametrize("condition", [
    {"Fn::Equals": [{"Ref": "Env"}, "prod"]},  # Env has no value
    {"Condition": "Missing"},
    {"Condition": "C"},  # itself
    {"Fn::Equals": [{"Fn::Select": [0, ["a"]]}, "a"]},
    {"Fn::Or": [{"Fn::Equals": ["a", "a"]}, {"Condition": "Missing"}]},  # an unknown operand is unknown, not skipped
])
def test_a_condition_that_cannot_be_evaluated_is_unresolved(condition):
    template = {"Parameters": {"Env": {"Type": "String"}}, "Conditions": {"C": condition}}
    with pytest.raises(replacement.Unresolved):
        replacement.resolver_for(template, "s", ACCOUNT, "us-east-1").condition("C")
