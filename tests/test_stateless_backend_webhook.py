"""The backend and webhook templates, as rendered for dev and prod."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT, load_template
from tooling.render import environment
from tooling.render.graph import _walk

ENVS = ("dev", "prod")
BACKEND_FUNCTIONS = {
    "CreateSessionFunction": ("create-session", "create_session", "POST /sessions"),
    "GetSessionFunction": ("get-session", "get_session", "GET /sessions/{sessionId}"),
    "CreateUploadUrlFunction": ("create-upload-url", "create_upload_url", "POST /sessions/{sessionId}/uploads"),
    "ListUploadsFunction": ("list-uploads", "list_uploads", "GET /sessions/{sessionId}/uploads"),
}
# Each function's whole policy, with imports written as import:<storage output key>.
EXPECTED_STATEMENTS = {
    "CreateSessionFunction": [("dynamodb:PutItem", "import:SessionsTableArn", None)],
    "GetSessionFunction": [("dynamodb:GetItem", "import:SessionsTableArn", None)],
    "CreateUploadUrlFunction": [
        ("dynamodb:GetItem", "import:SessionsTableArn", None),
        ("dynamodb:UpdateItem", "import:SessionsTableArn", None),   # the upload count, a conditional update
        ("s3:PutObject", "import:MediaBucketArn/sessions/*", None),
    ],
    "ListUploadsFunction": [
        ("dynamodb:GetItem", "import:SessionsTableArn", None),
        ("s3:ListBucket", "import:MediaBucketArn", {"StringLike": {"s3:prefix": "sessions/*"}}),
    ],
}
# With a customer managed key (encryption.customer_managed_key), the upload URL function also
# holds the kms:GenerateDataKey a presigned PUT needs under the media bucket's SSE-KMS default.
KEY_STATEMENT = ("kms:GenerateDataKey", "import:EncryptionKeyArn",
                 {"StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}})
BACKEND_OUTPUTS = {"HttpApiId", "HttpApiEndpoint"} | {
    f"{name}{suffix}" for name in ("CreateSession", "GetSession", "CreateUploadUrl", "ListUploads")
    for suffix in ("FunctionName", "LogGroupName")
}
WEBHOOK_OUTPUTS = {"WebhookApiId", "WebhookApiEndpoint", "WebhookFunctionName", "WebhookLogGroupName"}


def templates(rendered, env, key):
    out, manifest = rendered[env]
    return load_template(out, manifest, key), next(s for s in manifest["stacks"] if s["key"] == key)


def storage_import(value) -> str | None:
    """import:<OutputKey> for an Fn::ImportValue of a storage export, else None."""
    if isinstance(value, dict) and set(value) == {"Fn::ImportValue"}:
        match = re.fullmatch(r"\$\{StorageStackName\}-(\w+)", value["Fn::ImportValue"].get("Fn::Sub", ""))
        return f"import:{match.group(1)}" if match else None
    return None


def normal_resource(value):
    if storage_import(value):
        return storage_import(value)
    if isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], list):
        text, variables = value["Fn::Sub"]
        for name, variable in variables.items():
            text = text.replace("${" + name + "}", storage_import(variable) or "?")
        return text
    return value


def statements(template: dict, function: dict) -> list[tuple]:
    """The function role's statements, but the first: its own log group (tests/test_iam.py)."""
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template["Resources"][role_id]["Properties"]["Policies"]
    assert len(policies) == 1 and isinstance(policies[0], dict), "one inline policy document, no SAM policy templates"
    own_logs, *rest = policies[0]["PolicyDocument"]["Statement"]
    assert own_logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    return [(s["Action"], normal_resource(s["Resource"]), s.get("Condition")) for s in rest if s["Effect"] == "Allow"]


def effective(template: dict, function: dict, key: str):
    return function["Properties"].get(key, template.get("Globals", {}).get("Function", {}).get(key))


