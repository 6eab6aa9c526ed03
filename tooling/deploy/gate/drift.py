"""Drift: what was changed outside CloudFormation.

Two sources, because neither sees everything:

- The read-back (every check): the storage stack's protections read straight from S3
  and DynamoDB and compared with the deployed storage template (not the render: a
  change the next apply brings is not drift). Versioning, the public access block,
  default encryption (and its key), the bucket policies (present, with the
  template's statements), the table (there at all), its point-in-time recovery,
  deletion protection and encryption. It sees what DetectStackDrift does not:
  DetectStackDrift checks only properties the template sets explicitly, never
  KMSKeyId, only in *_COMPLETE and UPDATE_ROLLBACK_FAILED states, and the local
  AWS's reports nothing for PITR or a deleted bucket policy.
- CloudFormation's drift detection (`deploy.py drift`, `check --drift`): every
  stack, every resource type CloudFormation can check.

Pure functions decide; the reads sit in tooling/aws (readback, cloudformation)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ...aws import cloudformation as cfn
from ...aws import readback
from ...aws.session import BotoCoreError, ClientError, describe_error
from ...render import cfn_yaml, naming
from .. import local, stacks
from ..workspace import Workspace
from . import replacement
from .findings import Finding, command

READ_BACK = ("VersioningConfiguration", "PublicAccessBlockConfiguration", "BucketEncryption",
             "PointInTimeRecoverySpecification", "DeletionProtectionEnabled", "SSESpecification")
PAB_FLAGS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
# DetectStackDrift runs on stacks in these states only (CloudFormation's documented limit).
DETECTABLE = lambda status: status.endswith("_COMPLETE") and status != "DELETE_COMPLETE" or status == "UPDATE_ROLLBACK_FAILED"  # noqa: E731


@dataclass(frozen=True)
class Expected:
    """One protection as the deployed template states it."""
    logical_id: str
    type: str  # the resource the value is read from: AWS::S3::Bucket or AWS::DynamoDB::Table
    name: str  # its physical name
    path: str  # as readback returns it, e.g. VersioningConfiguration.Status
    value: object


@dataclass(frozen=True)
class Difference:
    expected: Expected
    actual: object

    def as_json(self) -> dict:
        e = self.expected
        return {"logical_id": e.logical_id, "type": e.type, "name": e.name, "property": e.path,
                "expected": e.value, "actual": self.actual}


def expectations(template: dict, resolver: replacement.Resolver) -> tuple[list[Expected], list[str]]:
    """The protections the template states, and what could not be resolved (fail closed)."""
    found: list[Expected] = []
    unresolved: list[str] = []
    resources = template.get("Resources") or {}
    names: dict[str, str] = {}
    for logical_id, resource in resources.items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if kind not in ("AWS::S3::Bucket", "AWS::DynamoDB::Table"):
            continue
        try:
            name = resolver.resolve(props.get("BucketName" if kind == "AWS::S3::Bucket" else "TableName"))
            resolved = resolver.resolve({k: v for k, v in props.items() if k in READ_BACK})  # only these: others may hold Fn::If
        except replacement.Unresolved as exc:
            unresolved.append(f"{logical_id}: {exc}")
            continue
        if not isinstance(name, str):
            unresolved.append(f"{logical_id}: no literal name")
            continue
        names[logical_id] = name

        def add(path, value, lid=logical_id, k=kind, n=name):
            found.append(Expected(lid, k, n, path, value))

        add("exists", True)
        if kind == "AWS::S3::Bucket":
            status = (resolved.get("VersioningConfiguration") or {}).get("Status")
            if status:
                add("VersioningConfiguration.Status", status)
            block = resolved.get("PublicAccessBlockConfiguration") or {}
            for flag in PAB_FLAGS:
                if flag in block:
                    add(f"PublicAccessBlockConfiguration.{flag}", _bool(block[flag]))
            rules = (resolved.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
            default = (rules[0].get("ServerSideEncryptionByDefault") or {}) if rules else {}
            if default.get("SSEAlgorithm"):
                add("BucketEncryption.SSEAlgorithm", default["SSEAlgorithm"])
            if default.get("KMSMasterKeyID"):
                add("BucketEncryption.KMSMasterKeyID", default["KMSMasterKeyID"])
        else:
            pitr = (resolved.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
            if pitr is not None:
                add("PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled", _bool(pitr))
            if "DeletionProtectionEnabled" in resolved:
                add("DeletionProtectionEnabled", _bool(resolved["DeletionProtectionEnabled"]))
            sse = (resolved.get("SSESpecification") or {}).get("SSEEnabled")
            if sse is not None:
                add("SSESpecification.SSEEnabled", _bool(sse))
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::S3::BucketPolicy":
            continue
        props = resource.get("Properties") or {}
        try:
            bucket = resolver.resolve(props.get("Bucket"))
        except replacement.Unresolved as exc:
            unresolved.append(f"{logical_id}: {exc}")
            continue
        sids = sorted(s.get("Sid", "") for s in (props.get("PolicyDocument") or {}).get("Statement", []))
        found.append(Expected(logical_id, "AWS::S3::Bucket", str(bucket), "BucketPolicy.Sids", sids))
    return found, unresolved


def _bool(value) -> bool:
    return value is True or str(value).lower() == "true"


def differences(expected: list[Expected], actual: dict[str, dict]) -> list[Difference]:
    """Each expectation that the resource read back does not meet. A missing resource is
    one difference ("exists"), not one per property."""
    found = []
    for e in expected:
        got = actual.get(e.name, {})
        if not got.get("exists", False):
            if e.path == "exists":
                found.append(Difference(e, False))
            continue
        value = got.get(e.path)
        if e.path == "BucketPolicy.Sids":
            if not set(e.value) <= set(value or []):
                found.append(Difference(e, value or "no bucket policy"))
        elif e.path == "BucketEncryption.KMSMasterKeyID":
            if not value or not (str(value).endswith(str(e.value)) or str(e.value).endswith(str(value))):
                found.append(Difference(e, value or "none"))
        elif e.path != "exists" and value != e.value:
            found.append(Difference(e, value))
    return found


@dataclass
class ReadBack:
    differences: list[Difference] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # what could not be read or resolved
    stack_protection: list[str] = field(default_factory=list)  # termination protection / stack policy problems
    deployed: bool = True  # False: no storage stack to read back
    not_compared: list[str] = field(default_factory=list)  # what the local AWS does not apply, so not read back


def deployed_storage(ws: Workspace) -> tuple[dict | None, dict, replacement.Resolver | None]:
    """The storage stack, its deployed template and a resolver for it (None when not deployed)."""
    name = ws.stacks[naming.STORAGE]["name"]
    stack, state = stacks.current(ws.region, name)
    if stack is None or not state.exports_live:
        return stack, {}, None
    template = cfn_yaml.load(cfn.get_template_body(ws.region, name))
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.stack_resources(ws.region, name)
                if r.get("PhysicalResourceId")}
    parameters = {p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in stack.get("Parameters", [])}
    return stack, template, replacement.resolver_for(template, name, ws.account_id, ws.region, parameters, physical)


def stack_protection_problems(ws: Workspace, stack: dict) -> list[str]:
    """Termination protection and the stack policy of the deployed storage stack."""
    problems = []
    if not stack.get("EnableTerminationProtection"):
        problems.append("termination protection is off")
    policy = cfn.stack_policy(ws.region, stack["StackName"])
    if policy != ws.stack_policy():
        problems.append("no stack policy" if policy is None else "the stack policy differs from storage-stack-policy.json")
    return problems


def read_back(ws: Workspace) -> ReadBack:
    """Storage's protections as they are, against the deployed template."""
    try:
        stack, template, resolver = deployed_storage(ws)
        if stack is None:
            return ReadBack(deployed=False)
        result = ReadBack(stack_protection=stack_protection_problems(ws, stack))
        if resolver is None:  # not in a state whose template is live (e.g. a create in progress)
            return result
        expected, result.unknown = expectations(template, resolver)
        if local.on_emulator(ws):
            skipped = sorted({f"{e.type} {e.path}" for e in expected if (e.type, e.path) in local.NOT_APPLIED_ON_CREATE})
            expected = [e for e in expected if (e.type, e.path) not in local.NOT_APPLIED_ON_CREATE]
            result.not_compared = skipped
        actual, errors = _read_all(ws.region, expected)
        result.unknown += errors
        result.differences = differences([e for e in expected if e.name in actual], actual)  # unread ones are unknown
        return result
    except (ClientError, BotoCoreError) as exc:
        return ReadBack(unknown=[describe_error(exc)])


