"""The stand-in resource providers, registered in ministack's CloudFormation engine
(`_RESOURCE_HANDLERS`) by launch.py. Runs inside the emulator's process.

Every create and update first validates the properties against the type's registry
schema (schemas.py), then checks that each resource they name exists in the emulator,
then records the resource and answers the physical id (what Ref returns) and the
attributes (what Fn::GetAtt returns), both as the AWS resource reference documents
them. A refusal raises ValueError: the engine marks the resource CREATE_FAILED (or
UPDATE_FAILED) with its message and rolls the stack back, as CloudFormation does.

ministack's internal stores are read to check references: the pinned ministack 1.5.33
(launch.py refuses any other version)."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import ministack.services.cloudfront as _cloudfront
import ministack.services.cloudwatch as _cloudwatch
import ministack.services.cloudwatch_logs as _logs
import ministack.services.codebuild as _codebuild
import ministack.services.firehose as _firehose
import ministack.services.iam as _iam
import ministack.services.s3 as _s3
import ministack.services.sns as _sns
from ministack.core.responses import AccountRegionScopedDict, get_account_id, get_region
from ministack.services.cloudformation import provisioners as _engine

from . import STANDINS, schemas

PIPELINE = "AWS::CodePipeline::Pipeline"
DELIVERY_SOURCE = "AWS::Logs::DeliverySource"
DELIVERY_DESTINATION = "AWS::Logs::DeliveryDestination"
DELIVERY = "AWS::Logs::Delivery"
METRIC_STREAM = "AWS::CloudWatch::MetricStream"
ALARM = "AWS::CloudWatch::Alarm"  # ministack's own provider, extended to metric math alarms

# What the stand-ins hold that the emulator has no service for (read by api.py).
PIPELINES = AccountRegionScopedDict()  # name -> record
METRIC_STREAMS = AccountRegionScopedDict()  # name -> record


def _refuse(type_name: str, message: str):
    raise ValueError(f"{message} (stand-in {type_name})")


def _validated(type_name: str, logical_id: str, props: dict) -> dict:
    problems = schemas.errors(type_name, props)
    if problems:
        _refuse(type_name, f"Properties validation failed for resource {logical_id} with message: "
                           f"{'; '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}")
    return schemas.coerce(schemas.load(type_name), props)


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _tags(props: dict) -> dict:
    return {t["Key"]: t.get("Value", "") for t in props.get("Tags") or [] if isinstance(t, dict) and "Key" in t}


def _answer(response: tuple, type_name: str, what: str) -> dict:
    """A ministack service handler's (status, headers, body): the body, or a refusal."""
    status, _headers, body = response
    data = json.loads(body or b"{}") if body else {}
    if status >= 400:
        _refuse(type_name, f"{what}: {data.get('__type', status)}: {data.get('message') or data.get('Message') or ''}".rstrip(": "))
    return data


# --- references: each must exist in the emulator ------------------------------------------

def _arn_parts(arn: str) -> list[str]:
    parts = arn.split(":", 5)
    return parts if len(parts) == 6 and parts[0] == "arn" else []


def _require_role(type_name: str, field: str, arn: str) -> None:
    parts = _arn_parts(arn)
    if not parts or parts[2] != "iam" or not parts[5].startswith("role/"):
        _refuse(type_name, f"{field} {arn}: not an IAM role ARN")
    if parts[4] != get_account_id():
        _refuse(type_name, f"{field} {arn}: a role of account {parts[4]}, not of this account ({get_account_id()})")
    name = parts[5].rsplit("/", 1)[-1]
    if name not in _iam._roles:
        _refuse(type_name, f"{field} {arn}: no such IAM role in the local AWS")


def _require_bucket(type_name: str, field: str, name: str) -> None:
    if name not in _s3._buckets:
        _refuse(type_name, f"{field} {name}: no such S3 bucket in the local AWS")


def _require_project(type_name: str, field: str, name: str) -> None:
    if name not in _codebuild._projects:
        _refuse(type_name, f"{field} {name}: no such CodeBuild project in the local AWS")


