"""From ``PutParameter`` to ``lambda_handler``: the event path of a deployed stack.

AWS produces the event itself (CloudTrail records the API call, or SSM emits
``Parameter Store Change``); the sandbox produces the same event, shaped like
the recorded ones in ``tests/fixtures/events``, and publishes it on moto's
EventBridge. The rule carries the very pattern the Pulumi trigger deploys
(``components.event_pattern``), so an event the stack would not route never
reaches the function here either. The rule's target is an SQS queue standing in
for Lambda's own queue of asynchronous invocations; each message is delivered
to ``handler.main.lambda_handler`` through ``LambdaFunction`` with Lambda's
asynchronous semantics: a failed invocation is retried (twice by default, after
one and then two minutes of emulated time), and the function's own
asynchronous invocations (continuations) are delivered the same way.

A spoke's ``refresh-ended`` rule is routed the same way (:func:`install_rule`), fed by
the events the refresh emulation records when a refresh ends (:func:`refresh_ended_entry`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import boto3

from components.stack_settings import StackSettings
from handler.triggers import REFRESH_ENDED, REFRESH_ENDED_DETAIL_TYPES, Emulation, trigger

from .core import EmbeddedAws
from .faults import SimulatedCrash
from .instance_refresh import Ended
from .lambda_invoke import STATE_KEY
from .lambda_runtime import LambdaFunction

# Lambda's asynchronous invocation retries (the function component's maximum_retry_attempts).
ASYNC_RETRY_ATTEMPTS = 2
RETRY_DELAYS_SECONDS = (60, 120)


@dataclass(frozen=True)
class Trigger:
    """The deployed rule and the queue its target delivers to."""

    rule_name: str
    rule_arn: str
    queue_url: str
    pattern: dict


@dataclass(frozen=True)
class Invocation:
    """One delivery to the function: its event, the attempt, and the report or the error."""

    source: str                      # "event" (from the rule) or "continuation"
    event: dict
    attempt: int                     # 0 for the first try, then Lambda's retries
    report: dict | None = None
    error: str | None = None
    started: float = 0.0             # emulated clock (monotonic seconds) at start and end
    ended: float = 0.0


def install_trigger(stack: StackSettings) -> Trigger:
    """The stack's EventBridge rule with the trigger's pattern and an SQS target."""
    return install_rule(stack.trigger, stack.parameter_name, stack.function_name, stack.region)


def install_rule(trigger_name: str, parameter_name: str, function_name: str, region: str,
                 suffix: str = "trigger") -> Trigger:
    """A registered trigger's rule (``<function>-<suffix>``), as the stack deploys it, on
    the default bus of the caller's account, with an SQS target."""
    events = boto3.client("events", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    spec = trigger(trigger_name)
    pattern = spec.event_pattern(parameter_name)
    rule_name = f"{function_name}-{suffix}"
    rule_arn = events.put_rule(Name=rule_name, EventPattern=json.dumps(pattern),
                               State="ENABLED",
                               Description=spec.rule_description(parameter_name))["RuleArn"]
    queue = f"{function_name}-invocations" + ("" if suffix == "trigger" else f"-{suffix}")
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"]
                                         )["Attributes"]["QueueArn"]
    events.put_targets(Rule=rule_name, Targets=[{"Id": "function", "Arn": queue_arn}])
    return Trigger(rule_name, rule_arn, queue_url, pattern)


def put_parameter(stack: StackSettings, value: str) -> int:
    """Write the new AMI into the stack's parameter; returns the new version."""
    ssm = boto3.client("ssm", region_name=stack.region)
    return ssm.put_parameter(Name=stack.parameter_name, Value=value, Type="String",
                             DataType="aws:ec2:image", Overwrite=True)["Version"]