def _read_all(region: str, expected: list[Expected]) -> tuple[dict[str, dict], list[str]]:
    targets = sorted({(e.type, e.name) for e in expected})
    errors: list[str] = []

    def one(target):
        kind, name = target
        try:
            return name, (readback.bucket(region, name) if kind == "AWS::S3::Bucket" else readback.table(region, name))
        except (ClientError, BotoCoreError) as exc:
            errors.append(f"{kind} {name}: {describe_error(exc)}")
            return name, None

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as pool:
        read = dict(pool.map(one, targets))
    return {n: v for n, v in read.items() if v is not None}, errors


def findings_of(ws: Workspace, result: ReadBack) -> list[Finding]:
    """Blocking findings: each difference names resource and property; one fix for all."""
    name = ws.stacks[naming.STORAGE]["name"]
    fix = command(ws.env, ws.local, "drift", "--revert")
    found = []
    for problem in result.stack_protection:
        found.append(Finding("unprotected", naming.STORAGE, name, problem, fix))
    for d in result.differences:
        e = d.expected
        if e.path == "exists":
            found.append(Finding("drift", naming.STORAGE, f"{e.type} {e.name} ({e.logical_id})",
                                 "does not exist, though the storage stack holds it: it was deleted outside CloudFormation, with its data",
                                 f"restore it from a backup under its name (for the table: aws dynamodb restore-table-to-point-in-time "
                                 f"--source-table-arn <the deleted table's ARN> --target-table-name {e.name} --use-latest-restorable-time), "
                                 f"then {fix}"))
            continue
        found.append(Finding("drift", naming.STORAGE, f"{e.type} {e.name} ({e.logical_id})",
                             f"{e.path} is {json.dumps(d.actual)}, the template says {json.dumps(e.value)} (changed outside CloudFormation; "
                             f"an apply would not put it back while the template value is unchanged)", fix))
    for problem in result.unknown:
        found.append(Finding("unknown", naming.STORAGE, name, f"storage's protections could not be read back: {problem}",
                             f"fix the cause and check again, or accept with --allow-unknown"))
    return found