def _require_stream(type_name: str, field: str, arn: str) -> None:
    parts = _arn_parts(arn)
    if not parts or parts[2] != "firehose" or not parts[5].startswith("deliverystream/"):
        _refuse(type_name, f"{field} {arn}: not a Firehose delivery stream ARN")
    if parts[3] != get_region() or parts[4] != get_account_id():
        _refuse(type_name, f"{field} {arn}: not a delivery stream of this account and region")
    if parts[5].split("/", 1)[1] not in _firehose._streams:
        _refuse(type_name, f"{field} {arn}: no such Firehose delivery stream in the local AWS")


def _require_log_group(type_name: str, field: str, arn: str) -> None:
    parts = _arn_parts(arn)
    if not parts or parts[2] != "logs" or not parts[5].startswith("log-group:"):
        _refuse(type_name, f"{field} {arn}: not a log group ARN")
    name = parts[5].split(":", 2)[1]
    if name not in _logs._log_groups:
        _refuse(type_name, f"{field} {arn}: no such log group in the local AWS")


def _require_distribution(type_name: str, field: str, arn: str) -> None:
    parts = _arn_parts(arn)
    if not parts or parts[2] != "cloudfront" or not parts[5].startswith("distribution/"):
        _refuse(type_name, f"{field} {arn}: the stand-in takes CloudFront distributions only (what the templates use)")
    if parts[4] != get_account_id():
        _refuse(type_name, f"{field} {arn}: a distribution of account {parts[4]}, not of this account")
    if parts[5].split("/", 1)[1] not in _cloudfront._distributions:
        _refuse(type_name, f"{field} {arn}: no such CloudFront distribution in the local AWS")


# --- AWS::CodePipeline::Pipeline ---------------------------------------------------------------

def _check_pipeline(props: dict) -> None:
    _require_role(PIPELINE, "RoleArn", props["RoleArn"])
    stores = [props["ArtifactStore"]] if props.get("ArtifactStore") else []
    stores += [entry["ArtifactStore"] for entry in props.get("ArtifactStores") or []]
    if not stores:
        _refuse(PIPELINE, "one of ArtifactStore or ArtifactStores is required")
    for store in stores:
        _require_bucket(PIPELINE, "ArtifactStore.Location", store["Location"])
    produced: set[str] = set()
    for stage in props["Stages"]:
        for action in stage["Actions"]:
            where = f"{stage['Name']}.{action['Name']}"
            kind, config = action["ActionTypeId"], action.get("Configuration") or {}
            if isinstance(config, str):
                config = json.loads(config)
            if action.get("RoleArn"):
                _require_role(PIPELINE, f"{where}.RoleArn", action["RoleArn"])
            if kind["Owner"] == "AWS" and kind["Provider"] == "CodeBuild":
                _require_project(PIPELINE, f"{where}.Configuration.ProjectName", config.get("ProjectName", ""))
            if kind["Owner"] == "AWS" and kind["Provider"] == "S3" and kind["Category"] == "Source":
                _require_bucket(PIPELINE, f"{where}.Configuration.S3Bucket", config.get("S3Bucket", ""))
            for artifact in action.get("InputArtifacts") or []:
                if artifact["Name"] not in produced:
                    _refuse(PIPELINE, f"{where}: input artifact {artifact['Name']} is not the output of an earlier action")
            produced.update(a["Name"] for a in action.get("OutputArtifacts") or [])


def _pipeline_attributes(record: dict) -> dict:
    return {"Version": str(record["version"]),
            "Arn": f"arn:aws:codepipeline:{get_region()}:{get_account_id()}:{record['name']}"}


def pipeline_create(logical_id, props, stack_name):
    props = _validated(PIPELINE, logical_id, props)
    _check_pipeline(props)
    name = props.get("Name") or _engine._physical_name(stack_name, logical_id, max_len=100)
    if name in PIPELINES:
        _refuse(PIPELINE, f"a pipeline named {name} already exists")
    now = time.time()
    PIPELINES[name] = record = {"name": name, "version": 1, "declaration": props, "created": now, "updated": now}
    return name, _pipeline_attributes(record)


def pipeline_update(physical_id, old_props, new_props, stack_name, logical_id=None):
    props = _validated(PIPELINE, logical_id or physical_id, new_props)
    _check_pipeline(props)
    record = PIPELINES.get(physical_id)
    if record is None:
        _refuse(PIPELINE, f"pipeline {physical_id} no longer exists")
    if record["declaration"] != props:
        record.update(declaration=props, version=record["version"] + 1, updated=time.time())
    return physical_id, _pipeline_attributes(record)


