"""Planning that fails becomes part of the report, per subsystem.

A describe throttled past the SDK's retries, or refused, during one subsystem's planning
(the groups, the standalone instances) must not escape as a raw ClientError: the run
reports which call failed and how, publishes its summary, and the other subsystem
plans and applies as usual (so work in flight is still driven). A transient error is
retried by the continuation the engine sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from .aws import describe_error, is_transient
from .log import log_event
from .run import RunContext

# Transient errors (aws.is_transient: throttling, AWS-side trouble, capacity) say so.
RETRIED = "transient: retried at the next invocation"

Plan = TypeVar("Plan")


def error_text(error: ClientError | BotoCoreError, operation: str = "call") -> str:
    """AWS's words, and for a transient error that the next invocation retries it."""
    text = describe_error(error, operation) if isinstance(error, ClientError) else \
        f"{operation} failed: {error}"
    return f"{text} ({RETRIED})" if is_transient(error) else text


@dataclass(frozen=True)
class PlanningFailure:
    """One subsystem's planning could not finish: which, why, and whether it retries."""

    subsystem: str
    error: str
    transient: bool

    def sentence(self) -> str:
        return f"planning the {self.subsystem} failed: {self.error}"


def plan_guarded(subsystem: str, plan: Callable[[RunContext], tuple[Plan, ...]],
                 ctx: RunContext) -> tuple[tuple[Plan, ...], PlanningFailure | None]:
    """``plan(ctx)``, or no plans and the failure when an AWS read fails."""
    try:
        return plan(ctx), None
    except (ClientError, BotoCoreError) as exc:
        failure = PlanningFailure(subsystem, error_text(exc), is_transient(exc))
        log_event("planning_failed", subsystem=subsystem, error=failure.error,
                  transient=failure.transient)
        return (), failure
