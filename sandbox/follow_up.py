"""The stack's follow-up rule on the embedded AWS: deployed DISABLED, fired while enabled.

``components/follow_up.py`` deploys the rule (named by ``handler.follow_up.rule_name``,
``rate(5 minutes)``, the direct event as its target's input); the engine enables it
while work is in flight. moto stores rules but never fires them: :func:`fire` does
what EventBridge would at the next period, when the rule is enabled.
"""

from __future__ import annotations

import json

import boto3

from components.reconcile import reconcile_event
from handler.follow_up import PERIOD_SECONDS, RATE, rule_name

from .lambda_runtime import LambdaFunction


def deploy(fn: LambdaFunction, parameter_name: str, dry_run: bool = False) -> str:
    """The rule as the stack creates it (DISABLED), targeting ``fn``'s alias."""
    events = boto3.client("events", region_name=fn.aws.region)
    name = rule_name(fn.name)
    events.put_rule(Name=name, ScheduleExpression=RATE, State="DISABLED",
                    Description=f"ami-upgrade: follow-up of {parameter_name}")
    events.put_targets(Rule=name, Targets=[{
        "Id": "function", "Arn": fn.arn,
        "Input": json.dumps(reconcile_event(parameter_name, dry_run))}])
    return name


def state(fn: LambdaFunction) -> str:
    events = boto3.client("events", region_name=fn.aws.region)
    return events.describe_rule(Name=rule_name(fn.name))["State"]


def rule_input(fn: LambdaFunction) -> dict:
    """The event the rule's target sends (the direct event)."""
    events = boto3.client("events", region_name=fn.aws.region)
    (target,) = events.list_targets_by_rule(Rule=rule_name(fn.name))["Targets"]
    return dict(json.loads(target["Input"]))


def fire(fn: LambdaFunction) -> dict | None:
    """One period later: the invocation the rule makes, or None while it is disabled."""
    fn.aws.advance(PERIOD_SECONDS)
    if state(fn) != "ENABLED":
        return None
    events = boto3.client("events", region_name=fn.aws.region)
    (target,) = events.list_targets_by_rule(Rule=rule_name(fn.name))["Targets"]
    return fn.invoke(json.loads(target["Input"]))
