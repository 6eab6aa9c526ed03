"""A stack as every command sees it: its description and its state from the one table
(states.py), and the waits that follow a delete or an executed change set."""
from __future__ import annotations

from dataclasses import dataclass

from ..aws import cloudformation as cfn
from . import changes, interrupt, states


def current(region: str, name: str) -> tuple[dict | None, states.State]:
    """The stack now, and its state. Its resources are counted only when the table needs
    them (REVIEW_IN_PROGRESS is "no stack" only when it holds none)."""
    stack = cfn.describe_stack(region, name)
    count = None
    if stack is not None and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        count = len(cfn.stack_resources(region, name))
    return stack, states.state_of(stack, count)


def delete(region: str, name: str, timeout: float, poll: float) -> dict | None:
    """Delete the stack and wait; what is left of it (None: it is gone). Not started
    after an interrupt; the wait ends at one (the stack may then be DELETE_IN_PROGRESS)."""
    interrupt.checkpoint(f"deleting {name}")
    cfn.delete_stack(region, name)
    return cfn.wait_stack(region, name, timeout, poll, stop=interrupt.STOP)


@dataclass
class Ended:
    """Where an executed change set left its stack."""
    stack: dict | None  # None: the stack is gone
    failure: dict | None  # the first failed resource, when it did not succeed

    @property
    def succeeded(self) -> bool:
        return self.stack is not None and states.state_of(self.stack).succeeded

    @property
    def status(self) -> str | None:
        return self.stack["StackStatus"] if self.stack else None


def wait_executed(region: str, name: str, since, timeout: float, poll: float, on_poll=None) -> Ended:
    """Wait for the operation an executed change set started; on failure, its first failed
    resource from the events after `since` (CloudFormation's own timestamp)."""
    final = cfn.wait_stack(region, name, timeout, poll, on_poll=on_poll, stop=interrupt.STOP)
    ended = Ended(final, None)
    if not ended.succeeded:
        ended.failure = changes.first_failure(cfn.stack_events(region, name, since=since))
    return ended
