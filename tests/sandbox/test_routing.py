"""The event path: the stack's own EventBridge pattern, an SQS target, Lambda's retries."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest

from components.event_pattern import event_pattern
from sandbox import LambdaFunction, embedded_aws
from sandbox.routing import (
    ASYNC_RETRY_ATTEMPTS,
    Deliveries,
    install_trigger,
    parameter_change_entry,
    publish,
    put_parameter,
    receive,
)
from sandbox.stack import load_stack


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


def _image() -> str:
    return boto3.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_the_rule_carries_the_pattern_the_pulumi_trigger_deploys(aws, stack_name):
    stack = load_stack(stack_name)

    trigger = install_trigger(stack)

    rule = boto3.client("events").describe_rule(Name=trigger.rule_name)
    assert json.loads(rule["EventPattern"]) == event_pattern(stack.trigger,
                                                            stack.parameter_name)


@pytest.mark.parametrize("stack_name,detail_type", [
    ("dev", "Parameter Store Change"), ("prod", "AWS API Call via CloudTrail")])
def test_a_parameter_change_reaches_the_target_as_the_trigger_shapes_it(aws, stack_name,
                                                                        detail_type):
    stack = load_stack(stack_name)
    trigger = install_trigger(stack)
    version = put_parameter(stack, _image())

    publish(stack, parameter_change_entry(aws, stack, version))

    (event,) = receive(stack, trigger)
    assert (event["source"], event["detail-type"]) == ("aws.ssm", detail_type)
    name = event["detail"].get("name") or event["detail"]["requestParameters"]["name"]
    assert name == stack.parameter_name


def test_a_failed_put_parameter_call_is_not_routed(aws):
    stack = load_stack("prod")
    trigger = install_trigger(stack)

    publish(stack, parameter_change_entry(aws, stack, 1, error_code="AccessDenied"))

    assert receive(stack, trigger) == []


def test_a_change_of_another_parameter_is_not_routed(aws):
    stack = load_stack("dev")
    trigger = install_trigger(stack)
    other = dataclasses.replace(stack, parameter_name="/ami/linux/test-canary")

    publish(other, parameter_change_entry(aws, other, 1))

    assert receive(stack, trigger) == []


def test_the_cloudtrail_event_hides_the_value_as_cloudtrail_does(aws):
    stack = load_stack("prod")

    entry = parameter_change_entry(aws, stack, 4)

    detail = json.loads(entry["Detail"])
    assert detail["requestParameters"]["value"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert detail["responseElements"] == {"version": 4, "tier": "Standard"}


def test_a_failing_invocation_is_retried_like_lambda_async_then_given_up(aws):
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": "not a parameter name!"})
    deliveries = Deliveries(aws, function)
    started = aws.clock.monotonic()

    outcome = deliveries.deliver({"parameter_name": "/ami/linux/test"})

    assert [i.attempt for i in deliveries.invocations] == list(range(ASYNC_RETRY_ATTEMPTS + 1))
    assert outcome.error.startswith("SettingsError: AMI_PARAMETER_NAME")
    assert aws.clock.monotonic() - started == 180


def test_a_successful_invocation_is_delivered_once(aws):
    boto3.client("ssm").put_parameter(Name="/ami/linux/test", Value=_image(), Type="String")
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": "/ami/linux/test",
                                    "ALLOWED_AMI_OWNERS": '["amazon"]'})   # a stock image
    deliveries = Deliveries(aws, function)

    outcome = deliveries.deliver({"parameter_name": "/ami/linux/test"})

    assert (len(deliveries.invocations), outcome.error, outcome.report["status"]) == (
        1, None, "succeeded")


def test_queued_continuations_are_delivered_as_continuations(aws):
    boto3.client("ssm").put_parameter(Name="/ami/linux/test", Value=_image(), Type="String")
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": "/ami/linux/test",
                                    "ALLOWED_AMI_OWNERS": '["amazon"]'})   # a stock image
    deliveries = Deliveries(aws, function)
    boto3.client("lambda").invoke(FunctionName=function.arn, InvocationType="Event",
                                  Payload=json.dumps({"parameter_name": "/ami/linux/test"}))

    delivered = deliveries.deliver_queued()

    assert delivered == 1
    assert [(i.source, i.report["status"]) for i in deliveries.invocations] == [
        ("continuation", "succeeded")]
    assert function.pending() == []
