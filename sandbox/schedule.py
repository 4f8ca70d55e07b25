"""The stack's scheduled reconcile on the embedded AWS: the rule, its input, its firing.

The rule carries the stack's schedule expression and, as its target's input,
the very event the Pulumi schedule deploys (``components.reconcile``). moto
stores scheduled rules but never fires them: :func:`fire` reads the target's
input back from EventBridge, which is what EventBridge would deliver to the
alias at the next scheduled time (:func:`period_seconds` after the last).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import boto3

from components.reconcile import reconcile_event
from components.stack_settings import StackSettings

_RATE_RE = re.compile(r"^rate\((\d+) (minute|hour|day)s?\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class ScheduledRule:
    rule_name: str
    expression: str
    target_arn: str


def period_seconds(expression: str) -> float:
    """Time from one scheduled run to the next (a cron expression: taken as daily)."""
    rate = _RATE_RE.match(expression)
    return int(rate[1]) * _UNIT_SECONDS[rate[2]] if rate else 86400.0


def install_schedule(stack: StackSettings, alias_arn: str) -> ScheduledRule | None:
    """The scheduled rule targeting the alias; None when the stack's reconcile is off."""
    if not stack.reconcile_schedule:
        return None
    events = boto3.client("events", region_name=stack.region)
    name = f"{stack.function_name}-reconcile"
    events.put_rule(Name=name, ScheduleExpression=stack.reconcile_schedule, State="ENABLED",
                    Description=f"ami-upgrade: reconcile {stack.parameter_name}")
    events.put_targets(Rule=name, Targets=[{
        "Id": "function", "Arn": alias_arn,
        "Input": json.dumps(reconcile_event(stack.parameter_name, stack.dry_run))}])
    return ScheduledRule(name, stack.reconcile_schedule, alias_arn)


def fire(stack: StackSettings, rule: ScheduledRule) -> dict:
    """The event the rule's target delivers when the schedule fires."""
    events = boto3.client("events", region_name=stack.region)
    targets = events.list_targets_by_rule(Rule=rule.rule_name)["Targets"]
    (target,) = [t for t in targets if t["Arn"] == rule.target_arn]
    event: dict = json.loads(target["Input"])
    return event
