"""The change set of a stack: prepared from the render exactly as it will run, then
created, waited for and inspected. plan, check and apply all go through here, so
the change set that check inspects is the kind that apply executes: the same
packaged template, tags and capabilities (samconfig's), made by this tool only.

Preparing = the render with its fingerprint in Metadata; for a SAM stack, `sam
package` uploads the code to the storage stack's artifacts bucket and rewrites
CodeUri; a template over TemplateBody's limit goes to that bucket too."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ...aws import cloudformation as cfn
from ...aws import lookups, s3
from ...aws.lookups import UNSUPPORTED_CODES
from ...aws.session import BotoCoreError, ClientError, describe_error, error_code
from ...aws.sam_runner import SamRunner
from ...errors import UserError
from ...paths import ROOT
from ...render import naming, samconfig
from .. import changes, fingerprint, interrupt
from . import findings, inventory
from ..workspace import Workspace


@dataclass
class Prepared:
    key: str
    stack_name: str
    body: str  # the template CloudFormation receives
    url: str | None  # set when the body went to S3 (too large for TemplateBody)
    capabilities: list[str]
    tags: dict[str, str]
    retained_for_import: list[str] = field(default_factory=list)  # given an importable DeletionPolicy
    parameters: dict[str, str] = field(default_factory=dict)  # filled from other stacks' outputs


def tags(ws: Workspace, key: str) -> dict[str, str]:
    return samconfig.stack_tags(ws.manifest, ws.stacks[key])


def _extra(ws: Workspace, key: str, parameters: dict[str, str]) -> str:
    """What a deploy sends besides the template and its code: tags and parameter values."""
    return repr(sorted(tags(ws, key).items())) + (repr(sorted(parameters.items())) if parameters else "")


def stack_fingerprint(ws: Workspace, key: str, parameters: dict[str, str] | None = None) -> str:
    return fingerprint.fingerprint(ws.template(key), ws.template_path(key).parent, extra=_extra(ws, key, parameters or {}))


# CloudFormation imports an existing resource only if the template keeps it on delete.
IMPORTABLE_POLICIES = ("Retain", "RetainExceptOnCreate")


def for_import(template: dict, logical_ids) -> tuple[dict, list[str]]:
    """The template with DeletionPolicy RetainExceptOnCreate on those of `logical_ids`
    that lack an importable policy (CloudFormation's condition for taking over an
    existing resource), and the ids so changed."""
    changed = [lid for lid in sorted(logical_ids)
               if (template.get("Resources") or {}).get(lid, {}).get("DeletionPolicy") not in IMPORTABLE_POLICIES]
    if not changed:
        return template, []
    copy = json.loads(json.dumps(template))
    for lid in changed:
        copy["Resources"][lid]["DeletionPolicy"] = "RetainExceptOnCreate"
    return copy, changed


def deploy_copy(ws: Workspace, key: str, import_ids=(), parameters: dict[str, str] | None = None) -> tuple[Path, list[str]]:
    """The render with its fingerprint, written beside it (relative CodeUri paths hold).
    With `import_ids`, the resources to take over get an importable DeletionPolicy; the
    fingerprint then covers that change, so the next plain apply restores the render's."""
    source = ws.template_path(key)
    copy = source.with_name(f"{source.stem}.deploy.yaml")
    template, changed = for_import(ws.template(key), import_ids)
    digest = fingerprint.fingerprint(template, source.parent, extra=_extra(ws, key, parameters or {}))
    if not changed:  # the render's own text, comments kept
        copy.write_text(fingerprint.with_fingerprint(ws.template_text(key), digest), encoding="utf-8")
    else:
        template.setdefault("Metadata", {})[fingerprint.KEY] = digest
        copy.write_text(json.dumps(template, indent=1), encoding="utf-8")  # JSON is YAML: sam and CloudFormation read it
    return copy, changed


def missing_code(ws: Workspace, key: str) -> list[Path]:
    return [p for p in fingerprint.code_dirs(ws.template(key), ws.template_path(key).parent) if not p.is_dir()]


