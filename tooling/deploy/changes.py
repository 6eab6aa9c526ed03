"""Pure functions over what CloudFormation reports: change sets and events.

Kept apart from the AWS calls so they are tested on recorded shapes, no AWS."""
from __future__ import annotations

from dataclasses import dataclass

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
    properties: tuple[str, ...] = ()  # the properties the change set says change

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
            properties=tuple(sorted({d["Target"]["Name"] for d in details
                                     if d.get("Target", {}).get("Attribute") == "Properties" and d["Target"].get("Name")})),
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
