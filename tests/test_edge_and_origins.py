"""What is bound to CloudFront lives in us-east-1 (the edge stack), fed by parameters;
and the origin the page is served from is what the media bucket's and the API's CORS
allow, in every region. Each test fails on the templates before this design: there,
prod in eu-west-1 put the CloudFront delivery source and alarm into operations (which
rolls back outside us-east-1), and no CORS rule allowed the distribution's domain."""
from __future__ import annotations

import json

import pytest

from conftest import ACCOUNT, run_render
from stateless_support import env_dir_with, load, props, resources_of
from tooling.render import cfn_yaml, environment

CLOUDFRONT_BOUND = {"AWS::Logs::DeliverySource", "AWS::Logs::DeliveryDestination", "AWS::Logs::Delivery"}


@pytest.fixture(scope="module")
def eu(tmp_path_factory):
    """prod rendered for eu-west-1."""
    out = tmp_path_factory.mktemp("prod-eu-west-1")
    result = run_render("--env", "prod", "--account-id", ACCOUNT, "--region", "eu-west-1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "manifest.json").read_text())


def template(out, manifest, key):
    stack = next(s for s in manifest["stacks"] if s["key"] == key)
    return cfn_yaml.load((out / stack["template"]).read_text())


def test_only_the_edge_stack_holds_what_is_bound_to_cloudfront_and_it_is_in_us_east_1(eu):
    out, manifest = eu
    regions = {s["key"]: s["region"] for s in manifest["stacks"]}
    assert regions.pop("edge") == "us-east-1"
    assert set(regions.values()) == {"eu-west-1"}
    for stack in manifest["stacks"]:
        found = {r["Type"] for r in template(out, manifest, stack["key"])["Resources"].values()}
        metrics = json.dumps([r for r in template(out, manifest, stack["key"])["Resources"].values()
                              if r["Type"] == "AWS::CloudWatch::Alarm" and "AWS/CloudFront" in json.dumps(r)])
        if stack["key"] == "edge":
            assert CLOUDFRONT_BOUND <= found and "AWS/CloudFront" in metrics
        else:
            assert not found & CLOUDFRONT_BOUND and metrics == "[]", stack["key"]


def test_the_edge_stack_takes_parameters_not_imports(eu):
    out, manifest = eu
    edge = template(out, manifest, "edge")
    assert "Fn::ImportValue" not in json.dumps(edge)  # exports do not cross regions
    stack = next(s for s in manifest["stacks"] if s["key"] == "edge")
    assert stack["parameters"] == {
        "DistributionId": {"stack": "frontend", "output": "DistributionId", "late": False},
        "DistributionArn": {"stack": "frontend", "output": "DistributionArn", "late": False},
        "LogArchiveBucketArn": {"stack": "storage", "output": "LogArchiveBucketArn", "late": False},
    }
    assert stack["depends_on"] == ["frontend", "storage"]
    assert props(edge, "AccessLogSource")["ResourceArn"] == {"Ref": "DistributionArn"}
    # logs land under cloudfront/, the one prefix the storage stack's log bucket policy grants the log service
    assert props(edge, "AccessLogDestination")["DestinationResourceArn"] == {"Fn::Sub": "${LogArchiveBucketArn}/cloudfront"}
    storage = template(out, manifest, "storage")
    grants = [s for s in props(storage, "LogArchiveBucketPolicy")["PolicyDocument"]["Statement"]
              if s.get("Principal") == {"Service": "delivery.logs.amazonaws.com"}]
    assert [g["Resource"] for g in grants] == [{"Fn::Sub": "${LogArchiveBucket.Arn}/cloudfront/*"}]
    alarm = next(iter(resources_of(edge, "AWS::CloudWatch::Alarm").values()))["Properties"]
    assert alarm["AlarmActions"] == [{"Ref": "EdgeAlarmTopic"}]  # an alarm notifies a topic of its own region only
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"DistributionId": {"Ref": "DistributionId"}, "Region": "Global"}


