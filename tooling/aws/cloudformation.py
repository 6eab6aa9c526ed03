"""Every CloudFormation call of the tooling.

Each function takes the region and returns plain data. "Does not exist" answers
become None or []; any other AWS error propagates as botocore's ClientError, for
the caller to turn into a finding or a failed outcome (never a silent default).
Calls that change something are safe to retry: change sets carry a ClientToken
and a unique name, executions a ClientRequestToken, and a retry whose first
attempt did reach AWS (the response was lost) is recognised and accepted."""
from __future__ import annotations

import json
import time
import uuid

from botocore.exceptions import WaiterError

from .session import ClientError, client, error_code, error_message

# TemplateBody holds at most 51,200 bytes; a larger template goes by TemplateURL.
TEMPLATE_BODY_LIMIT = 51_200


def _missing(exc: ClientError) -> bool:
    return error_code(exc) == "ValidationError" and "does not exist" in error_message(exc)


def describe_stack(region: str, name: str) -> dict | None:
    """The stack, or None when it does not exist (a deleted stack does not count)."""
    try:
        stacks = client("cloudformation", region).describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if _missing(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def stack_events(region: str, name: str, since=None, limit: int = 500) -> list[dict]:
    """Events newest first, as CloudFormation returns them; only those after `since`
    (a CloudFormation timestamp, never the local clock) when given."""
    cfn = client("cloudformation", region)
    events: list[dict] = []
    kwargs = {"StackName": name}
    try:
        while len(events) < limit:
            page = cfn.describe_stack_events(**kwargs)
            batch = page["StackEvents"]
            if since is not None:
                fresh = [e for e in batch if e["Timestamp"] > since]
                events.extend(fresh)
                if len(fresh) < len(batch):
                    break
            else:
                events.extend(batch)
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except ClientError as exc:
        if _missing(exc):
            return []
        raise
    return events[:limit]


def last_event_time(region: str, name: str):
    """The timestamp of the stack's newest event (CloudFormation's clock), or None."""
    try:
        page = client("cloudformation", region).describe_stack_events(StackName=name)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise
    return page["StackEvents"][0]["Timestamp"] if page["StackEvents"] else None


def stack_resources(region: str, name: str) -> list[dict]:
    cfn = client("cloudformation", region)
    try:
        return [r for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
                for r in page["StackResourceSummaries"]]
    except ClientError as exc:
        if _missing(exc):
            return []
        raise


def resources_by_physical_id(region: str, physical_id: str) -> list[dict] | None:
    """The stack resources holding this physical id: DescribeStackResources answers
    with the owner in one call. [] when no stack holds it (AWS answers "Stack for
    <id> does not exist"); None when this endpoint cannot answer the question (the
    local AWS answers every such call with "Stack [] does not exist")."""
    try:
        return client("cloudformation", region).describe_stack_resources(PhysicalResourceId=physical_id)["StackResources"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and error_message(exc).startswith(f"Stack for {physical_id} does not exist"):
            return []
        if error_code(exc) == "ValidationError" and "Stack [] does not exist" in error_message(exc):
            return None
        raise


def list_stacks(region: str, statuses: list[str]) -> list[dict]:
    cfn = client("cloudformation", region)
    return [s for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=statuses) for s in page["StackSummaries"]]


def enable_termination_protection(region: str, name: str) -> None:
    client("cloudformation", region).update_termination_protection(StackName=name, EnableTerminationProtection=True)


def set_stack_policy(region: str, name: str, policy: dict) -> None:
    client("cloudformation", region).set_stack_policy(StackName=name, StackPolicyBody=json.dumps(policy))


def stack_policy(region: str, name: str) -> dict | None:
    body = client("cloudformation", region).get_stack_policy(StackName=name).get("StackPolicyBody")
    return json.loads(body) if body else None


def list_imports(region: str, export_name: str) -> list[str]:
    """Stacks importing an export; [] when none does."""
    cfn = client("cloudformation", region)
    try:
        return [s for page in cfn.get_paginator("list_imports").paginate(ExportName=export_name) for s in page["Imports"]]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "is not imported by any stack" in error_message(exc):
            return []
        raise


def list_exports(region: str) -> dict[str, dict]:
    """export name -> {ExportingStackId, Name, Value}."""
    cfn = client("cloudformation", region)
    return {e["Name"]: e for page in cfn.get_paginator("list_exports").paginate() for e in page["Exports"]}


def delete_stack(region: str, name: str, retain: list[str] | None = None) -> None:
    kwargs = {"StackName": name, "ClientRequestToken": f"deploy-py-{uuid.uuid4().hex}"}
    if retain:
        kwargs["RetainResources"] = retain
    client("cloudformation", region).delete_stack(**kwargs)


def wait_stack(region: str, name: str, timeout: float, poll: float, on_poll=None, stop=None) -> dict | None:
    """Poll until the stack is no longer *_IN_PROGRESS (or gone); the last description.
    Polling (not a boto3 waiter) so that each round can report progress. `stop` (a
    threading.Event) ends the wait early: the description then may still be in progress."""
    deadline = time.monotonic() + timeout
    while True:
        stack = describe_stack(region, name)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        if on_poll:
            on_poll(stack)
        if stop is not None:
            if stop.wait(poll):
                return stack
        else:
            time.sleep(poll)


def get_template_body(region: str, name: str, stage: str = "Original") -> str:
    body = client("cloudformation", region).get_template(StackName=name, TemplateStage=stage)["TemplateBody"]
    return body if isinstance(body, str) else json.dumps(body)


def validation_error(region: str, template_body: str) -> str | None:
    """ValidateTemplate's refusal, or None when the template is accepted."""
    try:
        client("cloudformation", region).validate_template(TemplateBody=template_body)
        return None
    except ClientError as exc:
        if error_code(exc) == "ValidationError":
            return error_message(exc)
        raise


# --- change sets ------------------------------------------------------------------

# Every change set this tool makes is named CHANGE_SET_PREFIX + a unique token; those
# that check and plan make (inspected, never executed) carry INSPECT_PREFIX after it, and
# those plan --out keeps for a reviewed apply --plan carry PLAN_PREFIX (never stale: a
# plan's change set waits for its review; CloudFormation drops it once another one of its
# stack executes).
CHANGE_SET_PREFIX = "deploy-py-"
INSPECT_PREFIX = "check-"
PLAN_PREFIX = "plan-"

_service_role_arn: str | None = None


def use_service_role(role_arn: str | None) -> None:
    """Every change set created from now on names this CloudFormation service role (RoleARN):
    CloudFormation then creates the stack's resources with that role, not the caller's rights."""
    global _service_role_arn
    _service_role_arn = role_arn or None


def create_change_set(region: str, stack_name: str, change_set_type: str, capabilities: list[str],
                      template_body: str | None = None, template_url: str | None = None,
                      tags: dict[str, str] | None = None, resources_to_import: list[dict] | None = None,
                      import_existing: bool = False, parameters: list[dict] | None = None, name_kind: str = "",
                      use_previous_template: bool = False, deployment_mode: str | None = None) -> str:
    """Create a change set and return its id. Its name and ClientToken are unique to
    this call, so a retry after a lost response is recognised as the same request."""
    token = uuid.uuid4().hex
    kwargs = {
        "StackName": stack_name,
        "ChangeSetName": f"{CHANGE_SET_PREFIX}{name_kind}{token}",
        "ClientToken": token,
        "ChangeSetType": change_set_type,
        "Capabilities": capabilities,
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }
    if use_previous_template:
        kwargs["UsePreviousTemplate"] = True
    elif template_url:
        kwargs["TemplateURL"] = template_url
    else:
        kwargs["TemplateBody"] = template_body
    if deployment_mode:
        kwargs["DeploymentMode"] = deployment_mode
    if resources_to_import:
        kwargs["ResourcesToImport"] = resources_to_import
    if import_existing:
        kwargs["ImportExistingResources"] = True
    if parameters:
        kwargs["Parameters"] = parameters
    if _service_role_arn:
        kwargs["RoleARN"] = _service_role_arn
    cfn = client("cloudformation", region)
    try:
        return cfn.create_change_set(**kwargs)["Id"]
    except ClientError as exc:
        # Our name is unique: if it already exists, an earlier attempt of this very
        # call reached CloudFormation and only its answer was lost.
        if error_code(exc) != "AlreadyExistsException":
            raise
        return cfn.describe_change_set(ChangeSetName=kwargs["ChangeSetName"], StackName=stack_name)["ChangeSetId"]


FINISHED_CHANGE_SET = ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE", "DELETE_FAILED")


def wait_change_set(region: str, change_set_id: str, timeout: float = 300, poll: float = 1.0) -> dict:
    """The change set once CloudFormation has finished computing it, with every page
    of its changes. boto3's own waiter does the waiting; when `timeout` passes first
    its Status is still CREATE_PENDING/CREATE_IN_PROGRESS, which the caller must
    treat as not established."""
    cfn = client("cloudformation", region)
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            ChangeSetName=change_set_id, WaiterConfig={"Delay": poll, "MaxAttempts": max(1, int(timeout / poll)) if poll > 0 else 1})
    except WaiterError:
        pass  # FAILED, or still computing at the deadline: the description below says which
    described = cfn.describe_change_set(ChangeSetName=change_set_id)
    changes = list(described.get("Changes", []))
    token = described.get("NextToken")
    while token:
        page = cfn.describe_change_set(ChangeSetName=change_set_id, NextToken=token)
        changes.extend(page.get("Changes", []))
        token = page.get("NextToken")
    described["Changes"] = changes
    described.pop("NextToken", None)  # every page is in Changes now
    return described


