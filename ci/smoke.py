#!/usr/bin/env python3
"""Use the deployed system as a user would, over real HTTP:

  backend: create a media-selection session, read it back, ask for a presigned
           upload URL, PUT a file through it, list the session's uploads; ask for
           upload URLs up to the session's cap (backend.max_uploads_per_session), and
           see the next one refused with 429;
  webhook: the Instagram verification handshake and a signed event (the verify
           token and app secret are put into SSM as SecureStrings first when
           --seed-secrets is given, as the local run does);
  operations: a record put to the log archive delivery stream lands as an object
           in the log archive bucket; every alarm of the render exists, with its
           actions on the alarm topic; the pipeline-failure rule targets that topic
           and watches both pipelines.

    python ci/smoke.py --env dev [--local] [--seed-secrets]

Reads the API ids, the topic and the pipeline names from the stacks' outputs. Against the local AWS the APIs are
reached path-style (<endpoint>/_aws/execute-api/<api-id>/<path>); against AWS at
their execute-api endpoint. Exit 0 and "smoke: ok" when every step passed."""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tooling.aws import cloudformation, session  # noqa: E402
from tooling.deploy import workspace  # noqa: E402
from tooling.render import environment  # noqa: E402
from tooling.errors import UserError  # noqa: E402


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def api_base(outputs: dict, id_key: str, endpoint_key: str) -> str:
    local = os.environ.get("AWS_ENDPOINT_URL")
    if local:
        return f"{local.rstrip('/')}/_aws/execute-api/{outputs[id_key]}"
    return outputs[endpoint_key].rstrip("/")


class Smoke:
    def __init__(self):
        self.steps = 0

    def check(self, what: str, condition: bool, detail: str = "") -> None:
        self.steps += 1
        if not condition:
            raise SystemExit(f"smoke: FAILED at '{what}' {detail}")
        print(f"smoke: {what}: ok", flush=True)


def backend(smoke: Smoke, outputs: dict, bucket_check, cap: int) -> None:
    base = api_base(outputs, "HttpApiId", "HttpApiEndpoint")
    status, body = http("POST", f"{base}/sessions", json.dumps({"title": "smoke"}).encode(), {"content-type": "application/json"})
    smoke.check("create a session", status == 201, f"(HTTP {status}: {body[:200]!r})")
    session = json.loads(body)["sessionId"]
    status, body = http("GET", f"{base}/sessions/{session}")
    smoke.check("read it back", status == 200 and json.loads(body)["sessionId"] == session, f"(HTTP {status})")
    content = f"smoke upload {uuid.uuid4()}".encode()
    request = {"filename": "smoke.jpg", "contentType": "image/jpeg", "size": len(content)}
    status, body = http("POST", f"{base}/sessions/{session}/uploads", json.dumps(request).encode(), {"content-type": "application/json"})
    smoke.check("get a presigned upload URL", status == 200, f"(HTTP {status}: {body[:200]!r})")
    grant = json.loads(body)
    status, body = http(grant.get("method", "PUT"), grant["uploadUrl"], content, grant.get("headers", {}))
    smoke.check("upload through the presigned URL", status in (200, 204), f"(HTTP {status}: {body[:200]!r})")
    status, body = http("GET", f"{base}/sessions/{session}/uploads")
    uploads = json.loads(body).get("uploads", []) if status == 200 else []
    smoke.check("list the upload back", [u["key"] for u in uploads] == [grant["key"]] and uploads[0]["size"] == len(content),
                f"(HTTP {status}: {uploads})")
    smoke.check("the object is in the media bucket", bucket_check(grant["key"]) == content)
    status, _ = http("GET", f"{base}/sessions/{uuid.uuid4()}")
    smoke.check("an unknown session is a 404", status == 404, f"(HTTP {status})")
    statuses = []
    for number in range(2, cap + 1):   # the first URL of the session was issued above
        request = {"filename": f"more-{number}.jpg", "contentType": "image/jpeg", "size": 1}
        status, body = http("POST", f"{base}/sessions/{session}/uploads", json.dumps(request).encode(),
                            {"content-type": "application/json"})
        statuses.append(status)
    smoke.check(f"upload URLs 2 to {cap} of the session are issued", set(statuses) <= {200}, f"(HTTP {sorted(set(statuses))})")
    request = {"filename": "one-too-many.jpg", "contentType": "image/jpeg", "size": 1}
    status, body = http("POST", f"{base}/sessions/{session}/uploads", json.dumps(request).encode(), {"content-type": "application/json"})
    smoke.check(f"upload URL {cap + 1} is refused: HTTP {status} {body.decode(errors='replace')}", status == 429,
                f"(the cap is backend.max_uploads_per_session = {cap})")