def pipeline_delete(physical_id, props):
    PIPELINES.pop(physical_id, None)


# --- AWS::Logs::DeliverySource / DeliveryDestination / Delivery -------------------------------
# The emulator's CloudWatch Logs implements the log delivery API; these providers are
# CloudFormation's side of it and call that API's own handlers.

def delivery_source_put(logical_id, props, stack_name, physical_id=None):
    props = _validated(DELIVERY_SOURCE, logical_id, props)
    if not props.get("ResourceArn"):
        _refuse(DELIVERY_SOURCE, "ResourceArn is required by the stand-in (the resource that sends the logs)")
    _require_distribution(DELIVERY_SOURCE, "ResourceArn", props["ResourceArn"])
    answer = _answer(_logs._put_delivery_source({
        "name": props["Name"], "resourceArn": props["ResourceArn"], "logType": props.get("LogType", ""),
        "tags": _tags(props)}), DELIVERY_SOURCE, "PutDeliverySource")
    source = answer["deliverySource"]
    return source["name"], {"Arn": source["arn"], "ResourceArns": source["resourceArns"], "Service": source["service"],
                            "Status": "ACTIVE"}


def delivery_source_delete(physical_id, props):
    _logs._delete_delivery_source({"name": physical_id})


def _check_destination(arn: str) -> None:
    parts = _arn_parts(arn)
    service = parts[2] if parts else ""
    if service == "s3":
        _require_bucket(DELIVERY_DESTINATION, "DestinationResourceArn", parts[5].split("/", 1)[0])
    elif service == "logs":
        _require_log_group(DELIVERY_DESTINATION, "DestinationResourceArn", arn)
    elif service == "firehose":
        _require_stream(DELIVERY_DESTINATION, "DestinationResourceArn", arn)
    else:
        _refuse(DELIVERY_DESTINATION, f"DestinationResourceArn {arn}: not an S3 bucket, log group or delivery stream ARN")


def delivery_destination_put(logical_id, props, stack_name, physical_id=None):
    props = _validated(DELIVERY_DESTINATION, logical_id, props)
    if not props.get("DestinationResourceArn"):
        _refuse(DELIVERY_DESTINATION, "DestinationResourceArn is required by the stand-in (S3, CloudWatch Logs or Firehose)")
    _check_destination(props["DestinationResourceArn"])
    request = {"name": props["Name"], "deliveryDestinationConfiguration": {"destinationResourceArn": props["DestinationResourceArn"]},
               "tags": _tags(props)}
    if props.get("OutputFormat"):
        request["outputFormat"] = props["OutputFormat"]
    destination = _answer(_logs._put_delivery_destination(request), DELIVERY_DESTINATION,
                          "PutDeliveryDestination")["deliveryDestination"]
    if props.get("DeliveryDestinationPolicy"):
        _answer(_logs._put_delivery_destination_policy({
            "deliveryDestinationName": props["Name"],
            "deliveryDestinationPolicy": json.dumps(props["DeliveryDestinationPolicy"])}),
            DELIVERY_DESTINATION, "PutDeliveryDestinationPolicy")
    return destination["name"], {"Arn": destination["arn"]}


def delivery_destination_delete(physical_id, props):
    _logs._delete_delivery_destination({"name": physical_id})


def _s3_delivery_configuration(props: dict) -> dict:
    config = {}
    if "S3SuffixPath" in props:
        config["suffixPath"] = props["S3SuffixPath"]
    if "S3EnableHiveCompatiblePath" in props:
        config["enableHiveCompatiblePath"] = props["S3EnableHiveCompatiblePath"]
    return config


def _delivery_attributes(delivery: dict) -> dict:
    return {"DeliveryId": delivery["id"], "Arn": delivery["arn"], "DeliveryDestinationType": delivery["deliveryDestinationType"]}


