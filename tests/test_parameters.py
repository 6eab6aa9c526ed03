"""Parameters deploy.py fills from other stacks' outputs, and the settle step that
deploys a stack once more when a late parameter's source appeared in this run."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tooling.deploy.execute import apply
from tooling.deploy.gate import check
from tooling.deploy import parameters, states

STACKS = {
    "storage": {"key": "storage", "name": "app-storage", "region": "eu-west-1",
                "parameters": {"ServedOrigin": {"stack": "frontend", "output": "ServedOrigin", "late": True}}},
    "frontend": {"key": "frontend", "name": "app-frontend", "region": "eu-west-1", "parameters": {}},
    "edge": {"key": "edge", "name": "app-edge", "region": "us-east-1",
             "parameters": {"DistributionId": {"stack": "frontend", "output": "DistributionId", "late": False}}},
}


def workspace():
    return SimpleNamespace(stacks=STACKS, region="eu-west-1", region_of=lambda key: STACKS[key]["region"])


class FakeOutputs:
    def __init__(self, by_stack):
        self.by_stack = by_stack
        self.refreshed = []

    def of(self, key):
        return self.by_stack.get(key)

    def refresh(self, keys):
        self.refreshed.extend(keys)


def test_values_come_from_the_source_stacks_outputs():
    filled = parameters.fill(workspace(), "edge", FakeOutputs({"frontend": {"DistributionId": "E123"}}))
    assert (filled.values, filled.missing, filled.pending) == ({"DistributionId": "E123"}, [], [])


def test_a_missing_source_is_missing_unless_the_parameter_is_late():
    edge = parameters.fill(workspace(), "edge", FakeOutputs({}))
    assert edge.values == {} and edge.missing == ["DistributionId: output DistributionId of stack frontend (not deployed)"]
    storage = parameters.fill(workspace(), "storage", FakeOutputs({}))
    assert storage.values == {} and storage.missing == [] and storage.pending == ["ServedOrigin"]


def test_outputs_are_read_once_per_stack_in_its_own_region(monkeypatch):
    calls = []

    def describe(region, name):
        calls.append((region, name))
        return {"Outputs": [{"OutputKey": "DistributionId", "OutputValue": "E1"}]}
    monkeypatch.setattr(parameters.cfn, "describe_stack", describe)
    outputs = parameters.Outputs(workspace())
    assert outputs.of("frontend") == {"DistributionId": "E1"} and outputs.of("frontend") == {"DistributionId": "E1"}
    assert calls == [("eu-west-1", "app-frontend")]
    outputs.refresh(["frontend"])
    outputs.of("frontend")
    assert len(calls) == 2


@pytest.mark.parametrize("deployed_with, settles", [({}, True), ({"ServedOrigin": ""}, True),
                                                    ({"ServedOrigin": "https://d1.cloudfront.net"}, False)])
def test_settle_deploys_again_only_what_was_deployed_without_its_late_values(monkeypatch, deployed_with, settles):
    stack = {"StackName": "app-storage", "StackStatus": "CREATE_COMPLETE",
             "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in deployed_with.items()]}
    monkeypatch.setattr(apply.cfn, "describe_stack", lambda region, name: stack)
    monkeypatch.setattr(apply.cfn, "get_template_body", lambda region, name: "Resources: {}")
    report = check.Report({"storage": check.StackFacts("storage", "app-storage", None, states.NO_STACK)})
    outcomes = {"storage": apply.Outcome("storage", "deployed"), "frontend": apply.Outcome("frontend", "deployed"),
                "edge": apply.Outcome("edge", "deployed")}
    outputs = FakeOutputs({"frontend": {"ServedOrigin": "https://d1.cloudfront.net", "DistributionId": "E1"}})
    assert apply.settling(workspace(), report, outcomes, outputs) == (["storage"] if settles else [])
    assert outputs.refreshed == ["frontend"]  # read again: the frontend may have changed in this run
    if settles:  # the gate of the second deploy compares against what is deployed now
        assert report.facts["storage"].state.status == "CREATE_COMPLETE" and report.facts["storage"].deployed_template == {"Resources": {}}


def test_a_failed_or_skipped_stack_is_not_settled(monkeypatch):
    monkeypatch.setattr(apply.cfn, "describe_stack", lambda region, name: pytest.fail("not asked"))
    outcomes = {"storage": apply.Outcome("storage", "failed")}
    assert apply.settling(workspace(), check.Report({}), outcomes, FakeOutputs({})) == []