def parameter_change_entry(aws: EmbeddedAws, stack: StackSettings, version: int,
                           operation: str = "Update", error_code: str | None = None) -> dict:
    """The ``PutEvents`` entry AWS would emit for the stack's trigger after ``PutParameter``.

    ``error_code`` makes a failed CloudTrail call (the pattern must not route it).
    """
    spec, now = trigger(stack.trigger), aws.clock.now()
    detail, resources = spec.emulate(Emulation(
        stack.parameter_name, stack.region, aws.account_id, version, now, operation, error_code))
    return {"Source": spec.source, "DetailType": spec.detail_type, "Time": now,
            "Resources": resources, "Detail": json.dumps(detail)}


def refresh_ended_entry(ended: Ended) -> dict:
    """The ``PutEvents`` entry of EC2 Auto Scaling's event for a refresh that ended."""
    spec = trigger(REFRESH_ENDED)
    detail, resources = spec.emulate(Emulation(
        "", ended.region, ended.account, 0, ended.time, group=ended.group,
        refresh_id=ended.refresh_id))
    return {"Source": spec.source, "DetailType": REFRESH_ENDED_DETAIL_TYPES[ended.status],
            "Time": ended.time, "Resources": resources, "Detail": json.dumps(detail)}


def publish(stack: StackSettings, entry: dict) -> str:
    """Put one event on the default bus; returns its ID."""
    return publish_in(stack.region, entry)


def publish_in(region: str, entry: dict) -> str:
    """Put one event on the caller's default bus in ``region``; returns its ID."""
    events = boto3.client("events", region_name=region)
    result = events.put_events(Entries=[entry])  # type: ignore[list-item]
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"PutEvents rejected the event: {result['Entries']}")
    return result["Entries"][0]["EventId"]


def receive(stack: StackSettings, trigger: Trigger) -> list[dict]:
    """Every event the rule delivered to its target so far (removed from the queue)."""
    return receive_in(stack.region, trigger)


def receive_in(region: str, trigger: Trigger) -> list[dict]:
    """Every event ``trigger``'s rule delivered to its target so far (removed from the queue)."""
    sqs = boto3.client("sqs", region_name=region)
    events: list[dict] = []
    while True:
        messages = sqs.receive_message(QueueUrl=trigger.queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=trigger.queue_url,
                               ReceiptHandle=message["ReceiptHandle"])


class Deliveries:
    """Invokes the function as Lambda's asynchronous invocation does, and records it all."""

    def __init__(self, aws: EmbeddedAws, function: LambdaFunction,
                 on_invocation: Callable[[Invocation], None] | None = None) -> None:
        self.aws = aws
        self.function = function
        self.invocations: list[Invocation] = []
        self.on_invocation = on_invocation

    def deliver(self, event: dict, source: str = "event") -> Invocation:
        """Invoke with ``event``; on error retry like Lambda (emulated delays); last outcome."""
        outcome = None
        for attempt in range(ASYNC_RETRY_ATTEMPTS + 1):
            if attempt:
                self.aws.advance(RETRY_DELAYS_SECONDS[attempt - 1])
            started = self.aws.clock.monotonic()
            try:
                report = self.function.invoke(event)
            except (Exception, SimulatedCrash) as exc:  # Lambda records the error and retries
                outcome = Invocation(source, event, attempt, error=f"{type(exc).__name__}: {exc}",
                                     started=started, ended=self.aws.clock.monotonic())
            else:
                outcome = Invocation(source, event, attempt, report=report, started=started,
                                     ended=self.aws.clock.monotonic())
            self._record(outcome)
            if outcome.error is None:
                break
        assert outcome is not None
        return outcome

    def pending(self) -> int:
        return len(self.function.pending())

    def deliver_queued(self) -> int:
        """Deliver the continuations queued so far (those they queue wait for the next call)."""
        queue = self.aws.state.setdefault(STATE_KEY, [])
        batch = self.function.pending()
        for item in batch:
            queue.remove(item)
            self.deliver(item["event"], source="continuation")
        return len(batch)

    def _record(self, invocation: Invocation) -> None:
        self.invocations.append(invocation)
        if self.on_invocation:
            self.on_invocation(invocation)
