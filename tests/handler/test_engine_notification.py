"""The run summary goes to NOTIFICATION_TOPIC_ARN; its failure never loses the report."""

import json

import boto3
import pytest

from sandbox import LambdaFunction, embedded_aws

PARAMETER = "/ami/linux/test"


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


def test_failed_run_publishes_its_report(aws, summaries):
    topic = summaries.topic_arn
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value="ami-0123456789abcdef0",
                                      Type="String")
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "NOTIFICATION_TOPIC_ARN": topic})

    report = function.invoke({})

    assert report["status"] == "failed"
    assert "ami-0123456789abcdef0" in report["reason"]
    assert [json.loads(body) for body in summaries.bodies()] == [report]


def test_ignored_event_publishes_nothing(aws, summaries):
    topic = summaries.topic_arn
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "NOTIFICATION_TOPIC_ARN": topic})

    report = function.invoke({"parameter_name": "/some/other"})

    assert report["status"] == "ignored"
    assert summaries.bodies() == []


def test_unreachable_topic_still_returns_the_report(aws):
    missing = f"arn:aws:sns:{aws.region}:{aws.account_id}:does-not-exist"
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "NOTIFICATION_TOPIC_ARN": missing})

    report = function.invoke({})

    assert report["status"] == "failed"
    assert report["reason"].startswith("cannot read parameter /ami/linux/test: "
                                       "ParameterNotFound; nothing new was started")
