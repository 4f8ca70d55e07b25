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
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from components.event_pattern import (
    CLOUDTRAIL_DETAIL_TYPE,
    PARAMETER_STORE_CHANGE_DETAIL_TYPE,
    event_pattern,
)
from components.stack_settings import StackSettings

from .core import EmbeddedAws
from .faults import SimulatedCrash
from .lambda_invoke import STATE_KEY
from .lambda_runtime import LambdaFunction

# Lambda's asynchronous invocation retries (the function component's maximum_retry_attempts).
ASYNC_RETRY_ATTEMPTS = 2
RETRY_DELAYS_SECONDS = (60, 120)
PIPELINE_ROLE = "arn:aws:sts::{account}:assumed-role/image-release/release-pipeline"


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
    events = boto3.client("events", region_name=stack.region)
    sqs = boto3.client("sqs", region_name=stack.region)
    pattern = event_pattern(stack.trigger, stack.parameter_name)
    rule_name = f"{stack.function_name}-trigger"
    rule_arn = events.put_rule(Name=rule_name, EventPattern=json.dumps(pattern),
                               State="ENABLED",
                               Description=f"ami-upgrade: {stack.trigger} of "
                                           f"{stack.parameter_name}")["RuleArn"]
    queue_url = sqs.create_queue(QueueName=f"{stack.function_name}-invocations")["QueueUrl"]
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
    now = aws.clock.now()
    arn = f"arn:aws:ssm:{stack.region}:{aws.account_id}:parameter{stack.parameter_name}"
    if stack.trigger == "cloudtrail":
        detail: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole",
                             "arn": PIPELINE_ROLE.format(account=aws.account_id),
                             "accountId": aws.account_id},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "ssm.amazonaws.com",
            "eventName": "PutParameter",
            "awsRegion": stack.region,
            "sourceIPAddress": "203.0.113.24",
            "userAgent": "aws-cli/2.22.4 command/ssm.put-parameter",
            "requestParameters": {"name": stack.parameter_name, "type": "String",
                                  "value": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                  "overwrite": True, "dataType": "aws:ec2:image"},
            "responseElements": None if error_code else {"version": version,
                                                         "tier": "Standard"},
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": aws.account_id,
            "eventCategory": "Management",
        }
        if error_code:
            detail["errorCode"] = error_code
            detail["errorMessage"] = f"{error_code} (emulated)"
        return {"Source": "aws.ssm", "DetailType": CLOUDTRAIL_DETAIL_TYPE, "Time": now,
                "Resources": [], "Detail": json.dumps(detail)}
    detail = {"operation": operation, "name": stack.parameter_name, "type": "String",
              "dataType": "aws:ec2:image", "description": "the image the fleet follows"}
    return {"Source": "aws.ssm", "DetailType": PARAMETER_STORE_CHANGE_DETAIL_TYPE,
            "Time": now, "Resources": [arn], "Detail": json.dumps(detail)}


def publish(stack: StackSettings, entry: dict) -> str:
    """Put one event on the default bus; returns its ID."""
    events = boto3.client("events", region_name=stack.region)
    result = events.put_events(Entries=[entry])
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"PutEvents rejected the event: {result['Entries']}")
    return result["Entries"][0]["EventId"]


def receive(stack: StackSettings, trigger: Trigger) -> list[dict]:
    """Every event the rule delivered to its target so far (removed from the queue)."""
    sqs = boto3.client("sqs", region_name=stack.region)
    events = []
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
