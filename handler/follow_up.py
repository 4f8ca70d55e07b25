"""The durable follow-up: an EventBridge rule the engine enables while work is in flight.

The continuation (an asynchronous self-invoke) is the fast path, and it can be
lost: a crash before it is sent, an invocation killed by its timeout, Lambda
dropping the event after its retries. So the stack deploys, next to the function,
a rule on ``rate(5 minutes)``, created DISABLED, whose target invokes the alias
with the contract's direct event (``components/follow_up.py``). The engine:

* enables it before the first mutating call of a run that has work (a crash after
  that call leaves the rule firing), and
* at the end of a run, leaves it enabled while anything is in flight or left to do
  (progress tags remain, work not started, a retry time not yet reached), and
  disables it once nothing is.

Why a rule and not EventBridge Scheduler one-time schedules: one resource, fixed
at deploy time, so the role needs only ``events:EnableRule``/``DisableRule``/
``DescribeRule`` on that one ARN (a schedule per retry would need
``scheduler:CreateSchedule`` and ``iam:PassRole`` for a scheduler role, and a
schedule not created is as lost as a continuation not sent). The backoff of a
replacement lives in its own tag (``ami-upgrade:retry``): a firing before that
time is a cheap run that makes no mutating call. Bounded: each replacement's
retries are (``standalone/retry.py``); the rule stops with the work.

Two invocations at once (the rule and a continuation) are normal; the function's
reserved concurrency keeps them apart, and a run only disables the rule after
reading the in-flight tags again.

The rule's name derives from the function's (``rule_name``), so the handler needs
no new setting: an invocation knows its function from its context.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from .aws import error_code
from .log import log_event

if TYPE_CHECKING:
    from types_boto3_events.client import EventBridgeClient

SUFFIX = "-follow-up"
RATE = "rate(5 minutes)"
PERIOD_SECONDS = 300
MAX_RULE_NAME = 64


class RuleState(StrEnum):
    """An EventBridge rule's ``State`` as DescribeRule gives it."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


def rule_name(function_name: str) -> str:
    """The follow-up rule of ``function_name`` (EventBridge allows 64 characters)."""
    return f"{function_name[:MAX_RULE_NAME - len(SUFFIX)]}{SUFFIX}"


def function_name_of(function_arn: str | None) -> str | None:
    """``arn:aws:lambda:<region>:<account>:function:<name>[:<alias>]`` -> ``<name>``."""
    parts = (function_arn or "").split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" else None


@dataclass
class FollowUp:
    """The rule as this invocation sees it; every call is best effort (logged, reported)."""

    events: EventBridgeClient | None
    name: str | None
    state: str | None = None          # a RuleState once read; None: unknown
    missing: bool = False             # not deployed (or not readable): continuation only

    @classmethod
    def for_function(cls, events: EventBridgeClient | None,
                     function_arn: str | None) -> FollowUp:
        function = function_name_of(function_arn)
        return cls(events, rule_name(function) if function else None)

    def available(self) -> bool:
        """True when the rule exists and can be read (read once per invocation)."""
        if self.events is None or self.name is None or self.missing:
            return False
        if self.state is None:
            try:
                self.state = self.events.describe_rule(Name=self.name).get("State", "")
            except (ClientError, BotoCoreError) as exc:
                self.missing = True
                code = error_code(exc) if isinstance(exc, ClientError) else str(exc)
                log_event("follow_up_unavailable", rule=self.name, error=code)
                return False
        return True

    def ensure(self, enabled: bool, reason: str) -> bool:
        """Set the rule's state; True when it is (or already was) as asked."""
        if not self.available():
            return False
        wanted = RuleState.ENABLED if enabled else RuleState.DISABLED
        if self.state == wanted:
            return True
        assert self.events is not None and self.name is not None
        try:
            if enabled:
                self.events.enable_rule(Name=self.name)
            else:
                self.events.disable_rule(Name=self.name)
        except (ClientError, BotoCoreError) as exc:
            log_event("follow_up_not_changed", rule=self.name, wanted=wanted, error=str(exc))
            return False
        self.state = wanted
        log_event("follow_up_" + ("enabled" if enabled else "disabled"), rule=self.name,
                  reason=reason)
        return True

    @property
    def enabled(self) -> bool:
        """True when the rule is known to be enabled (it runs the work left)."""
        return self.state == RuleState.ENABLED

    def note(self) -> str:
        """What the report says about who runs the work left."""
        if self.enabled:
            return f"the follow-up rule {self.name} runs it again every 5 minutes"
        return "no follow-up rule is enabled: only a continuation or a new event resumes it"
