"""The frontend stack: CloudFront over the storage stack's frontend bucket, through imports."""
from __future__ import annotations

import re

import pytest

from conftest import load_template
from stateless_support import (env_dir_with, iam_problems, is_import, is_under_import, literal_physical_names, load, props,
                               render, resources_of, skips)
from tooling.render import environment

ENVS = ("dev", "prod")
DISTRIBUTION_ARN = {"Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"}
CUSTOM = {"domain_name": '"app.example.org"',
          "certificate_arn": '"arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"',
          "web_acl_id": '"arn:aws:wafv2:us-east-1:123456789012:global/webacl/frontend/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"'}


@pytest.fixture(scope="module")
def frontend(rendered):
    return {env: load_template(*rendered[env], "frontend") for env in ENVS}


@pytest.fixture(scope="module")
def custom_domain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("custom-domain")
    out, _ = render(tmp, "dev", env_dir=env_dir_with(tmp, {"dev": CUSTOM}))
    return load(out, "frontend")


def distribution_config(template):
    return props(template, "Distribution")["DistributionConfig"]


def test_distribution_serves_the_imported_bucket_through_origin_access_control(frontend, rendered):
    for env in ENVS:
        template = frontend[env]
        assert template["Metadata"]["StackRole"] == "stateless"
        assert template["Parameters"]["StorageStackName"]["Default"] == f"ai-social-media-{env}-storage"
        (origin,) = distribution_config(template)["Origins"]
        assert is_import(origin["DomainName"], "StorageStackName", "FrontendBucketRegionalDomainName")
        assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
        assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
        assert resources_of(template, "AWS::CloudFront::CloudFrontOriginAccessIdentity") == {}
        oac = props(template, "OriginAccessControl")["OriginAccessControlConfig"]
        assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == ("s3", "always", "sigv4")
        assert literal_physical_names(rendered[env][0], rendered[env][1], ["frontend"]) == []


def test_distribution_settings(frontend):
    for env in ENVS:
        config = distribution_config(frontend[env])
        behavior = config["DefaultCacheBehavior"]
        assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behavior["Compress"] is True
        assert re.fullmatch(r"[0-9a-f-]{36}", behavior["CachePolicyId"])  # a managed cache policy
        assert behavior["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}
        assert config["HttpVersion"] == "http2and3"
        assert config["DefaultRootObject"] == "index.html"
        assert config["PriceClass"] == environment.load(env)["frontend"]["price_class"]
        errors = {(e["ErrorCode"], e["ResponseCode"], e["ResponsePagePath"]) for e in config["CustomErrorResponses"]}
        assert errors == {(403, 200, "/index.html"), (404, 200, "/index.html")}


def test_security_headers(frontend):
    headers = props(frontend["prod"], "SecurityHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    hsts = headers["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] >= 31536000 and hsts["IncludeSubdomains"] is True and hsts["Preload"] is True
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"


def test_without_a_domain_the_default_certificate_and_no_waf_are_skipped_with_reasons(frontend):
    for env in ENVS:
        template = frontend[env]
        config = distribution_config(template)
        assert config["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True}
        assert "Aliases" not in config and "WebACLId" not in config
        skipped = skips(template["Resources"]["Distribution"])
        assert set(skipped) == {"CKV_AWS_86", "CKV_AWS_174", "CKV_AWS_68"}
        assert all(len(comment) > 40 for comment in skipped.values())


def test_custom_domain_and_waf_switch_on_together_with_their_checks(custom_domain):
    config = distribution_config(custom_domain)
    assert config["Aliases"] == ["app.example.org"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CUSTOM["certificate_arn"].strip('"'),
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    assert config["WebACLId"] == CUSTOM["web_acl_id"].strip('"')
    assert set(skips(custom_domain["Resources"]["Distribution"])) == {"CKV_AWS_86"}


def test_the_frontend_bucket_policy_is_tls_only_and_reads_by_this_distribution_only(frontend):
    for env in ENVS:
        template = frontend[env]
        (policy_id,) = resources_of(template, "AWS::S3::BucketPolicy")
        policy = props(template, policy_id)
        assert is_import(policy["Bucket"], "StorageStackName", "FrontendBucketName")
        deny, allow = policy["PolicyDocument"]["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        bucket, objects = deny["Resource"]
        assert is_import(bucket, "StorageStackName", "FrontendBucketArn")
        # Fn::Join of the import and "/*", the form Control Tower's CT.S3.PR.8 reads
        assert objects == {"Fn::Join": ["", [{"Fn::ImportValue": {"Fn::Sub": "${StorageStackName}-FrontendBucketArn"}}, "/*"]]}
        assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert allow["Action"] == "s3:GetObject"
        assert is_under_import(allow["Resource"], "/*", "StorageStackName", "FrontendBucketArn")
        assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": DISTRIBUTION_ARN}}


def test_outputs_are_the_agreed_exports(frontend, rendered):
    for env in ENVS:
        outputs = frontend[env]["Outputs"]
        assert set(outputs) == {"DistributionId", "DistributionDomainName", "DistributionArn", "ServedOrigin"}
        assert outputs["DistributionArn"]["Value"] == DISTRIBUTION_ARN
        # ServedOrigin is read by deploy.py (a parameter of storage and backend), never imported
        assert outputs["ServedOrigin"]["Value"] == {"Fn::Sub": "https://${Distribution.DomainName}"} and "Export" not in outputs["ServedOrigin"]
        stack = next(s for s in rendered[env][1]["stacks"] if s["key"] == "frontend")
        assert sorted(stack["exports"]) == sorted(f"ai-social-media-{env}-frontend-{key}" for key in outputs if key != "ServedOrigin")
        assert iam_problems("frontend", frontend[env], f"ai-social-media-{env}") == []