def webhook(smoke: Smoke, outputs: dict, secrets: dict[str, str]) -> None:
    base = api_base(outputs, "WebhookApiId", "WebhookApiEndpoint")
    query = f"hub.mode=subscribe&hub.verify_token={secrets['verify_token']}&hub.challenge=1158201444"
    status, body = http("GET", f"{base}/webhook?{query}")
    smoke.check("webhook verification handshake", status == 200 and body == b"1158201444", f"(HTTP {status}: {body[:100]!r})")
    event = json.dumps({"object": "instagram", "entry": [{"id": "1", "time": int(time.time())}]}).encode()
    signature = "sha256=" + hmac.new(secrets["app_secret"].encode(), event, hashlib.sha256).hexdigest()
    status, _ = http("POST", f"{base}/webhook", event, {"content-type": "application/json", "x-hub-signature-256": signature})
    smoke.check("a signed webhook event is accepted", status == 200, f"(HTTP {status})")
    status, _ = http("POST", f"{base}/webhook", event, {"content-type": "application/json"})
    smoke.check("an unsigned webhook event is rejected", status == 401, f"(HTTP {status})")


def operations(smoke: Smoke, ws, outputs: dict, client, firehose_wait: float) -> None:
    resources = ws.template("operations")["Resources"]
    topic = outputs["AlarmTopicArn"]

    stream = resources["LogArchiveStream"]["Properties"]["DeliveryStreamName"]
    bucket = ws.manifest["physical_names"]["buckets"]["log_archive"]
    marker = f"smoke record {uuid.uuid4()}".encode()
    s3 = client("s3")
    before = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="cloudwatch-logs/")
              for o in page.get("Contents", [])}
    client("firehose").put_record(DeliveryStreamName=stream, Record={"Data": marker})
    landed, deadline = None, time.monotonic() + firehose_wait
    while landed is None and time.monotonic() < deadline:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="cloudwatch-logs/"):
            for item in page.get("Contents", []):
                if item["Key"] not in before and marker in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read():
                    landed = item["Key"]
        if landed is None:
            time.sleep(1)
    smoke.check("a record put to the log archive stream lands in the log archive bucket", landed is not None,
                f"(nothing with it under s3://{bucket}/cloudwatch-logs/ after {firehose_wait:.0f}s)")

    expected = sorted(r["Properties"]["AlarmName"] for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm")
    cloudwatch, alarms = client("cloudwatch"), {}
    for start in range(0, len(expected), 100):
        answer = cloudwatch.describe_alarms(AlarmNames=expected[start:start + 100], MaxRecords=100)
        alarms.update({a["AlarmName"]: a for a in answer["MetricAlarms"]})
    missing = [name for name in expected if name not in alarms]
    astray = [name for name, a in alarms.items()
              if a.get("AlarmActions") != [topic] or a.get("OKActions") != [topic] or not a.get("ActionsEnabled")]
    smoke.check(f"all {len(expected)} alarms exist, each with its actions on the alarm topic",
                bool(expected) and not missing and not astray, f"(missing: {missing}; other actions: {astray})")

    events = client("events")
    rule = resources["PipelineFailureRule"]["Properties"]["Name"]
    targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
    watched = json.loads(events.describe_rule(Name=rule)["EventPattern"])["detail"]["pipeline"]
    pipelines = [outputs["BackendPipelineName"], outputs["FrontendPipelineName"]]
    smoke.check("the pipeline-failure rule targets the alarm topic and watches both pipelines",
                targets == [topic] and sorted(watched) == sorted(pipelines), f"(targets {targets}, pipelines {watched})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Smoke-check a deployed environment over HTTP.")
    parser.add_argument("--env", required=True)
    parser.add_argument("--local", action="store_true", help="the render for the local AWS (build/local-<env>)")
    parser.add_argument("--seed-secrets", action="store_true",
                        help="put throwaway webhook secrets into SSM first (for the local AWS; never on a real account)")
    args = parser.parse_args(argv)
    try:
        ws = workspace.open_workspace(args.env, args.local, log=lambda _: None)
        env = environment.load(args.env)
        outputs = {}
        for key in ("backend", "webhook", "backend-pipeline", "frontend-pipeline", "operations"):
            stack = cloudformation.describe_stack(ws.region, ws.stacks[key]["name"])
            if stack is None:
                raise UserError(f"stack {key}: not deployed")
            outputs.update({o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])})
    except UserError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return exc.status
    s3 = session.client("s3", ws.region)
    media = ws.manifest["physical_names"]["buckets"]["media"]
    smoke = Smoke()
    backend(smoke, outputs, lambda key: s3.get_object(Bucket=media, Key=key)["Body"].read(), env["backend"]["max_uploads_per_session"])
    ssm = session.client("ssm", ws.region)
    names = {"verify_token": env["webhook"]["verify_token_parameter"], "app_secret": env["webhook"]["app_secret_parameter"]}
    if args.seed_secrets:
        for label, name in names.items():
            ssm.put_parameter(Name=name, Value=f"smoke-{label}-{uuid.uuid4().hex[:8]}", Type="SecureString", Overwrite=True)
    secrets = {label: ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] for label, name in names.items()}
    webhook(smoke, outputs, secrets)
    # On AWS, Firehose buffers up to its BufferingHints interval (300 s) before it writes.
    operations(smoke, ws, outputs, lambda service: session.client(service, ws.region), 30 if args.local else 330)
    print(f"smoke: ok ({smoke.steps} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