def delivery_create(logical_id, props, stack_name):
    props = _validated(DELIVERY, logical_id, props)
    answer = _answer(_logs._create_delivery({
        "deliverySourceName": props["DeliverySourceName"], "deliveryDestinationArn": props["DeliveryDestinationArn"],
        "recordFields": props.get("RecordFields", []), "fieldDelimiter": props.get("FieldDelimiter", ""),
        "s3DeliveryConfiguration": _s3_delivery_configuration(props), "tags": _tags(props)}), DELIVERY, "CreateDelivery")
    # AWS's delivery ids are alphanumeric (the schema's pattern); the emulator's are UUIDs.
    delivery = _logs._deliveries.pop(answer["delivery"]["id"])
    delivery["id"] = uuid.uuid4().hex[:16]
    delivery["arn"] = _logs._make_delivery_arn(delivery["id"])
    _logs._deliveries[delivery["id"]] = delivery
    return delivery["id"], _delivery_attributes(delivery)


def delivery_update(physical_id, old_props, new_props, stack_name, logical_id=None):
    props = _validated(DELIVERY, logical_id or physical_id, new_props)
    delivery = _logs._deliveries.get(physical_id)
    if delivery is None:
        _refuse(DELIVERY, f"delivery {physical_id} no longer exists")
    delivery.update(recordFields=props.get("RecordFields", []), fieldDelimiter=props.get("FieldDelimiter", ""),
                    s3DeliveryConfiguration=_s3_delivery_configuration(props), tags=_tags(props))
    return physical_id, _delivery_attributes(delivery)


def delivery_delete(physical_id, props):
    _logs._delete_delivery({"id": physical_id})


# --- AWS::CloudWatch::MetricStream -------------------------------------------------------------

def _check_metric_stream(props: dict) -> None:
    for field in ("FirehoseArn", "RoleArn", "OutputFormat"):
        if not props.get(field):
            _refuse(METRIC_STREAM, f"{field} is required (PutMetricStream)")
    if props.get("IncludeFilters") and props.get("ExcludeFilters"):
        _refuse(METRIC_STREAM, "IncludeFilters and ExcludeFilters are mutually exclusive")
    _require_stream(METRIC_STREAM, "FirehoseArn", props["FirehoseArn"])
    _require_role(METRIC_STREAM, "RoleArn", props["RoleArn"])


def _metric_stream_attributes(record: dict) -> dict:
    return {"Arn": record["arn"], "State": record["state"], "CreationDate": record["created"], "LastUpdateDate": record["updated"]}


def metric_stream_create(logical_id, props, stack_name):
    props = _validated(METRIC_STREAM, logical_id, props)
    _check_metric_stream(props)
    name = props.get("Name") or _engine._physical_name(stack_name, logical_id, max_len=255)
    if name in METRIC_STREAMS:
        _refuse(METRIC_STREAM, f"a metric stream named {name} already exists")
    now = _now_iso()
    METRIC_STREAMS[name] = record = {
        "name": name, "arn": f"arn:aws:cloudwatch:{get_region()}:{get_account_id()}:metric-stream/{name}",
        "state": "running", "created": now, "updated": now, "declaration": props}
    return name, _metric_stream_attributes(record)


def metric_stream_update(physical_id, old_props, new_props, stack_name, logical_id=None):
    props = _validated(METRIC_STREAM, logical_id or physical_id, new_props)
    _check_metric_stream(props)
    record = METRIC_STREAMS.get(physical_id)
    if record is None:
        _refuse(METRIC_STREAM, f"metric stream {physical_id} no longer exists")
    if record["declaration"] != props:
        record.update(declaration=props, updated=_now_iso())
    return physical_id, _metric_stream_attributes(record)


def metric_stream_delete(physical_id, props):
    METRIC_STREAMS.pop(physical_id, None)


# --- AWS::CloudWatch::Alarm on metric math (Metrics) -------------------------------------------
# ministack's provider holds alarms on one metric and refuses Metrics; these go to the
# emulator's own alarm store with their Metrics, so that DescribeAlarms lists them with
# their actions as AWS does. Neither kind is evaluated against real metrics locally.

def _require_topic(field: str, arn: str) -> None:
    parts = _arn_parts(arn)
    if parts and parts[2] == "sns" and arn not in _sns._topics:
        _refuse(ALARM, f"{field} {arn}: no such SNS topic in the local AWS")