def test_every_output_a_parameter_reads_exists_and_waves_respect_it(eu):
    out, manifest = eu
    position = {key: i for i, wave in enumerate(manifest["waves"]) for key in wave}
    for stack in manifest["stacks"]:
        for parameter, source in stack["parameters"].items():
            assert source["output"] in template(out, manifest, source["stack"])["Outputs"], (stack["key"], parameter)
            assert parameter in template(out, manifest, stack["key"])["Parameters"]
            if not source["late"]:
                assert position[source["stack"]] < position[stack["key"]]


def test_the_served_origin_is_allowed_by_the_bucket_and_the_api(eu):
    out, manifest = eu
    storage, backend = template(out, manifest, "storage"), template(out, manifest, "backend")
    storage_stack = next(s for s in manifest["stacks"] if s["key"] == "storage")
    # storage deploys before the frontend: the served origin arrives late, by a second deploy
    assert storage_stack["parameters"] == {"ServedOrigin": {"stack": "frontend", "output": "ServedOrigin", "late": True}}
    cors = props(storage, "MediaBucket")["CorsConfiguration"]
    assert cors["Fn::If"][0] == "HasServedOrigin" and cors["Fn::If"][1]["CorsRules"][0]["AllowedOrigins"] == [{"Ref": "ServedOrigin"}]
    # deploy.py always fills it (backend deploys after the frontend); empty only where nothing can (taskcat)
    assert props(backend, "HttpApi")["CorsConfiguration"]["AllowOrigins"] == [{"Fn::If": ["HasServedOrigin", {"Ref": "ServedOrigin"}, {"Ref": "AWS::NoValue"}]}]
    frontend = template(out, manifest, "frontend")
    assert frontend["Outputs"]["ServedOrigin"]["Value"] == {"Fn::Sub": "https://${Distribution.DomainName}"}


def test_a_custom_domain_is_the_served_origin_with_no_parameter(tmp_path):
    env_dir = env_dir_with(tmp_path, {"prod": {"domain_name": '"app.example.com"',
                                              "certificate_arn": '"arn:aws:acm:us-east-1:123456789012:certificate/1f2e"'}})
    out = tmp_path / "out"
    result = run_render("--env", "prod", "--account-id", ACCOUNT, "--region", "eu-west-1", "--out", str(out),
                        "--environments-dir", str(env_dir))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    storage = load(out, "storage")
    assert props(storage, "MediaBucket")["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] == ["https://app.example.com"]
    assert props(load(out, "backend"), "HttpApi")["CorsConfiguration"]["AllowOrigins"] == ["https://app.example.com"]
    assert all(not s["parameters"] for s in manifest["stacks"] if s["key"] in ("storage", "backend"))


@pytest.mark.parametrize("changes, fragment", [
    ({"certificate_arn": '"arn:aws:acm:eu-west-1:123456789012:certificate/1f2e"', "domain_name": '"app.example.com"'},
     "CloudFront reads certificates from ACM in us-east-1 only"),
    ({"web_acl_id": '"arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/site/1f2e"'}, "CLOUDFRONT scope"),
    ({"domain_name": '"app.example.com"'}, "go together"),
    ({"cors_allowed_origins": '["https://app.example.com/"]'}, "is not an origin a browser sends"),
    ({"cors_allowed_origins": '["https://*.cloudfront.net"]'}, "is not an origin a browser sends"),
])
def test_render_refuses_origins_and_edge_settings_that_can_never_serve(tmp_path, changes, fragment):
    env_dir = env_dir_with(tmp_path, {"prod": changes})
    result = run_render("--env", "prod", "--account-id", ACCOUNT, "--region", "eu-west-1", "--out", str(tmp_path / "out"),
                        "--environments-dir", str(env_dir))
    assert result.returncode == 2 and fragment in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_every_environment_file_is_valid_for_these_rules():
    for name in environment.available():
        environment.load(name)
