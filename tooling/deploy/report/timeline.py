"""The timeline of a stack's last operation, from CloudFormation's events (as `rain logs
--chart` draws it): when each resource started and ended, and how. Pure functions over
the events DescribeStackEvents returns (newest first)."""
from __future__ import annotations

from dataclasses import dataclass, field

# The stack-level statuses an operation starts with (a change set's CREATE starts after
# REVIEW_IN_PROGRESS; rollbacks and cleanups belong to the operation they follow).
STARTS = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "IMPORT_IN_PROGRESS")


@dataclass
class Span:
    logical_id: str
    resource_type: str
    start: object  # CloudFormation's timestamps
    end: object
    status: str  # the last status seen
    reason: str = ""

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED") or "ROLLBACK" in self.status

    def as_json(self, origin) -> dict:
        return {"logical_id": self.logical_id, "type": self.resource_type, "status": self.status, "reason": self.reason,
                "start": round((self.start - origin).total_seconds(), 3), "seconds": round(self.seconds, 3)}


@dataclass
class Operation:
    stack: Span | None  # None: no operation found
    resources: list[Span] = field(default_factory=list)

    def as_json(self) -> dict:
        if self.stack is None:
            return {"stack": None, "resources": []}
        origin = self.stack.start
        return {"stack": {**self.stack.as_json(origin), "started": str(origin)},
                "resources": [r.as_json(origin) for r in self.resources]}


def _is_stack_event(event: dict, stack_name: str) -> bool:
    return event.get("LogicalResourceId") == stack_name and event.get("ResourceType") == "AWS::CloudFormation::Stack"


def last_operation(events: list[dict], stack_name: str) -> Operation:
    """The stack's last operation: its own span and one span per resource, in order of start."""
    start = next((i for i, e in enumerate(events) if _is_stack_event(e, stack_name) and e.get("ResourceStatus") in STARTS), None)
    if start is None:
        return Operation(None)
    chronological = list(reversed(events[:start + 1]))
    spans: dict[str, Span] = {}
    stack = None
    for event in chronological:
        stamp, status, reason = event["Timestamp"], event.get("ResourceStatus", ""), event.get("ResourceStatusReason") or ""
        if _is_stack_event(event, stack_name):
            if stack is None:
                stack = Span(stack_name, "AWS::CloudFormation::Stack", stamp, stamp, status, reason)
            else:
                stack.end, stack.status, stack.reason = stamp, status, reason or stack.reason
            continue
        lid = event.get("LogicalResourceId", "?")
        span = spans.get(lid)
        if span is None:
            spans[lid] = Span(lid, event.get("ResourceType", "?"), stamp, stamp, status, reason)
        else:
            span.end, span.status = stamp, status
            if reason:
                span.reason = reason
    resources = sorted(spans.values(), key=lambda s: (s.start, s.logical_id))
    if stack is not None and resources:
        stack.end = max([stack.end] + [s.end for s in resources])
    return Operation(stack, resources)