def _metric_math_alarm(logical_id: str, name: str, props: dict):
    props = _validated(ALARM, logical_id, props)
    queries = props["Metrics"]
    ids = [q["Id"] for q in queries]
    if len(set(ids)) != len(ids):
        _refuse(ALARM, f"Metrics: the ids {ids} are not unique")
    returned = [q["Id"] for q in queries if q.get("ReturnData", True)]
    if len(returned) != 1:
        _refuse(ALARM, f"Metrics: exactly one query must return data (ReturnData true), not {returned}")
    for query in queries:
        if bool(query.get("Expression")) == bool(query.get("MetricStat")):
            _refuse(ALARM, f"Metrics.{query['Id']}: give either Expression or MetricStat")
    for field in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        for arn in props.get(field) or []:
            _require_topic(field, arn)
    shell = {k: v for k, v in props.items() if k != "Metrics"}
    shell.update(MetricName="-", Namespace="-")
    alarm = _engine._cw_metric_alarm_record(name, shell)
    alarm.update(MetricName=None, Namespace=None, Statistic=None, ExtendedStatistic=None, Metrics=queries)
    _cloudwatch.cloudformation_put_metric_alarm(alarm)
    _cloudwatch.cloudformation_set_metric_alarm_tags(name, [t for t in props.get("Tags") or [] if isinstance(t, dict) and t.get("Key")])
    return name, {"Arn": alarm["AlarmArn"]}


def _alarm_handlers(own: dict) -> dict:
    def create(logical_id, props, stack_name):
        if not props.get("Metrics"):
            return own["create"](logical_id, props, stack_name)
        return _metric_math_alarm(logical_id, props.get("AlarmName") or _engine._physical_name(stack_name, logical_id, max_len=255), props)

    def update(physical_id, old_props, new_props, stack_name, logical_id=None):
        if not new_props.get("Metrics") and not old_props.get("Metrics"):
            return own["update"](physical_id, old_props, new_props, stack_name, logical_id)
        name = new_props.get("AlarmName") or _engine._physical_name(stack_name, logical_id or physical_id, max_len=255)
        if not new_props.get("Metrics"):
            answer = own["create"](logical_id or physical_id, new_props, stack_name)
        else:
            answer = _metric_math_alarm(logical_id or physical_id, name, new_props)
        if name != physical_id:
            own["delete"](physical_id, old_props)
        return answer
    return {**own, "create": create, "update": update, "update_with_logical_id": True}


# --- registration --------------------------------------------------------------------------------

def _put_handlers(put, delete):
    def create(logical_id, props, stack_name):
        return put(logical_id, props, stack_name)

    def update(physical_id, old_props, new_props, stack_name, logical_id=None):
        return put(logical_id or physical_id, new_props, stack_name, physical_id)
    return {"create": create, "update": update, "update_with_logical_id": True, "delete": delete}


HANDLERS = {
    PIPELINE: {"create": pipeline_create, "update": pipeline_update, "update_with_logical_id": True, "delete": pipeline_delete},
    DELIVERY_SOURCE: _put_handlers(delivery_source_put, delivery_source_delete),
    DELIVERY_DESTINATION: _put_handlers(delivery_destination_put, delivery_destination_delete),
    DELIVERY: {"create": delivery_create, "update": delivery_update, "update_with_logical_id": True, "delete": delivery_delete},
    METRIC_STREAM: {"create": metric_stream_create, "update": metric_stream_update, "update_with_logical_id": True,
                    "delete": metric_stream_delete},
}


def register() -> None:
    """Add the stand-ins to the engine: their providers, and which property changes
    replace the resource (the schema's createOnlyProperties, as on AWS)."""
    assert set(HANDLERS) | {ALARM} == set(STANDINS), "every stand-in described in tooling/aws/standins/__init__.py has a provider"
    for type_name, handlers in HANDLERS.items():
        if type_name in _engine._RESOURCE_HANDLERS:
            raise RuntimeError(f"ministack now provides {type_name} itself: drop its stand-in")
        schema = schemas.load(type_name)  # fails now, not at the first deploy, if the schemas are missing
        _engine._RESOURCE_HANDLERS[type_name] = handlers
        _engine._REPLACING_PROPERTIES[type_name] = tuple(
            p.split("/")[2] for p in schema.get("createOnlyProperties", []) if p.count("/") == 2)
    schemas.load(ALARM)
    _engine._RESOURCE_HANDLERS[ALARM] = _alarm_handlers(_engine._RESOURCE_HANDLERS[ALARM])
