"""The one inventory of named resources: every resource a template names
literally, looked up by its type and classified by who owns its physical id.

  free         does not exist: creating it is safe
  ours         owned by the stack that declares it, under the same logical id
  other-owner  owned by another stack, or by the same stack under another logical id
  orphan       exists, owned by no stack
  foreign      exists in another account (S3: HeadBucket 403, not among this account's buckets)
  unknown      could not be established (an error, no lookup, an unresolvable name)

Ownership is decided by type and exact physical id, never by a name's suffix:
DescribeStackResources(PhysicalResourceId=...) answers it in one call; where an
endpoint cannot (the local AWS), or where its answer holds the id only under another
type (a BucketPolicy holds its bucket's name), a map of every live stack's resources does."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

from ...aws import cloudformation as cfn
from ...aws import lookups
from ...aws.session import BotoCoreError, ClientError, describe_error
from ...errors import UserError
from ...render import graph
from .. import states

# Resource type -> the property that names it literally. A type here with no lookup
# in tooling/aws/lookups.py is "unknown" (blocking), never assumed free.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::MetricStream": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::CodeBuild::Project": "Name",
    "AWS::CodePipeline::Pipeline": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::Events::Rule": "Name",
    "AWS::Logs::DeliverySource": "Name",
    "AWS::Logs::DeliveryDestination": "Name",
    "AWS::KMS::Alias": "AliasName",
}

# Types whose name-like property is not a global name: it refers to another resource,
# or is scoped inside a parent created with it. tests/test_inventory.py checks that
# every literal name in the renders is in NAME_PROPERTIES or here.
NOT_GLOBAL_NAMES = {
    "AWS::Lambda::Permission": "FunctionName refers to the function it grants on",
    "AWS::Logs::MetricFilter": "LogGroupName refers to the group it filters",
    "AWS::Logs::SubscriptionFilter": "FilterName is scoped to its log group, LogGroupName refers to that group",
    "AWS::Logs::LogStream": "LogStreamName is scoped to its log group, which the inventory looks up",
    "AWS::Logs::Delivery": "DeliverySourceName refers to the delivery source",
    "AWS::ApiGatewayV2::Stage": "StageName is scoped to its API, created in the same stack",
    "AWS::S3::BucketPolicy": "Bucket refers to the bucket it is attached to",
}

# What adopt imports into the storage stack, by type: the key of its ResourceIdentifier (the
# primaryIdentifier of the type's registry schema). A stateful resource and what finds it again.
ADOPTABLE = {"AWS::S3::Bucket": "BucketName", "AWS::DynamoDB::Table": "TableName",
             "AWS::KMS::Key": "KeyId", "AWS::KMS::Alias": "AliasName"}

# The type CloudFormation records for a resource declared with a SAM type.
DEPLOYED_TYPE = {"AWS::Serverless::Function": "AWS::Lambda::Function"}

FREE, OURS, OTHER_OWNER, ORPHAN, FOREIGN, UNKNOWN = "free", "ours", "other-owner", "orphan", "foreign", "unknown"


@dataclass(frozen=True)
class NamedResource:
    stack: str  # stack key
    logical_id: str
    type: str
    name: str  # "" when the name could not be resolved
    by_alias: bool = False  # a KMS key, which has no name: `name` is the alias that points at it

    @property
    def deployed_type(self) -> str:
        return DEPLOYED_TYPE.get(self.type, self.type)


@dataclass(frozen=True)
class Owner:
    stack: str  # stack name
    logical_id: str
    type: str


@dataclass(frozen=True)
class Surveyed:
    resource: NamedResource
    state: str
    owner: Owner | None = None
    reason: str = ""
    unsupported: bool = False  # unknown only because the endpoint does not implement the lookup
    found_id: str = ""  # the physical id, where it is not the name (a key found by its alias: its key id)

    @property
    def physical_id(self) -> str:
        return self.found_id or self.resource.name

    def as_json(self) -> dict:
        return {**asdict(self.resource), "state": self.state, "owner": asdict(self.owner) if self.owner else None,
                "reason": self.reason, "physical_id": self.physical_id}


# --- pure ----------------------------------------------------------------------------

def held(stack_resource: dict) -> bool:
    """Whether a stack still holds this resource of its (a delete or a retaining delete lets go)."""
    return stack_resource.get("ResourceStatus") not in ("DELETE_COMPLETE", "DELETE_SKIPPED")


def physical_id(resource_type: str, name: str, account_id: str, region: str) -> str:
    """The physical id CloudFormation records for a resource of this type and name."""
    if resource_type == "AWS::SNS::Topic":
        return f"arn:aws:sns:{region}:{account_id}:{name}"
    return name


def named_resources(key: str, stack_name: str, template: dict, account_id: str, region: str) -> list[NamedResource]:
    """Every resource of the template that sets its naming property. A name that
    cannot be resolved here is kept with name "" (its state will be unknown)."""
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
        except UserError:
            name = ""
        found.append(NamedResource(key, logical_id, kind, name))
    return found + keys_by_alias(key, template, found)


def keys_by_alias(key: str, template: dict, named: list[NamedResource]) -> list[NamedResource]:
    """The KMS keys of the template that an alias of the same template names (TargetKeyId:
    Ref <key>): a key has no name, so its alias is how it is found once no stack holds it."""
    resources = template.get("Resources") or {}
    aliases = {r.logical_id: r.name for r in named if r.type == "AWS::KMS::Alias"}
    found = []
    for logical_id, alias in aliases.items():
        target = ((resources[logical_id] or {}).get("Properties") or {}).get("TargetKeyId")
        ref = target.get("Ref") if isinstance(target, dict) and set(target) == {"Ref"} else None
        if ref and (resources.get(ref) or {}).get("Type") == "AWS::KMS::Key":
            found.append(NamedResource(key, ref, "AWS::KMS::Key", alias, by_alias=True))
    return found


def classify(resource: NamedResource, declared_by: str, lookup: lookups.Lookup, owner: Owner | None,
             owner_known: bool = True) -> Surveyed:
    """The state of one named resource, from its lookup and its owner (if it exists)."""
    if not resource.name:
        return Surveyed(resource, UNKNOWN, reason="its name cannot be resolved before the deploy")
    if lookup.state == "missing":
        return Surveyed(resource, FREE)
    if lookup.state == "foreign":
        return Surveyed(resource, FOREIGN, reason=lookup.reason)
    if lookup.state != "exists":
        return Surveyed(resource, UNKNOWN, reason=lookup.reason, unsupported=lookup.unsupported)
    if not owner_known:
        return Surveyed(resource, UNKNOWN, reason="its owner could not be established")
    if owner is None:
        return Surveyed(resource, ORPHAN)
    if owner.stack == declared_by and owner.logical_id == resource.logical_id:
        return Surveyed(resource, OURS, owner)
    return Surveyed(resource, OTHER_OWNER, owner)


# --- facts from AWS ----------------------------------------------------------------------

class Owners:
    """Who owns a physical id. Asks DescribeStackResources; where the endpoint cannot
    answer, falls back to one map of every live stack's resources, built once."""

    def __init__(self, region: str):
        self.region = region
        self._map: dict[tuple[str, str], Owner] | None = None
        self._lock = threading.Lock()

    def _all(self) -> dict[tuple[str, str], Owner]:
        with self._lock:
            if self._map is None:
                found = {}
                for summary in cfn.list_stacks(self.region, states.LIVE_STATUSES):
                    for r in cfn.stack_resources(self.region, summary["StackName"]):
                        if r.get("PhysicalResourceId") and held(r):
                            found[(r["ResourceType"], r["PhysicalResourceId"])] = Owner(summary["StackName"], r["LogicalResourceId"], r["ResourceType"])
                self._map = found
            return self._map

    def owner(self, resource_type: str, physical: str) -> Owner | None:
        answer = cfn.resources_by_physical_id(self.region, physical)
        if answer is None:
            return self._all().get((resource_type, physical))

        def owner_in(resources, stack_name=None) -> Owner | None:
            for r in resources:
                if r["ResourceType"] == resource_type and r.get("PhysicalResourceId") == physical and held(r):
                    return Owner(stack_name or r["StackName"], r["LogicalResourceId"], r["ResourceType"])
            return None

        # The answer lists the resources of the stack holding the id (at most 100): find the one that is it.
        found = owner_in(answer)
        for stack_name in sorted({r["StackName"] for r in answer}) if found is None and len(answer) >= 100 else ():
            found = owner_in(cfn.stack_resources(self.region, stack_name), stack_name)
            if found:
                break
        if found is None and answer:
            # A stack holds this id, but not as this type: one physical id can name several
            # resources (a BucketPolicy's physical id is its bucket's name), and AWS answered
            # with one of them. That is no proof that nothing of this type holds it: look
            # the (type, id) up in every live stack.
            found = self._all().get((resource_type, physical))
        return found


def survey(resources: list[NamedResource], stack_names: dict[str, str], region: str, account_id: str,
           owners: Owners | None = None) -> list[Surveyed]:
    """Look every resource up (in parallel: one call each, I/O bound) and classify it."""
    owners = owners or Owners(region)

    def one(resource: NamedResource) -> Surveyed:
        declared_by = stack_names[resource.stack]
        if not resource.name:
            return classify(resource, declared_by, lookups.Lookup("unknown"), None)
        physical = physical_id(resource.deployed_type, resource.name, account_id, region)
        if resource.by_alias:
            behind = lookups.key_behind_alias(region, resource.name)
            found, physical = behind.lookup, behind.key_id
        else:
            found = lookups.lookup(region, account_id, resource.deployed_type, resource.name)
        if found.state != "exists":
            return classify(resource, declared_by, found, None)
        try:
            owner = owners.owner(resource.deployed_type, physical)
        except (ClientError, BotoCoreError) as exc:
            return Surveyed(resource, UNKNOWN, reason=f"owner lookup failed: {describe_error(exc)}")
        surveyed = classify(resource, declared_by, found, owner)
        return replace(surveyed, found_id=physical) if resource.by_alias else surveyed

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, resources))