def validation_events(region: str, change_set_id: str) -> list[dict]:
    """The early-validation events of a change set: DescribeEvents(ChangeSetName=...)
    every page, only those of EventType VALIDATION_ERROR (FAIL mode sets the change
    set to FAILED; WARN mode leaves it CREATE_COMPLETE). DescribeStackEvents does not
    carry them. Errors propagate (an endpoint that does not know the call answers
    with an error too): the caller decides what a missing answer means."""
    cfn = client("cloudformation", region)
    return [event for page in cfn.get_paginator("describe_events").paginate(ChangeSetName=change_set_id)
            for event in page.get("OperationEvents", []) if event.get("EventType") == "VALIDATION_ERROR"]


def describe_change_set(region: str, change_set_id: str) -> dict | None:
    """The change set's description (first page of its changes), or None when it does not
    exist: deleted, or removed by CloudFormation when another change set of its stack ran."""
    try:
        return client("cloudformation", region).describe_change_set(ChangeSetName=change_set_id)
    except ClientError as exc:
        if error_code(exc) in ("ChangeSetNotFound", "ChangeSetNotFoundException") or "does not exist" in error_message(exc):
            return None
        raise


def delete_change_set(region: str, change_set_id: str) -> None:
    try:
        client("cloudformation", region).delete_change_set(ChangeSetName=change_set_id)
    except ClientError as exc:
        if not (error_code(exc) in ("ChangeSetNotFound", "ChangeSetNotFoundException") or "does not exist" in error_message(exc)):
            raise


