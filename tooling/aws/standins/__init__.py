"""Stand-ins: the project's own CloudFormation resource providers for the five types
the embedded local AWS (ministack 1.5.33) lacks, and for the one kind of resource its
provider refuses (an alarm on metric math), so that all seven stacks deploy there. They run inside the emulator's process (`launch.py` registers them before
the server starts), never against AWS.

Each stand-in validates the resource's properties against the type's CloudFormation
registry schema (the one the pinned cfn-lint ships), checks that what they name exists
in the emulator, and answers Ref and Fn::GetAtt as AWS documents them. What each one
makes real, and what it does not, is said below: `deploy.py` prints it, the README
points here. This module is plain data: deploy.py reads it without the emulator."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StandIn:
    real: str  # what the local deploy proves with it
    not_real: str  # what it does not do
    only_with: str = ""  # a property: only resources that set it are stood in for (the emulator holds the rest)

    def applies(self, properties: dict | None) -> bool:
        return not self.only_with or bool((properties or {}).get(self.only_with))


STANDINS: dict[str, StandIn] = {
    "AWS::CodePipeline::Pipeline": StandIn(
        real="its declaration: schema-validated; its role, artifact and source buckets and CodeBuild projects must "
             "exist; Ref (name), GetAtt Version and Arn; GetPipeline, ListPipelines and GetPipelineState read it back",
        not_real="no pipeline runs: no EventBridge start, no build, no execution, no execution event"),
    "AWS::Logs::DeliverySource": StandIn(
        real="the emulator's own log delivery API holds it (PutDeliverySource); the distribution it names must exist",
        not_real="CloudFront serves nothing locally, so no access log is produced"),
    "AWS::Logs::DeliveryDestination": StandIn(
        real="the emulator's log delivery API holds it (PutDeliveryDestination); the bucket, log group or "
             "delivery stream it names must exist",
        not_real="nothing is ever written to it"),
    "AWS::Logs::Delivery": StandIn(
        real="the emulator's log delivery API links source and destination (CreateDelivery); both must exist",
        not_real="no log is delivered"),
    "AWS::CloudWatch::MetricStream": StandIn(
        real="its declaration: schema-validated; its delivery stream and role must exist; Ref (name), GetAtt Arn, "
             "State, CreationDate, LastUpdateDate; GetMetricStream and ListMetricStreams read it back",
        not_real="no metric is streamed to Firehose"),
    "AWS::CloudWatch::Alarm": StandIn(
        only_with="Metrics",
        real="an alarm on metric math (ministack's provider refuses Metrics): schema-validated, its topics must exist; "
             "stored in the emulator's CloudWatch, so DescribeAlarms lists it with its metrics and actions",
        not_real="the math is never evaluated (no alarm is, locally: no real metrics flow)"),
}


def stood_in(resources: dict) -> list[tuple[str, str]]:
    """(logical id, type) of a template's resources that a stand-in provides locally."""
    return [(logical_id, r.get("Type", "")) for logical_id, r in (resources or {}).items()
            if isinstance(r, dict) and r.get("Type") in STANDINS and STANDINS[r["Type"]].applies(r.get("Properties"))]


def describe(resource_type: str) -> str:
    """One line: what the stand-in of this type makes real, and what not."""
    standin = STANDINS[resource_type]
    return f"real: {standin.real}; not real: {standin.not_real}"