# --- CloudFormation's drift detection ----------------------------------------------------------

@dataclass
class StackDrift:
    key: str
    name: str
    status: str  # DRIFTED | IN_SYNC | NOT_CHECKED | not-deployed | not-detectable | failed
    detail: str = ""
    resources: list[dict] = field(default_factory=list)  # {logical_id, type, physical_id, status, differences}

    def as_json(self) -> dict:
        return dict(self.__dict__)


def summarize_resource_drifts(drifts: list[dict]) -> list[dict]:
    """DescribeStackResourceDrifts' records as rows: resource, status, property differences."""
    return [{"logical_id": d["LogicalResourceId"], "type": d.get("ResourceType", ""), "physical_id": d.get("PhysicalResourceId", ""),
             "status": d.get("StackResourceDriftStatus", ""),
             "differences": [{"path": p.get("PropertyPath", ""), "expected": p.get("ExpectedValue"), "actual": p.get("ActualValue"),
                              "type": p.get("DifferenceType", "")} for p in d.get("PropertyDifferences", [])]}
            for d in drifts]


def detect(ws: Workspace, key: str, stop=None) -> StackDrift:
    name, region = ws.stacks[key]["name"], ws.region_of(key)
    try:
        stack = cfn.describe_stack(region, name)
        if stack is None:
            return StackDrift(key, name, "not-deployed")
        if not DETECTABLE(stack["StackStatus"]):
            return StackDrift(key, name, "not-detectable", f"{stack['StackStatus']}: CloudFormation detects drift only in "
                                                          f"*_COMPLETE and UPDATE_ROLLBACK_FAILED states")
        status = cfn.drift_detection(region, cfn.detect_stack_drift(region, name), stop=stop)
        if status.get("DetectionStatus") != "DETECTION_COMPLETE":
            return StackDrift(key, name, "failed", f"{status.get('DetectionStatus')}: {status.get('DetectionStatusReason', '')}")
        result = StackDrift(key, name, status.get("StackDriftStatus", "UNKNOWN"))
        if result.status == "DRIFTED":
            result.resources = summarize_resource_drifts(cfn.resource_drifts(region, name))
        return result
    except (ClientError, BotoCoreError) as exc:
        return StackDrift(key, name, "failed", describe_error(exc))


def detect_all(ws: Workspace, keys, stop=None) -> list[StackDrift]:
    keys = list(keys)
    with ThreadPoolExecutor(max_workers=max(1, len(keys))) as pool:
        return list(pool.map(lambda k: detect(ws, k, stop), keys))


def detection_findings(ws: Workspace, results: list[StackDrift]) -> list[Finding]:
    """check --drift: a drifted storage resource blocks (fix: drift --revert); a drifted
    stateless stack is a note (its next deploy of a changed property puts it back);
    detection that failed is unknown (blocks)."""
    found = []
    for r in results:
        if r.status == "failed":
            found.append(Finding("unknown", r.key, r.name, f"drift detection failed: {r.detail}",
                                 "fix the cause and check again, or accept with --allow-unknown"))
        for res in r.resources:
            diffs = "; ".join(f"{d['path']}: {d['expected']!s} -> {d['actual']!s}" for d in res["differences"]) or res["status"]
            found.append(Finding("drift", r.key, f"{res['type']} {res['physical_id'] or res['logical_id']} ({res['logical_id']})",
                                 f"{res['status']} outside CloudFormation: {diffs}",
                                 command(ws.env, ws.local, "drift", "--revert") if r.key == naming.STORAGE
                                 else f"re-deploy {r.key} with the property changed, or revert it by hand (see: "
                                      f"{command(ws.env, ws.local, 'drift')})",
                                 blocking=r.key == naming.STORAGE))
    return found
