"""Three gaps in ministack 1.5.33's own providers and gateway, closed before it serves.
None is a stand-in: each makes a real part of the emulator behave as AWS documents,
where the local deploy depends on it.

1. AWS::S3::Bucket: its provider applies no tag at all. CloudFormation tags a bucket with
   the template's Tags, the stack's tags and its aws:cloudformation: tags; the taskcat
   cleanup identifies the buckets it may delete by them.
2. AWS::ApiGatewayV2::Api: its provider stores the template's CorsConfiguration as
   written (AllowOrigins, ...) where the data plane reads the API's member names
   (allowOrigins, ...), so every browser preflight was denied. It is handed over in the
   API's names, as CreateApi and UpdateApi take it.
3. S3 preflights: without AUTH=true (which also enforces IAM, and with it the buckets'
   TLS-only policies, which a plain-HTTP emulator can never meet) the gateway answers
   every OPTIONS with "Access-Control-Allow-Origin: *". A preflight to a bucket is
   answered from that bucket's CORS rules instead, as S3 does, so a browser proves them.

Runs inside the emulator's process, registered by launch.py."""
from __future__ import annotations

import ministack.services.s3 as _s3
from ministack.services.cloudformation import provisioners as _engine

from .providers import _tags

# --- 1. AWS::S3::Bucket tags --------------------------------------------------------------------

def _bucket_handlers(own: dict) -> dict:
    def tagged(answer, props):
        name = answer[0]
        if name in _s3._buckets:
            _s3._bucket_tags[name] = _tags(props)
        return answer

    def create(logical_id, props, stack_name):
        return tagged(own["create"](logical_id, props, stack_name), props)

    def update(physical_id, old_props, new_props, stack_name):
        return tagged(own["update"](physical_id, old_props, new_props, stack_name), new_props)
    return {**own, "create": create, "update": update}


# --- 2. AWS::ApiGatewayV2::Api CorsConfiguration ------------------------------------------------

def _api_cors(props: dict) -> dict:
    cors = props.get("CorsConfiguration")
    if not isinstance(cors, dict):
        return props
    return {**props, "CorsConfiguration": {key[:1].lower() + key[1:]: value for key, value in cors.items()}}


def _http_api_handlers(own: dict) -> dict:
    def create(logical_id, props, stack_name):
        return own["create"](logical_id, _api_cors(props), stack_name)

    def update(physical_id, old_props, new_props, stack_name, logical_id=None):
        return own["update"](physical_id, _api_cors(old_props), _api_cors(new_props), stack_name, logical_id)
    return {**own, "create": create, "update": update}


# --- 3. S3 preflights from the bucket's CORS rules -----------------------------------------------

def _s3_preflight(app, original):
    def handle(method, path, headers, query_params, request_id):
        if method == "OPTIONS":
            target = app._s3_cors_target(headers.get("host", ""), path)
            if target and app.detect_service(method, path, headers, query_params) == "s3":
                status, answer, body = app._get_module("s3").cors_preflight(*target, headers)
                return status, {**answer, "x-amzn-requestid": request_id, "x-amz-request-id": request_id}, body
        return original(method, path, headers, query_params, request_id)
    return handle


def register() -> None:
    from ministack import app

    _engine._RESOURCE_HANDLERS["AWS::ApiGatewayV2::Api"] = _http_api_handlers(_engine._RESOURCE_HANDLERS["AWS::ApiGatewayV2::Api"])
    if "AWS::S3::Bucket" not in _engine._STACK_TAG_PROPERTY:
        _engine._STACK_TAG_PROPERTY["AWS::S3::Bucket"] = ("Tags", "list")
        _engine._RESOURCE_HANDLERS["AWS::S3::Bucket"] = _bucket_handlers(_engine._RESOURCE_HANDLERS["AWS::S3::Bucket"])
    app._handle_options_request = _s3_preflight(app, app._handle_options_request)
