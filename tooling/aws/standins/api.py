"""The read side of the stand-ins the emulator has no service for, so that a lookup
answers as AWS would (deploy.py's inventory asks GetPipeline and GetMetricStream):

  codepipeline (JSON 1.1)  GetPipeline, ListPipelines, GetPipelineState
  cloudwatch   (JSON 1.0)  GetMetricStream, ListMetricStreams; every other action goes
                           to the emulator's own CloudWatch

Anything else is answered UnknownOperationException, as AWS answers an unknown action."""
from __future__ import annotations

import json
from datetime import datetime

from ministack.core.responses import get_account_id

from . import providers

JSON_1_0, JSON_1_1 = "application/x-amz-json-1.0", "application/x-amz-json-1.1"


def _reply(data: dict, content_type: str, status: int = 200) -> tuple:
    return status, {"Content-Type": content_type}, json.dumps(data).encode()


def _error(code: str, message: str, content_type: str) -> tuple:
    return 400, {"Content-Type": content_type, "x-amzn-ErrorType": code}, json.dumps({"__type": code, "message": message}).encode()


def _action(headers: dict) -> str:
    target = headers.get("x-amz-target", "")
    return target.rsplit(".", 1)[-1] if "." in target else ""


def _body(body: bytes) -> dict:
    try:
        return json.loads(body or b"{}") or {}
    except ValueError:
        return {}


def _camel(value, verbatim: bool = False):
    """CloudFormation's property names as the API's member names (RoleArn -> roleArn);
    an action's Configuration keeps its keys, as CodePipeline does."""
    if isinstance(value, dict):
        if verbatim:
            return dict(value)
        return {key[:1].lower() + key[1:]: _camel(item, verbatim=key == "Configuration") for key, item in value.items()
                if key != "Tags"}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _pipeline(record: dict) -> dict:
    declaration = _camel(record["declaration"])
    declaration.update(name=record["name"], version=record["version"])
    return declaration


async def codepipeline(method, path, headers, body, query_params):
    action, data = _action(headers), _body(body)
    if action == "ListPipelines":
        return _reply({"pipelines": [
            {"name": r["name"], "version": r["version"], "created": r["created"], "updated": r["updated"],
             "pipelineType": r["declaration"].get("PipelineType", "V1"),
             "executionMode": r["declaration"].get("ExecutionMode", "SUPERSEDED")}
            for r in providers.PIPELINES.values()]}, JSON_1_1)
    if action in ("GetPipeline", "GetPipelineState"):
        name = data.get("name", "")
        record = providers.PIPELINES.get(name)
        if record is None:
            return _error("PipelineNotFoundException", f"Account '{get_account_id()}' does not have a pipeline with name '{name}'", JSON_1_1)
        if action == "GetPipeline":
            arn = providers._pipeline_attributes(record)["Arn"]
            return _reply({"pipeline": _pipeline(record),
                           "metadata": {"pipelineArn": arn, "created": record["created"], "updated": record["updated"]}}, JSON_1_1)
        return _reply({"pipelineName": name, "pipelineVersion": record["version"], "created": record["created"],
                       "updated": record["updated"],
                       "stageStates": [{"stageName": s["Name"], "actionStates": [{"actionName": a["Name"]} for a in s["Actions"]]}
                                       for s in record["declaration"]["Stages"]]}, JSON_1_1)
    return _error("UnknownOperationException", f"the local AWS serves CodePipeline's GetPipeline, ListPipelines and "
                                               f"GetPipelineState only (a stand-in), not {action or method + ' ' + path}", JSON_1_1)


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.000Z").timestamp()


def _metric_stream(record: dict) -> dict:
    d = record["declaration"]
    answer = {"Arn": record["arn"], "Name": record["name"], "FirehoseArn": d["FirehoseArn"], "RoleArn": d["RoleArn"],
              "State": record["state"], "CreationDate": _epoch(record["created"]), "LastUpdateDate": _epoch(record["updated"]),
              "OutputFormat": d["OutputFormat"], "IncludeLinkedAccountsMetrics": d.get("IncludeLinkedAccountsMetrics", False)}
    for key in ("IncludeFilters", "ExcludeFilters", "StatisticsConfigurations"):
        if d.get(key):
            answer[key] = d[key]
    return answer


def cloudwatch(original):
    async def handler(method, path, headers, body, query_params):
        action = _action(headers)
        if action == "GetMetricStream":
            name = _body(body).get("Name", "")
            record = providers.METRIC_STREAMS.get(name)
            if record is None:
                return _error("ResourceNotFoundException", f"Metric stream {name} does not exist", JSON_1_0)
            return _reply(_metric_stream(record), JSON_1_0)
        if action == "ListMetricStreams":
            return _reply({"Entries": [{k: v for k, v in _metric_stream(r).items()
                                        if k in ("Arn", "CreationDate", "LastUpdateDate", "Name", "FirehoseArn", "State", "OutputFormat")}
                                       for r in providers.METRIC_STREAMS.values()]}, JSON_1_0)
        return await original(method, path, headers, body, query_params)
    return handler


def register() -> None:
    from ministack import app

    app.SERVICE_HANDLERS["codepipeline"] = codepipeline
    app.SERVICE_HANDLERS["monitoring"] = cloudwatch(app.SERVICE_HANDLERS["monitoring"])
