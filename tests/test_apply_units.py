"""tooling/deploy/execute/apply.py, its pure parts: which stacks a skipped stack blocks
(transitively), the one-line description of an outcome, Outcome.ok, Outcome.as_json
and the local note. Nothing here calls AWS."""
from __future__ import annotations

import datetime as dt

import pytest

from tooling.deploy.execute import apply
from tooling.deploy.execute.apply import Outcome
from tooling.deploy.gate.findings import Finding

# A manifest-like dependency graph: key -> the keys it needs.
DEPENDS_ON = {
    "storage": [],
    "backend": ["storage"],
    "webhook": ["backend"],
    "operations": ["webhook", "frontend"],
    "frontend": ["storage"],
    "pipeline": [],
}


# --- blocked_by_skipped ----------------------------------------------------------------------

def test_nothing_skipped_blocks_nothing():
    assert apply.blocked_by_skipped(set(), DEPENDS_ON) == {}


def test_blocked_follows_dependencies_transitively_to_the_skipped_stack():
    assert apply.blocked_by_skipped({"backend"}, DEPENDS_ON) == {"webhook": "backend", "operations": "backend"}


def test_skipping_the_root_blocks_every_stack_that_needs_it():
    blocked = apply.blocked_by_skipped({"storage"}, DEPENDS_ON)
    assert blocked == {"backend": "storage", "webhook": "storage", "operations": "storage", "frontend": "storage"}
    assert "pipeline" not in blocked  # needs nothing
    assert "storage" not in blocked  # skipped, not blocked


def test_transitive_regardless_of_the_order_keys_are_listed():
    chain = {"d": ["c"], "c": ["b"], "b": ["a"], "a": []}  # the dependents come first
    assert apply.blocked_by_skipped({"a"}, chain) == {"b": "a", "c": "a", "d": "a"}


def test_a_skipped_stack_is_never_reported_as_blocked():
    assert apply.blocked_by_skipped({"storage", "backend"}, DEPENDS_ON) == {
        "webhook": "backend", "operations": "backend", "frontend": "storage"}


# --- describe ----------------------------------------------------------------------------------

FAILURE = {"LogicalResourceId": "ApiFunction", "ResourceType": "AWS::Lambda::Function", "ResourceStatus": "CREATE_FAILED",
           "ResourceStatusReason": "Resource handler returned message: role cannot be assumed", "StackName": "acme-dev-backend",
           "Timestamp": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "EventId": "e-1"}


def test_describe_failed_with_a_failure_event():
    outcome = Outcome("backend", "failed", "UPDATE_ROLLBACK_COMPLETE", detail="ignored when a failure is known",
                      failure=FAILURE, seconds=42.4)
    assert apply.describe(outcome) == (
        "failed (UPDATE_ROLLBACK_COMPLETE) in 42s: first failed resource ApiFunction (AWS::Lambda::Function): "
        "Resource handler returned message: role cannot be assumed")


def test_describe_failure_event_without_type_or_reason():
    outcome = Outcome("backend", "failed", "ROLLBACK_COMPLETE", failure={"LogicalResourceId": "Api"})
    assert apply.describe(outcome).startswith("failed (ROLLBACK_COMPLETE): first failed resource Api (?)")


def test_describe_failed_without_a_failure_event_gives_the_detail():
    outcome = Outcome("backend", "failed", "UPDATE_ROLLBACK_FAILED", detail="ended UPDATE_ROLLBACK_FAILED", seconds=0.2)
    assert apply.describe(outcome) == "failed (UPDATE_ROLLBACK_FAILED): ended UPDATE_ROLLBACK_FAILED"


@pytest.mark.parametrize("outcome,text", [
    (Outcome("storage", "deployed", "UPDATE_COMPLETE", seconds=61.6), "deployed (UPDATE_COMPLETE) in 62s"),
    (Outcome("storage", "unchanged"), "unchanged"),
    (Outcome("webhook", "blocked", detail="needs backend, which was skipped"), "blocked: needs backend, which was skipped"),
    (Outcome("storage", "deployed", "CREATE_COMPLETE", seconds=0.49), "deployed (CREATE_COMPLETE)"),
])
def test_describe_other_outcomes(outcome, text):
    assert apply.describe(outcome) == text


# --- Outcome -----------------------------------------------------------------------------------

@pytest.mark.parametrize("result,ok", [("deployed", True), ("unchanged", True), ("skipped", True), ("blocked", True),
                                       ("not-selected", True), ("failed", False), ("refused", False)])
def test_outcome_ok(result, ok):
    assert Outcome("k", result).ok is ok


def test_outcome_as_json_shape():
    refused = Finding("stateful-change", "storage", "AWS::S3::Bucket MediaBucket", "replaces it", "revert")
    outcome = Outcome("backend", "failed", "UPDATE_ROLLBACK_COMPLETE", "d", failure=FAILURE, seconds=12.345,
                      retained=[{"type": "AWS::Logs::LogGroup", "name": "/acme/dev/api"}], notes=["a note"], refused=[refused],
                      since=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    data = outcome.as_json()
    assert data == {
        "key": "backend", "result": "failed", "status": "UPDATE_ROLLBACK_COMPLETE", "detail": "d",
        "failure": {"LogicalResourceId": "ApiFunction", "ResourceType": "AWS::Lambda::Function",
                    "ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "Resource handler returned message: role cannot be assumed"},
        "seconds": 12.3, "retained": [{"type": "AWS::Logs::LogGroup", "name": "/acme/dev/api"}], "notes": ["a note"],
        "refused": [refused.as_json()],
    }
    assert "since" not in data  # a timestamp, internal to the run
    assert data["refused"][0]["override"] is None


def test_outcome_as_json_without_failure():
    data = Outcome("storage", "unchanged").as_json()
    assert data["failure"] is None
    assert data["status"] is None
    assert (data["seconds"], data["retained"], data["notes"], data["refused"]) == (0.0, [], [], [])


def test_outcome_lists_are_not_shared():
    a, b = Outcome("a", "deployed"), Outcome("b", "deployed")
    a.notes.append("x")
    assert b.notes == []


# --- local_note ----------------------------------------------------------------------------------

def test_local_note_names_skipped_and_blocked():
    outcomes = [Outcome("storage", "deployed"), Outcome("operations", "skipped"), Outcome("webhook", "blocked")]
    note = apply.local_note(outcomes)
    assert note.startswith("skipped on the local AWS: operations, webhook ")


def test_local_note_none_when_nothing_skipped():
    assert apply.local_note([Outcome("storage", "deployed"), Outcome("backend", "failed")]) is None