def execute_change_set(region: str, change_set_id: str) -> None:
    """Execute once. A retry whose first attempt was executed (its answer lost)
    finds the change set executing or executed: that is success, not an error."""
    cfn = client("cloudformation", region)
    try:
        cfn.execute_change_set(ChangeSetName=change_set_id, ClientRequestToken=f"deploy-py-{change_set_id.rsplit('/', 1)[-1]}")
    except ClientError as exc:
        if error_code(exc) not in ("InvalidChangeSetStatus", "TokenAlreadyExistsException"):
            raise
        status = cfn.describe_change_set(ChangeSetName=change_set_id).get("ExecutionStatus")
        if status not in ("EXECUTE_IN_PROGRESS", "EXECUTE_COMPLETE"):
            raise


def list_change_sets(region: str, stack_name: str) -> list[dict]:
    """The stack's change sets (summaries); [] when the stack does not exist."""
    cfn = client("cloudformation", region)
    try:
        return [c for page in cfn.get_paginator("list_change_sets").paginate(StackName=stack_name)
                for c in page.get("Summaries", [])]
    except ClientError as exc:
        if _missing(exc):
            return []
        raise


# --- drift ------------------------------------------------------------------------

def detect_stack_drift(region: str, stack_name: str) -> str:
    """Start drift detection; its detection id."""
    return client("cloudformation", region).detect_stack_drift(StackName=stack_name)["StackDriftDetectionId"]


def drift_detection(region: str, detection_id: str, timeout: float = 300, poll: float = 1.0, stop=None) -> dict:
    """DescribeStackDriftDetectionStatus until DetectionStatus is no longer
    DETECTION_IN_PROGRESS (or `timeout` passes: then it still is)."""
    cfn = client("cloudformation", region)
    deadline = time.monotonic() + timeout
    while True:
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id)
        if status.get("DetectionStatus") != "DETECTION_IN_PROGRESS" or time.monotonic() > deadline:
            return status
        if stop is not None and stop.wait(poll):
            return status
        if stop is None:
            time.sleep(poll)


def resource_drifts(region: str, stack_name: str, statuses=("MODIFIED", "DELETED")) -> list[dict]:
    cfn = client("cloudformation", region)
    found, kwargs = [], {"StackName": stack_name, "StackResourceDriftStatusFilters": list(statuses)}
    while True:
        page = cfn.describe_stack_resource_drifts(**kwargs)
        found.extend(page.get("StackResourceDrifts", []))
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]