@pytest.mark.parametrize("env", ENVS)
def test_backend_is_sam_with_four_python_functions(rendered, env):
    template, _ = templates(rendered, env, "backend")
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Metadata"]["StackRole"] == "stateless"
    assert template["Parameters"]["StorageStackName"]["Default"] == f"ai-social-media-{env}-storage"
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert sorted(functions) == sorted(BACKEND_FUNCTIONS)
    for logical_id, function in functions.items():
        slug, module, route = BACKEND_FUNCTIONS[logical_id]
        props = function["Properties"]
        assert effective(template, function, "Runtime") == "python3.12"
        assert props["FunctionName"] == f"ai-social-media-{env}-{slug}"
        assert props["Handler"] == f"{module}.handler"
        assert (ROOT / "app" / "backend" / f"{module}.py").is_file()
        assert "Events" not in props, "routes are explicit ApiGatewayV2 resources, not SAM events"


@pytest.mark.parametrize("env", ENVS)
def test_code_uri_resolves_from_the_rendered_template_to_the_app_folder(rendered, env):
    for key, folder in (("backend", "backend"), ("webhook", "webhook")):
        template, stack = templates(rendered, env, key)
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Serverless::Function":
                code_uri = effective(template, resource, "CodeUri")
                rendered_at = ROOT / "build" / env / stack["template"]
                assert (rendered_at.parent / code_uri).resolve() == ROOT / "app" / folder


@pytest.mark.parametrize("env", ENVS)
def test_each_backend_function_has_exactly_its_least_privilege_policy(rendered, env):
    template, _ = templates(rendered, env, "backend")
    key = environment.load(env)["encryption"]["customer_managed_key"]
    for logical_id, expected in EXPECTED_STATEMENTS.items():
        function = template["Resources"][logical_id]
        if key and logical_id == "CreateUploadUrlFunction":
            expected = [*expected, KEY_STATEMENT]
        assert statements(template, function) == expected, logical_id
        assert "Policies" not in function["Properties"], "its own role: SAM would add AWSLambdaBasicExecutionRole"


@pytest.mark.parametrize("env", ENVS)
def test_no_wildcard_action_or_resource_anywhere(rendered, env):
    for key in ("backend", "webhook"):
        template, _ = templates(rendered, env, key)
        for mapping in _walk(template["Resources"]):
            if "Action" in mapping and "Effect" in mapping and "Resource" in mapping:
                actions = mapping["Action"] if isinstance(mapping["Action"], list) else [mapping["Action"]]
                resources = mapping["Resource"] if isinstance(mapping["Resource"], list) else [mapping["Resource"]]
                assert all("*" not in action for action in actions), (key, actions)
                assert "*" not in resources, (key, resources)


@pytest.mark.parametrize("env", ENVS)
def test_backend_reaches_storage_only_through_imports(rendered, env):
    template, stack = templates(rendered, env, "backend")
    storage = f"ai-social-media-{env}-storage"
    names = ["MediaBucketArn", "MediaBucketName", "PermissionsBoundaryArn", "SessionsTableArn", "SessionsTableName"]
    if environment.load(env)["encryption"]["customer_managed_key"]:
        names.append("EncryptionKeyArn")
    assert stack["imports"] == sorted(f"{storage}-{name}" for name in names)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert storage_import(variables["TABLE_NAME"]) == "import:SessionsTableName"
    assert storage_import(variables["MEDIA_BUCKET"]) == "import:MediaBucketName"
    env_file = environment.load(env)
    assert variables["SESSION_TTL_ATTRIBUTE"] == env_file["storage"]["session_ttl_attribute"]
    assert variables["MAX_UPLOAD_BYTES"] == str(env_file["backend"]["max_upload_bytes"])
    assert variables["PRESIGNED_URL_SECONDS"] == str(env_file["backend"]["presigned_url_seconds"])
    assert variables["SESSION_TTL_HOURS"] == str(env_file["backend"]["session_ttl_hours"])
    assert variables["MAX_UPLOADS_PER_SESSION"] == str(env_file["backend"]["max_uploads_per_session"])
    assert "AWS_ENDPOINT_URL" not in str(template)


