"""run_apply's waves without AWS: the deploy of each stack is replaced by a stand-in,
so what is tested is the order, the isolation of one stack's error from the rest
of its wave, the stop after a failed wave, and the protection of storage."""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from tooling.deploy.execute import apply
from tooling.deploy.gate import check
from tooling.deploy import states
from tooling.deploy.progress import Progress

WAVES = [["storage"], ["frontend", "backend", "webhook"], ["operations"]]
DEPENDS_ON = {"storage": [], "frontend": ["storage"], "backend": ["storage"], "webhook": [], "operations": ["frontend", "backend"]}


def workspace():
    stacks = {k: {"key": k, "name": f"app-{k}", "sam": False} for k in DEPENDS_ON}
    return SimpleNamespace(manifest={"waves": WAVES}, depends_on=DEPENDS_ON, stacks=stacks, region="us-east-1",
                           env="dev", local=False, region_of=lambda key: "us-east-1")


def report(changed=tuple(DEPENDS_ON)):
    facts = {k: check.StackFacts(k, f"app-{k}", None, states.NO_STACK, changed=k in changed) for k in DEPENDS_ON}
    return check.Report(facts)


@pytest.fixture
def stand_ins(monkeypatch):
    calls = {"deployed": [], "protected": 0, "ledger": []}
    monkeypatch.setattr(apply.cfn, "list_exports", lambda region: {})
    monkeypatch.setattr(apply.cfn, "describe_stack", lambda region, name: None)
    monkeypatch.setattr(apply.protection, "protect_storage", lambda ws: calls.__setitem__("protected", calls["protected"] + 1))
    monkeypatch.setattr(apply.ledger, "after_failure", lambda ws, key, since: calls["ledger"].append(key) or [])
    return calls


def run(monkeypatch, behaviour, changed=tuple(DEPENDS_ON)):
    def fake(ws, facts, exports, progress, sam, options, outputs):
        outcome = behaviour(facts.key)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    monkeypatch.setattr(apply, "_deploy_stack", fake)
    progress = Progress(stream=io.StringIO(), tty=False)
    return {o.key: o for o in apply.run_apply(workspace(), report(changed), list(DEPENDS_ON), progress, None, apply.Options())}


def test_every_wave_in_order_and_storage_protected(monkeypatch, stand_ins):
    order = []
    outcomes = run(monkeypatch, lambda key: order.append(key) or apply.Outcome(key, "deployed", "CREATE_COMPLETE"))
    assert order[0] == "storage" and order[-1] == "operations" and set(order[1:4]) == {"frontend", "backend", "webhook"}
    assert all(o.result == "deployed" for o in outcomes.values())
    assert stand_ins["protected"] == 1 and "verified" in outcomes["storage"].detail


def test_an_error_in_one_stack_does_not_abandon_its_wave(monkeypatch, stand_ins):
    outcomes = run(monkeypatch, lambda key: RuntimeError("the event stream broke") if key == "backend"
                   else apply.Outcome(key, "deployed", "CREATE_COMPLETE"))
    assert outcomes["backend"].result == "failed" and "RuntimeError: the event stream broke" in outcomes["backend"].detail
    assert outcomes["frontend"].result == "deployed" and outcomes["webhook"].result == "deployed"  # the rest of the wave ran
    assert "operations" not in outcomes  # the next wave did not start
    assert stand_ins["ledger"] == ["backend"]  # the ledger is asked about the failed stack


def test_an_aws_error_is_the_stacks_outcome_in_one_line(monkeypatch, stand_ins):
    import botocore.exceptions

    error = botocore.exceptions.ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeStacks")
    outcomes = run(monkeypatch, lambda key: error if key == "webhook" else apply.Outcome(key, "deployed", "CREATE_COMPLETE"))
    assert outcomes["webhook"].detail == "AWS DescribeStacks: Throttling: Rate exceeded"


def test_a_refused_change_set_stops_the_run_like_a_failure(monkeypatch, stand_ins):
    outcomes = run(monkeypatch, lambda key: apply.Outcome(key, "refused", "UPDATE_COMPLETE") if key == "storage"
                   else apply.Outcome(key, "deployed"))
    assert outcomes["storage"].result == "refused" and set(outcomes) == {"storage"}
    assert stand_ins["protected"] == 0 and stand_ins["ledger"] == []


def test_unchanged_stacks_are_not_deployed(monkeypatch, stand_ins):
    deployed = []
    outcomes = run(monkeypatch, lambda key: deployed.append(key) or apply.Outcome(key, "deployed"), changed=("backend",))
    assert deployed == ["backend"]
    assert outcomes["frontend"].result == "unchanged" and outcomes["storage"].result == "unchanged"
    assert stand_ins["protected"] == 1  # storage's protection is verified on every apply
