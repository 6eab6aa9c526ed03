"""The report page without AWS: the timeline of a stack's last operation from
CloudFormation's events (newest first, as DescribeStackEvents returns them), the edges
between stacks from the manifest, and a page that needs nothing from the network."""
from __future__ import annotations

import datetime as dt
import re

from tooling.deploy.report import page, timeline

T0 = dt.datetime(2026, 12, 6, 9, 0, 0, tzinfo=dt.timezone.utc)


def event(seconds, logical_id, status, kind="AWS::Lambda::Function", reason=""):
    stack = logical_id == "app-backend"
    return {"StackName": "app-backend", "LogicalResourceId": logical_id, "ResourceStatus": status,
            "ResourceType": "AWS::CloudFormation::Stack" if stack else kind, "Timestamp": T0 + dt.timedelta(seconds=seconds),
            "ResourceStatusReason": reason}


# An update (the last operation) after a create: chronological here, reversed as AWS returns them.
EVENTS = list(reversed([
    event(0, "app-backend", "REVIEW_IN_PROGRESS"), event(1, "app-backend", "CREATE_IN_PROGRESS"),
    event(2, "Role", "CREATE_IN_PROGRESS", "AWS::IAM::Role"), event(9, "Role", "CREATE_COMPLETE", "AWS::IAM::Role"),
    event(10, "app-backend", "CREATE_COMPLETE"),
    event(100, "app-backend", "UPDATE_IN_PROGRESS", reason="User Initiated"),
    event(101, "Function", "UPDATE_IN_PROGRESS"), event(104, "Function", "UPDATE_COMPLETE"),
    event(104, "Route", "UPDATE_IN_PROGRESS", "AWS::ApiGatewayV2::Route"),
    event(106, "Route", "UPDATE_FAILED", "AWS::ApiGatewayV2::Route", reason="Resource handler returned message: bad"),
    event(107, "app-backend", "UPDATE_ROLLBACK_IN_PROGRESS"), event(108, "Function", "UPDATE_COMPLETE"),
    event(110, "app-backend", "UPDATE_ROLLBACK_COMPLETE"),
]))


def test_the_last_operation_is_the_update_with_its_rollback():
    op = timeline.last_operation(EVENTS, "app-backend")
    assert (op.stack.status, op.stack.seconds) == ("UPDATE_ROLLBACK_COMPLETE", 10.0)
    assert [(r.logical_id, r.status, r.seconds) for r in op.resources] == [
        ("Function", "UPDATE_COMPLETE", 7.0), ("Route", "UPDATE_FAILED", 2.0)]  # Role belongs to the create before
    assert op.resources[1].failed and op.resources[1].reason == "Resource handler returned message: bad"
    data = op.as_json()
    assert data["resources"][1]["start"] == 4.0 and data["stack"]["started"].startswith("2026-12-06 09:01:40")


def test_a_create_from_a_change_set_starts_after_review_in_progress():
    op = timeline.last_operation(EVENTS[-5:], "app-backend")
    assert op.stack.status == "CREATE_COMPLETE" and [r.logical_id for r in op.resources] == ["Role"]
    assert timeline.last_operation([EVENTS[-1]], "app-backend").stack is None  # only REVIEW_IN_PROGRESS: nothing ran


MANIFEST = {"waves": [["storage"], ["frontend"], ["backend"]], "stacks": [
    {"key": "storage", "depends_on": [], "exports": ["s-Bucket"], "imports": [],
     "parameters": {"ServedOrigin": {"stack": "frontend", "output": "ServedOrigin", "late": True}}},
    {"key": "frontend", "depends_on": ["storage"], "exports": [], "imports": ["s-Bucket"], "parameters": {}},
    {"key": "backend", "depends_on": ["frontend", "storage"], "exports": [], "imports": ["s-Bucket"],
     "parameters": {"ServedOrigin": {"stack": "frontend", "output": "ServedOrigin", "late": False}}},
]}


def test_edges_carry_the_exports_and_parameters_between_stacks():
    assert page.edges(MANIFEST) == [
        {"from": "frontend", "to": "storage", "exports": [], "parameters": ["ServedOrigin = ServedOrigin (late)"]},
        {"from": "storage", "to": "frontend", "exports": ["s-Bucket"], "parameters": []},
        {"from": "frontend", "to": "backend", "exports": [], "parameters": ["ServedOrigin = ServedOrigin"]},
        {"from": "storage", "to": "backend", "exports": ["s-Bucket"], "parameters": []},
    ]


def test_the_page_is_self_contained_and_shows_every_stack_resource_and_finding():
    op = timeline.last_operation(EVENTS, "app-backend").as_json()
    none = {"stack": None, "resources": []}
    data = {"env": "dev", "account_id": "123456789012", "region": "us-east-1", "waves": MANIFEST["waves"], "written": "now",
            "edges": page.edges(MANIFEST), "outcomes": [],
            "stacks": [{"key": "storage", "status": "UPDATE_COMPLETE", "operation": none},
                       {"key": "frontend", "status": "NOT_DEPLOYED", "operation": none},
                       {"key": "backend", "status": "UPDATE_ROLLBACK_COMPLETE", "operation": op}],
            "findings": [{"kind": "orphan", "stack": "backend", "subject": "<b>x</b>", "detail": "d", "fix": "f", "blocking": True,
                          "override": "--allow-orphans"}]}
    text = page.html(data)
    assert re.findall(r'data-stack="([a-z-]+)" data-wave', text) == ["storage", "frontend", "backend"]
    assert re.findall(r'data-timeline-resource="([A-Za-z]+)"', text) == ["Function", "Route"]
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text  # what AWS or a template says is escaped
    # nothing is fetched: no script, no external reference, and a policy that forbids any
    assert "<script" not in text and not re.search(r'(src|href)="(?!#)', text) and "url(http" not in text
    assert "default-src 'none'" in text