@pytest.mark.parametrize("env", ENVS)
def test_log_groups_are_named_for_their_function_and_keep_the_environments_retention(rendered, env):
    env_file = environment.load(env)
    for key, functions in (("backend", list(BACKEND_FUNCTIONS)), ("webhook", ["WebhookFunction"])):
        template, _ = templates(rendered, env, key)
        resources = template["Resources"]
        groups = {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
        assert len(groups) == len(functions) + 1  # one per function + the API access log
        for logical_id in functions:
            props = resources[logical_id]["Properties"]
            group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
            group = groups[group_id]
            assert group["Properties"]["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"
        for group in groups.values():
            assert group["Properties"]["RetentionInDays"] == env_file[key]["log_retention_days"]
            assert group["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("env", ENVS)
def test_log_groups_use_the_storage_key_exactly_when_the_environment_has_one(rendered, env):
    key = environment.load(env)["encryption"]["customer_managed_key"]
    for stack_key in ("backend", "webhook"):
        template, _ = templates(rendered, env, stack_key)
        for logical_id, group in template["Resources"].items():
            if group["Type"] != "AWS::Logs::LogGroup":
                continue
            skips = [s["id"] for s in group.get("Metadata", {}).get("checkov", {}).get("skip", [])]
            if key:
                assert storage_import(group["Properties"]["KmsKeyId"]) == "import:EncryptionKeyArn", logical_id
                assert "CKV_AWS_158" not in skips
            else:
                assert "KmsKeyId" not in group["Properties"] and skips == ["CKV_AWS_158"], logical_id


@pytest.mark.parametrize("env", ENVS)
def test_api_gateway_may_invoke_the_functions_only_from_this_account(rendered, env):
    """SourceAccount as literal text (Control Tower's CT.LAMBDA.PR.2 reads no intrinsic there)."""
    out, manifest = rendered[env]
    for stack_key in ("backend", "webhook"):
        template, _ = templates(rendered, env, stack_key)
        permissions = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
        assert permissions
        for permission in permissions:
            assert permission["Principal"] == "apigateway.amazonaws.com"
            assert permission["SourceAccount"] == manifest["account_id"]


@pytest.mark.parametrize("env", ENVS)
def test_backend_api_is_explicit_and_routes_each_function(rendered, env):
    template, _ = templates(rendered, env, "backend")
    resources = template["Resources"]
    by_type = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append(logical_id)
    assert by_type["AWS::ApiGatewayV2::Api"] == ["HttpApi"]
    assert resources["HttpApi"]["Properties"]["ProtocolType"] == "HTTP"
    assert len(by_type["AWS::ApiGatewayV2::Route"]) == 4
    assert len(by_type["AWS::ApiGatewayV2::Integration"]) == 4
    assert len(by_type["AWS::Lambda::Permission"]) == 4
    for function_id, (_, _, route) in BACKEND_FUNCTIONS.items():
        name = function_id.removesuffix("Function")
        integration = resources[f"{name}Integration"]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        assert integration["IntegrationUri"] == {"Fn::GetAtt": [function_id, "Arn"]}
        assert resources[f"{name}Route"]["Properties"]["RouteKey"] == route
        assert resources[f"{name}Route"]["Properties"]["Target"] == {"Fn::Sub": f"integrations/${{{name}Integration}}"}
        permission = resources[f"{name}Permission"]["Properties"]
        assert permission["FunctionName"] == {"Ref": function_id}
        method, path = route.split(" ")
        assert permission["SourceArn"]["Fn::Sub"].endswith(f":${{HttpApi}}/*/{method}{path.replace('{sessionId}', '*')}")
    stage = resources["HttpApiStage"]["Properties"]
    env_file = environment.load(env)
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": env_file["backend"]["throttle_rate_limit"],
        "ThrottlingBurstLimit": env_file["backend"]["throttle_burst_limit"],
    }
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    # the origin the frontend is served from (filled by deploy.py from the frontend's output), then the extra ones
    assert resources["HttpApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"] == [{"Fn::If": ["HasServedOrigin", {"Ref": "ServedOrigin"}, {"Ref": "AWS::NoValue"}]}, *env_file["storage"]["cors_allowed_origins"]]


@pytest.mark.parametrize("env", ENVS)
def test_exports_are_the_agreed_ones(rendered, env):
    for key, outputs in (("backend", BACKEND_OUTPUTS), ("webhook", WEBHOOK_OUTPUTS)):
        template, stack = templates(rendered, env, key)
        assert set(template["Outputs"]) == outputs
        assert stack["exports"] == sorted(f"ai-social-media-{env}-{key}-{name}" for name in outputs)


@pytest.mark.parametrize("env", ENVS)
def test_webhook_reads_exactly_its_two_parameters(rendered, env):
    template, stack = templates(rendered, env, "webhook")
    env_file = environment.load(env)["webhook"]
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    key = environment.load(env)["encryption"]["customer_managed_key"]
    assert stack["imports"] == sorted([f"ai-social-media-{env}-storage-PermissionsBoundaryArn"]
                                      + ([f"ai-social-media-{env}-storage-EncryptionKeyArn"] if key else []))
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 1
    props = functions[0]["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "webhook.handler"
    assert props["Environment"]["Variables"] == {
        "VERIFY_TOKEN_PARAMETER": env_file["verify_token_parameter"],
        "APP_SECRET_PARAMETER": env_file["app_secret_parameter"],
    }
    role = template["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
    own_logs, statement = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert own_logs["Resource"] == {"Fn::GetAtt": ["WebhookLogGroup", "Arn"]}
    assert statement["Action"] == "ssm:GetParameter"
    prefix = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
    assert [r["Fn::Sub"] for r in statement["Resource"]] == [
        prefix + env_file["verify_token_parameter"], prefix + env_file["app_secret_parameter"]]
    assert not any(r["Type"].startswith(("AWS::SSM::", "AWS::SecretsManager::")) for r in template["Resources"].values())


@pytest.mark.parametrize("env", ENVS)
def test_webhook_api_routes_get_and_post(rendered, env):
    template, _ = templates(rendered, env, "webhook")
    resources = template["Resources"]
    routes = sorted(r["Properties"]["RouteKey"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route")
    assert routes == ["GET /webhook", "POST /webhook"]
    integration = resources["WebhookIntegration"]["Properties"]
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    stage = resources["WebhookApiStage"]["Properties"]
    env_file = environment.load(env)["webhook"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == env_file["throttle_rate_limit"]
    assert resources["WebhookPermission"]["Properties"]["SourceArn"]["Fn::Sub"].endswith(":${WebhookApi}/*/*/webhook")


@pytest.mark.parametrize("env", ENVS)
def test_checkov_skips_carry_reasons(rendered, env):
    for key in ("backend", "webhook"):
        template, _ = templates(rendered, env, key)
        for logical_id, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert re.fullmatch(r"CKV_AWS_\d+", skip["id"])
                assert len(skip["comment"]) > 40, (key, logical_id, skip["id"])


@pytest.mark.parametrize("env", ENVS)
def test_the_api_is_public_unless_an_issuer_is_set(rendered, env):
    template, _ = templates(rendered, env, "backend")
    routes = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert len(routes) == 4 and all(r["AuthorizationType"] == "NONE" and "AuthorizerId" not in r for r in routes)
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Authorizer"]


def test_an_issuer_puts_every_route_behind_the_jwt_authorizer(tmp_path):
    from stateless_support import env_dir_with, load, render

    issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
    env_dir = env_dir_with(tmp_path, {"dev": {"jwt_issuer": f'"{issuer}"', "jwt_audience": '["web-client", "mobile-client"]'}})
    out, _ = render(tmp_path, "dev", env_dir=env_dir)
    resources = load(out, "backend")["Resources"]
    authorizer = resources["JwtAuthorizer"]["Properties"]
    assert authorizer == {"ApiId": {"Ref": "HttpApi"}, "Name": "ai-social-media-dev-jwt", "AuthorizerType": "JWT",
                          "IdentitySource": ["$request.header.Authorization"],
                          "JwtConfiguration": {"Issuer": issuer, "Audience": ["web-client", "mobile-client"]}}
    routes = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert len(routes) == 4
    assert all((r["AuthorizationType"], r["AuthorizerId"]) == ("JWT", {"Ref": "JwtAuthorizer"}) for r in routes)
    # the browser sends the token: the preflight must allow the header
    assert resources["HttpApi"]["Properties"]["CorsConfiguration"]["AllowHeaders"] == ["content-type", "authorization"]
