"""check: find, before anything changes, what would make a deploy fail or lose data.

Three kinds of finding, each blocking unless its override flag is given:
  orphan / other-stack  a resource the render names literally already exists and
                        is owned by no stack, or by another stack ("already exists")
  export-in-use         a deployed export the render removes or changes is imported
  stateful-change       the storage change set replaces or removes a stateful resource
The classification is pure (classify, export_findings, stateful_findings); the
gathering of facts from AWS is in gather_* below."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from . import aws, cfn_yaml, changes, graph, naming, stateful
from .workspace import Workspace

# Resource type -> the property that names it literally.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::CodeBuild::Project": "Name",
    "AWS::CodePipeline::Pipeline": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::Events::Rule": "Name",
}

OVERRIDES = {
    "orphan": "--allow-orphans",
    "other-stack": "--allow-other-owner",
    "export-in-use": "--allow-export-change",
    "stateful-change": "--allow-stateful-change",
}


@dataclass
class NamedResource:
    stack: str  # stack key
    logical_id: str
    type: str
    name: str


@dataclass
class Finding:
    kind: str  # orphan | other-stack | export-in-use | stateful-change
    stack: str
    subject: str
    detail: str
    fix: str

    @property
    def override(self) -> str:
        return OVERRIDES[self.kind]

    def as_json(self) -> dict:
        return {**asdict(self), "blocking": True, "override": self.override}


# --- pure -------------------------------------------------------------------------

def named_resources(key: str, stack_name: str, template: dict, account_id: str, region: str) -> list[NamedResource]:
    variables = graph.template_variables(template, stack_name, account_id, region)
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = (resource or {}).get("Type")
        prop = NAME_PROPERTIES.get(kind)
        value = ((resource or {}).get("Properties") or {}).get(prop) if prop else None
        if value is None:
            continue
        try:
            name = graph.resolve(value, variables, f"{key}: {logical_id}")
        except Exception:  # a name only known at deploy time cannot collide in advance
            continue
        found.append(NamedResource(key, logical_id, kind, name))
    return found


def classify(declared_by: str, exists: bool | None, owner: str | None) -> str:
    """free | ours | other-stack | orphan | unknown (existence not checkable here)."""
    if exists is None:
        return "unknown"
    if not exists:
        return "free"
    if owner == declared_by:
        return "ours"
    return "other-stack" if owner else "orphan"


def owner_of(name: str, owners: dict[str, str]) -> str | None:
    """The stack owning a physical id equal to `name` or ending in it (ARN forms)."""
    if name in owners:
        return owners[name]
    for physical_id, stack in owners.items():
        if physical_id.endswith((":" + name, "/" + name)):
            return stack
    return None


def resource_findings(ws: Workspace, resource: NamedResource, state: str, owner: str | None) -> Finding | None:
    if state == "orphan":
        if resource.stack == naming.STORAGE and resource.type in stateful.STATEFUL_TYPES:
            fix = f"adopt it into the storage stack, data kept: python deploy.py adopt --env {ws.env}{' --local' if ws.local else ''}"
        else:
            fix = f"it holds nothing the {resource.stack} stack needs: delete it by hand, then apply (or rename it in the template)"
        return Finding("orphan", resource.stack, f"{resource.type} {resource.name}",
                       f"exists but no stack owns it: creating {resource.stack}/{resource.logical_id} would fail with 'already exists'", fix)
    if state == "other-stack":
        return Finding("other-stack", resource.stack, f"{resource.type} {resource.name}",
                       f"is owned by stack {owner}; {resource.stack}/{resource.logical_id} cannot create it",
                       f"rename it in environments/{ws.env}.toml (naming.*) or retire stack {owner} first")
    return None


def export_findings(stack_key: str, removed: list[str], changed: list[str], importers: dict[str, list[str]],
                    importing_in_render: dict[str, set[str]], waiting_for_new: set[str] = frozenset()) -> list[Finding]:
    """importers: export -> stacks importing it now; importing_in_render: export -> stack names whose
    new render still imports it; waiting_for_new: stack names whose new render imports an export
    that does not exist yet (so they cannot be deployed before the exporter)."""
    findings = []
    for export, how in [(e, "removes") for e in removed] + [(e, "changes the value of") for e in changed]:
        users = sorted(importers.get(export, []))
        if not users:
            continue
        still = sorted(set(users) & importing_in_render.get(export, set()))
        blocked_both_ways = sorted(set(users) & set(waiting_for_new))
        if blocked_both_ways:
            fix = (f"neither order works in one step: {', '.join(blocked_both_ways)} need(s) the new export too. "
                   f"1) render {stack_key} with the new export beside {export} and deploy it; "
                   f"2) deploy {' '.join(users)} (python deploy.py apply --only {' '.join(users)}); "
                   f"3) then remove {export} from {stack_key} and deploy it")
        elif still:
            fix = (f"the new render still imports it in {', '.join(still)}: keep the export, or first add the new export beside "
                   f"the old one and deploy {stack_key}, then move {', '.join(still)} to it and deploy them, then remove the old one")
        else:
            fix = (f"deploy the importers first, whose new render no longer imports it (python deploy.py apply --only "
                   f"{' '.join(users)}), then deploy {stack_key}")
        findings.append(Finding("export-in-use", stack_key, export,
                                f"the new render {how} this export, which {', '.join(users)} import(s); CloudFormation would refuse the update",
                                fix))
    return findings


def changed_properties(old: dict, new: dict, names: tuple[str, ...]) -> list[str]:
    """Of `names`, the properties whose value differs between two resource definitions."""
    old_props, new_props = (old or {}).get("Properties") or {}, (new or {}).get("Properties") or {}
    return [n for n in names if json.dumps(old_props.get(n), sort_keys=True) != json.dumps(new_props.get(n), sort_keys=True)]


def stateful_findings(change_list: list[changes.Change], deployed: dict, rendered: dict) -> list[Finding]:
    """Block a removal, or a replacement whose cause is a property the render really
    changes (a change set may flag unchanged or reference-driven properties as
    'Conditional'; comparing the two templates keeps the gate to real changes)."""
    old_resources, new_resources = deployed.get("Resources") or {}, rendered.get("Resources") or {}
    findings = []
    for change in change_list:
        if change.resource_type not in stateful.STATEFUL_TYPES:
            continue
        if change.action == "Remove":
            findings.append(Finding("stateful-change", naming.STORAGE, f"{change.resource_type} {change.logical_id}",
                                    "the new render removes it from the storage stack (the stack policy would deny it; data would be left unmanaged)",
                                    "keep it in templates/storage.yaml.j2; retiring a bucket or table is a manual, reviewed operation"))
        elif change.action == "Modify" and change.replacement in ("True", "Conditional"):
            real = changed_properties(old_resources.get(change.logical_id), new_resources.get(change.logical_id), change.static_causes)
            if not real and change.replacement == "Conditional":
                continue
            causes = ", ".join(real or change.causes) or "a property"
            findings.append(Finding("stateful-change", naming.STORAGE, f"{change.resource_type} {change.logical_id}",
                                    f"the new render {'replaces' if change.replacement == 'True' else 'may replace'} it: {causes} forces a new resource",
                                    f"revert the change to {causes}; migrating data into a new resource is a separate, reviewed operation"))
    return findings


# --- facts from AWS ---------------------------------------------------------------

def gather_owners(ws: Workspace) -> dict[str, str]:
    """physical id -> stack name, over every live stack of the account and region."""
    owners = {}
    for stack_name in aws.live_stack_names(ws.region):
        for resource in aws.stack_resources(ws.region, stack_name):
            if resource.get("ResourceStatus") in ("DELETE_COMPLETE", "DELETE_SKIPPED"):
                continue
            if resource.get("PhysicalResourceId"):
                owners[resource["PhysicalResourceId"]] = stack_name
    return owners


def changed_stacks(ws: Workspace) -> dict[str, dict | None]:
    """Stacks whose render differs from what is deployed: key -> deployed stack (None if
    absent). On the local AWS, stacks it cannot hold are left out: they will be skipped."""
    from . import apply as applying

    def differs(key: str):
        if ws.local and applying.local_refusal(ws, key):
            return key, None, False
        deployed = aws.describe_stack(ws.region, ws.stacks[key]["name"])
        return key, deployed, not applying.is_unchanged(ws, key, deployed)

    with ThreadPoolExecutor(max_workers=len(ws.stacks)) as pool:
        return {key: deployed for key, deployed, changed in pool.map(differs, ws.stacks) if changed}


@dataclass
class Surveyed:
    resource: NamedResource
    state: str  # see classify()
    owner: str | None


def survey(ws: Workspace, keys, owners: dict[str, str] | None = None) -> list[Surveyed]:
    """Every resource the renders of `keys` name literally, looked up and classified."""
    owners = gather_owners(ws) if owners is None else owners
    resources = [r for key in sorted(keys)
                 for r in named_resources(key, ws.stacks[key]["name"], cfn_yaml.load(ws.template_text(key)), ws.account_id, ws.region)]
    with ThreadPoolExecutor(max_workers=8) as pool:  # one lookup per resource: I/O, so in parallel
        existence = list(pool.map(lambda r: aws.resource_exists(ws.region, ws.account_id, r.type, r.name), resources))
    result = []
    for resource, exists in zip(resources, existence):
        owner = owner_of(resource.name, owners) if exists else None
        result.append(Surveyed(resource, classify(ws.stacks[resource.stack]["name"], exists, owner), owner))
    return result


def run_check(ws: Workspace, log=lambda _: None, targets: dict | None = None) -> tuple[list[Finding], dict]:
    """All findings, and a report of what was looked at."""
    targets = changed_stacks(ws) if targets is None else targets
    findings: list[Finding] = []
    report = {"stacks_checked": sorted(targets), "named_resources": []}
    if not targets:
        return findings, report

    log(f"check: {len(targets)} stack(s) differ from what is deployed: {', '.join(sorted(targets))}")
    for item in survey(ws, targets):
        report["named_resources"].append({**asdict(item.resource), "state": item.state, "owner": item.owner})
        finding = resource_findings(ws, item.resource, item.state, item.owner)
        if finding:
            findings.append(finding)

    importing_in_render: dict[str, set[str]] = {}
    for stack in ws.manifest["stacks"]:
        for export in stack["imports"]:
            importing_in_render.setdefault(export, set()).add(stack["name"])
    live_exports = set(aws.list_exports(ws.region)) if any(targets.values()) else set()
    waiting_for_new = {s["name"] for s in ws.manifest["stacks"] if set(s["imports"]) - live_exports}
    for key, deployed in sorted(targets.items()):
        if not deployed:
            continue
        deployed_exports = {o["ExportName"]: o["OutputKey"] for o in deployed.get("Outputs", []) if o.get("ExportName")}
        rendered = cfn_yaml.load(ws.template_text(key))
        new_exports = set(ws.stacks[key]["exports"])
        removed = sorted(set(deployed_exports) - new_exports)
        changed = []
        kept = [e for e in deployed_exports if e in new_exports]
        if kept:
            old_outputs = cfn_yaml.load(aws.get_template_body(ws.region, deployed["StackName"])).get("Outputs") or {}
            new_outputs = rendered.get("Outputs") or {}
            for export in kept:
                output_key = deployed_exports[export]
                old = json.dumps((old_outputs.get(output_key) or {}).get("Value"), sort_keys=True)
                new = json.dumps((new_outputs.get(output_key) or {}).get("Value"), sort_keys=True)
                if old != new:
                    changed.append(export)
        importers = {e: aws.list_imports(ws.region, e) for e in removed + changed}
        findings += export_findings(key, removed, changed, importers, importing_in_render, waiting_for_new)

    storage = targets.get(naming.STORAGE)
    if storage and changes.succeeded(storage["StackStatus"]):
        from .commands import change_set_for

        described = change_set_for(ws, naming.STORAGE)
        summary = changes.summarize_change_set(described.get("Changes", []))
        report["storage_changes"] = [asdict(c) for c in summary]
        deployed_template = cfn_yaml.load(aws.get_template_body(ws.region, storage["StackName"]))
        findings += stateful_findings(summary, deployed_template, cfn_yaml.load(ws.template_text(naming.STORAGE)))
    return findings, report


def print_findings(findings: list[Finding], log) -> None:
    if not findings:
        log("check: nothing blocks")
        return
    log(f"check: {len(findings)} blocking finding(s):")
    for finding in findings:
        log(f"  [{finding.kind}] {finding.stack}: {finding.subject}")
        log(f"      {finding.detail}")
        log(f"      fix: {finding.fix}")
        log(f"      (override: {finding.override})")