def prepare(ws: Workspace, key: str, sam: SamRunner, import_ids=(), parameters: dict[str, str] | None = None) -> Prepared:
    stack = ws.stacks[key]
    copy, retained_for_import = deploy_copy(ws, key, import_ids, parameters)
    missing = missing_code(ws, key)
    if missing:  # sam resolves CodeUri relative to the rendered template
        raise UserError(f"{key}: code folder {missing[0]} not found from {ws.template_path(key)} (render into build/<name>/)", status=1)
    artifacts = ws.manifest["physical_names"]["buckets"]["backend_artifacts"]
    if stack.get("sam"):
        config = samconfig.deploy_parameters(ws.manifest, stack, ws.out_dir)
        packaged = ws.out_dir / "packaged" / f"{key}.yaml"
        log = ws.out_dir / "logs" / f"{key}-package.log"
        packaged.parent.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        code = sam.run(["package", "--template-file", str(copy), "--s3-bucket", config["s3_bucket"],
                        "--s3-prefix", config["s3_prefix"], "--output-template-file", str(packaged),
                        "--region", ws.region_of(key), "--no-progressbar"], log)
        if code != 0:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
            raise UserError(f"{key}: sam package exited {code}: {lines[-1] if lines else ''} (log: {_shown(log)})", status=1)
        body = packaged.read_text(encoding="utf-8")
    else:
        body = copy.read_text(encoding="utf-8")
    url = None
    if len(body.encode("utf-8")) > cfn.TEMPLATE_BODY_LIMIT:
        digest = hashlib.sha256(body.encode()).hexdigest()[:16]
        if ws.region_of(key) != ws.region:  # TemplateURL must name a bucket of the stack's own region
            raise UserError(f"{key}: its template is over {cfn.TEMPLATE_BODY_LIMIT} bytes and its region has no artifacts bucket", status=1)
        url = s3.upload_template(ws.region, artifacts, f"templates/{key}/{digest}.yaml", body)
    return Prepared(key, stack["name"], body, url, samconfig.capabilities(stack), tags(ws, key), retained_for_import,
                    dict(parameters or {}))


def create(ws: Workspace, prepared: Prepared, stack_exists: bool, import_existing: bool = False, inspect_only: bool = False) -> str:
    """inspect_only: a change set check or plan reads and deletes, never executes (named so)."""
    return cfn.create_change_set(ws.region_of(prepared.key), prepared.stack_name, "UPDATE" if stack_exists else "CREATE",
                                 prepared.capabilities, template_body=None if prepared.url else prepared.body,
                                 template_url=prepared.url, tags=prepared.tags, import_existing=import_existing,
                                 inspect_only=inspect_only,
                                 parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(prepared.parameters.items())])


class Executing:
    """The life of a created change set: executed, or deleted on the way out.

        with Executing(region, change_set_id) as run:
            ...inspect; return without executing, and it is deleted...
            run.execute()

    If ExecuteChangeSet raises (CloudFormation may have acted before its answer was
    lost), the deletion that follows is attempted, but its own error never replaces the
    execute's: it is added to that error as a note."""

    def __init__(self, region: str, change_set_id: str):
        self.region, self.change_set_id, self.executed = region, change_set_id, False

    def execute(self, what: str = "executing the change set") -> None:
        """Execute, unless an interrupt came: then it raises, and the change set is deleted."""
        interrupt.checkpoint(what)
        cfn.execute_change_set(self.region, self.change_set_id)
        self.executed = True

    def __enter__(self) -> "Executing":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if self.executed:
            return False
        if error is None:
            cfn.delete_change_set(self.region, self.change_set_id)  # nothing else in flight: its error is the error
            return False
        try:
            cfn.delete_change_set(self.region, self.change_set_id)
        except Exception as cleanup:  # noqa: BLE001 - reported with the error that matters
            error.add_note(f"(the change set {self.change_set_id} could not be deleted afterwards: {cleanup})")
        return False


@dataclass
class Inspection:
    change_set_id: str
    outcome: str  # ready | no-changes | failed | unfinished
    reason: str = ""
    summary: list[changes.Change] = field(default_factory=list)
    findings: list[findings.Finding] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)  # change set vs schema disagreements

    @property
    def blocking(self) -> list[findings.Finding]:
        return [f for f in self.findings if f.blocking]


