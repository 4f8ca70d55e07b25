"""The sandbox runs the handler as Lambda would: environment, context, async queue."""

import json
import os

import boto3
import pytest

from sandbox import LambdaFunction, embedded_aws

PARAMETER = "/ami/linux/test"


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


def _available_image(aws) -> str:
    return boto3.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


def test_invoke_sets_environment_only_for_the_call(aws, monkeypatch):
    monkeypatch.delenv("AMI_PARAMETER_NAME", raising=False)
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=_available_image(aws), Type="String")
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "ALLOWED_AMI_OWNERS": '["amazon"]'})   # a stock image

    report = function.invoke({"parameter_name": PARAMETER})

    assert report["parameter"] == PARAMETER
    assert report["status"] == "succeeded"
    assert "AMI_PARAMETER_NAME" not in os.environ


def test_context_remaining_time_follows_the_emulated_clock(aws):
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER}, timeout_seconds=300)
    context = function.context()

    aws.advance(120)

    assert context.get_remaining_time_in_millis() == 180_000
    assert context.invoked_function_arn.endswith(":function:ami-upgrade:dev")


def test_async_invoke_of_the_function_is_queued_and_drained_in_order(aws):
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER})
    client = boto3.client("lambda")
    for name in ("/other/one", "/other/two"):
        response = client.invoke(FunctionName=function.arn, InvocationType="Event",
                                 Payload=json.dumps({"parameter_name": name}).encode())
        assert response["StatusCode"] == 202

    assert len(function.pending()) == 2
    reports = function.drain()

    assert [r["status"] for r in reports] == ["ignored", "ignored"]
    assert ["/other/one" in r["reason"] for r in reports] == [True, False]
    assert function.pending() == []


def test_clock_refuses_to_go_back(aws):
    with pytest.raises(ValueError, match="does not go back"):
        aws.advance(-1)


def test_clock_advances_listeners_in_steps(aws):
    seen = []
    undo = aws.clock.on_advance(lambda now: seen.append(now))
    aws.advance(40)
    undo()
    aws.advance(10)

    assert [round((t - seen[0]).total_seconds()) for t in seen] == [0, 15, 25]
    assert aws.clock.monotonic() == 50
