"""Pure functions over what CloudFormation reports: change sets, events, states.

Kept apart from the AWS calls so they are tested on recorded shapes, no AWS."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from . import cfn_yaml

OK_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
# A stack whose first create failed (or never ran) holds nothing: it can only be
# deleted, and is deleted before a new create.
EMPTY_STATES = {"ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"}
# Kept in the deployed template's top-level Metadata: reading it back costs one
# GetTemplate, and unlike a stack tag it does not touch every resource when it changes.
FINGERPRINT_KEY = "DeployFingerprint"


def succeeded(status: str | None) -> bool:
    """Only a *_COMPLETE that is not a rollback counts: ROLLBACK_* is never success."""
    return status in OK_STATES


def in_progress(status: str | None) -> bool:
    return bool(status) and status.endswith("_IN_PROGRESS")


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" (not a Modify)
    causes: tuple[str, ...] = ()  # properties that may force the replacement
    static_causes: tuple[str, ...] = ()  # of those, the ones changed in the template itself
    direct: bool = True  # False: only re-evaluated because something it references changes
    caused_by: tuple[str, ...] = ()  # the resources whose change ripples into this one

    @property
    def label(self) -> str:
        if self.action == "Modify" and self.replacement in ("True", "Conditional"):
            return "replace" if self.replacement == "True" else "replace?"
        return {"Add": "add", "Modify": "modify", "Remove": "remove", "Import": "import"}.get(self.action, self.action.lower())


def summarize_change_set(changes: list[dict]) -> list[Change]:
    result = []
    for change in changes:
        rc = change.get("ResourceChange") or {}
        forcing = [d for d in rc.get("Details") or []
                   if d.get("Target", {}).get("RequiresRecreation") in ("Always", "Conditionally") and d.get("Target", {}).get("Name")]
        causes = tuple(sorted({d["Target"]["Name"] for d in forcing}))
        static_causes = tuple(sorted({d["Target"]["Name"] for d in forcing
                                      if d.get("Evaluation") == "Static" and d.get("ChangeSource", "DirectModification") == "DirectModification"}))
        details = rc.get("Details") or []
        # A change set also lists resources that merely reference a changed one
        # (ChangeSource ResourceReference, Evaluation Dynamic): they follow, they are not the change.
        direct = rc.get("Action") != "Modify" or not details or any(
            d.get("ChangeSource") not in ("ResourceReference", "ParameterReference", "ResourceAttribute")
            and d.get("Target", {}).get("Attribute") != "Tags" for d in details)
        caused_by = tuple(sorted({d["CausingEntity"].split(".")[0] for d in details if d.get("CausingEntity")}))
        result.append(Change(
            action=rc.get("Action", "?"),
            logical_id=rc.get("LogicalResourceId", "?"),
            resource_type=rc.get("ResourceType", "?"),
            replacement=str(rc.get("Replacement", "")) if rc.get("Action") == "Modify" else "",
            causes=causes,
            static_causes=static_causes,
            direct=direct,
            caused_by=caused_by,
        ))
    return sorted(result, key=lambda c: (c.logical_id, c.action))


def count_labels(changes: list[Change]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.label] = counts.get(change.label, 0) + 1
    return counts


def first_failure(events: list[dict], since=None) -> dict | None:
    """The first resource that failed in the latest operation, with its reason.

    `events` is newest first (as CloudFormation returns them). Cancellations caused
    by another failure are passed over, so the root cause is what is named."""
    chronological = list(reversed(events))
    if since is not None:
        chronological = [e for e in chronological if e["Timestamp"] >= since]
    for event in chronological:
        status = event.get("ResourceStatus", "")
        reason = event.get("ResourceStatusReason") or ""
        if not status.endswith("_FAILED"):
            continue
        if event.get("LogicalResourceId") == event.get("StackName"):
            continue  # the stack's own line repeats a resource's reason
        if "cancelled" in reason.lower():
            continue
        return event
    for event in chronological:  # only stack-level failures (e.g. a validation error)
        if event.get("ResourceStatus", "").endswith("_FAILED"):
            return event
    return None


def code_dirs(template_text: str, template_dir: Path) -> list[Path]:
    """Local code folders a SAM template packages (CodeUri / ContentUri)."""
    template = cfn_yaml.load(template_text)
    found = set()
    for resource in (template.get("Resources") or {}).values():
        props = (resource or {}).get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            value = props.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                found.add((template_dir / value).resolve())
    return sorted(found)


def fingerprint(template_text: str, template_dir: Path, extra: str = "") -> str:
    """A digest of everything a deploy of this stack sends: the template, the code it
    packages and `extra` (tags, parameters). Equal digest = nothing to deploy."""
    digest = hashlib.sha256()
    digest.update(template_text.encode())
    digest.update(extra.encode())
    for folder in code_dirs(template_text, template_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def blocked(skipped: set[str], depends_on: dict[str, list[str]]) -> dict[str, str]:
    """Stacks that cannot deploy because a stack they need was skipped: key -> the skipped one."""
    result: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for key, deps in depends_on.items():
            if key in skipped or key in result:
                continue
            for dep in deps:
                if dep in skipped or dep in result:
                    result[key] = dep if dep in skipped else result[dep]
                    changed = True
                    break
    return result


def with_fingerprint(template_text: str, digest: str) -> str:
    """The template with `Metadata: DeployFingerprint: <digest>` added at the top level."""
    line = f"  {FINGERPRINT_KEY}: {digest}\n"
    match = re.search(r"^Metadata:[ \t]*\n", template_text, flags=re.MULTILINE)
    if match:
        return template_text[:match.end()] + line + template_text[match.end():]
    return template_text.rstrip("\n") + "\nMetadata:\n" + line


def fingerprint_of(template: dict) -> str | None:
    metadata = template.get("Metadata")
    return str(metadata.get(FINGERPRINT_KEY)) if isinstance(metadata, dict) and metadata.get(FINGERPRINT_KEY) else None