def inspect(ws: Workspace, key: str, change_set_id: str, deployed: dict | None, old, new, gate: bool = True) -> Inspection:
    """Wait for the change set and read it: its outcome, its changes, its early-validation
    events, and what blocks. Whatever the change set says it does to a stateful resource
    (Remove, Replacement True) blocks. With `gate`, an update of the storage stack also
    goes through the stateful gate (check runs the gate once itself, so it passes
    gate=False). `new` is re-based on the change set's own parameter values."""
    region = ws.region_of(key)
    described = cfn.wait_change_set(region, change_set_id)
    outcome, reason = findings.change_set_outcome(described)
    found = [f for f in [findings.change_set_finding(key, ws.stacks[key]["name"], outcome, reason)] if f]
    if outcome in ("failed", "ready"):
        validated, reason = validation_findings(ws, key, change_set_id, outcome, reason)
        if outcome == "failed" and any(f.blocking for f in validated):
            found = []  # the events say what the change set's own reason only summarises
        found += validated
    summary = changes.summarize_change_set(described.get("Changes", [])) if outcome == "ready" else []
    if new is not None:
        new = new.with_parameters(change_set_parameters(described))
    rendered = ws.template(key)
    found += findings.change_set_stateful_findings(key, summary, deployed, rendered, old, new, ws.local)
    notes = []
    if deployed is not None:
        notes = findings.disagreements(summary, deployed, rendered, old, new, ws.local)
        if gate and key == naming.STORAGE:
            found += [f for f in findings.stateful_findings(deployed, rendered, old, new)
                      if (f.kind, f.subject) not in {(g.kind, g.subject) for g in found}]
    return Inspection(change_set_id, outcome, reason, summary, found, notes)


def change_set_parameters(described: dict) -> dict[str, str]:
    """The parameter values a change set runs with (a NoEcho value, shown masked, is left out)."""
    values = {}
    for parameter in described.get("Parameters") or []:
        value = parameter.get("ResolvedValue", parameter.get("ParameterValue"))
        if value is not None and value != "****":
            values[parameter["ParameterKey"]] = value
    return values


def validation_findings(ws: Workspace, key: str, change_set_id: str, outcome: str, reason: str) -> tuple[list, str]:
    """The change set's early-validation events as findings, and its reason with what
    they say. A name conflict is looked up like check's inventory does (an orphan, or
    another owner, with its fix). If the events cannot be read, a failed change set keeps
    its own reason as the finding; a ready one is unknown (a warning may be unread)."""
    region, stack_name = ws.region_of(key), ws.stacks[key]["name"]
    try:
        events = cfn.validation_events(region, change_set_id)
    except (ClientError, BotoCoreError) as exc:
        why = f"its early-validation events could not be read ({describe_error(exc)})"
        if outcome == "failed":
            return [], f"{reason} ({why})"
        note = ws.local and isinstance(exc, ClientError) and error_code(exc) in UNSUPPORTED_CODES
        return [findings.Finding("unknown", key, stack_name,
                                 f"{why}: a warning of CloudFormation's (e.g. a non-empty bucket to delete) would go unseen"
                                 + (" (a note on the local AWS, which lacks the call; on AWS it blocks)" if note else ""),
                                 "allow cloudformation:DescribeEvents and check again, or accept with --allow-unknown",
                                 blocking=not note)], reason
    found, owners = [], None
    rendered = ws.template(key)
    for event in events:
        conflict = None
        if event.get("ValidationName") == findings.NAME_CONFLICT and event.get("ValidationStatus") != "SKIPPED":
            owners = owners or inventory.Owners(region)
            conflict = _conflict(ws, key, event, rendered, owners)
        found.append(findings.validation_finding(key, event, conflict))
    if found:
        reason = "; ".join([reason] * bool(reason) + [f.detail for f in found if f.blocking])
    return found, reason


def _conflict(ws: Workspace, key: str, event: dict, rendered: dict, owners) -> findings.Finding | None:
    """check's own finding for the name an early-validation conflict is about, or None
    when the name or its owner cannot be told (the event then speaks for itself)."""
    stack_name, region = ws.stacks[key]["name"], ws.region_of(key)
    logical = event.get("LogicalResourceId") or ""
    declared = ((rendered.get("Resources") or {}).get(logical) or {}).get("Type") or event.get("ResourceType") or ""
    name = findings.conflict_identifier(event)
    if not name:
        named = [r for r in inventory.named_resources(key, stack_name, rendered, ws.account_id, region) if r.logical_id == logical]
        name = named[0].name if named else ""
    if not (logical and declared and name):
        return None
    resource = inventory.NamedResource(key, logical, declared, name)
    physical = name if name.startswith("arn:") else inventory.physical_id(resource.deployed_type, name, ws.account_id, region)
    try:
        owner = owners.owner(resource.deployed_type, physical)
    except (ClientError, BotoCoreError) as exc:
        item = inventory.Surveyed(resource, inventory.UNKNOWN, reason=f"owner lookup failed: {describe_error(exc)}")
        return findings.resource_finding(item, stack_name, ws.env, ws.local)
    item = inventory.classify(resource, stack_name, lookups.Lookup("exists"), owner)
    return findings.resource_finding(item, stack_name, ws.env, ws.local)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
