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


def _subscribed_queue(topic_arn: str) -> str:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="summaries")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                                  Attributes={"RawMessageDelivery": "true"})
    return url


def _messages(url: str) -> list[dict]:
    got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_failed_run_publishes_its_report(aws):
    topic = boto3.client("sns").create_topic(Name="ami-upgrade")["TopicArn"]
    url = _subscribed_queue(topic)
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value="ami-0123456789abcdef0",
                                      Type="String")
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "NOTIFICATION_TOPIC_ARN": topic})

    report = function.invoke({})

    assert report["status"] == "failed"
    assert "ami-0123456789abcdef0" in report["reason"]
    assert _messages(url) == [report]


def test_ignored_event_publishes_nothing(aws):
    topic = boto3.client("sns").create_topic(Name="ami-upgrade")["TopicArn"]
    url = _subscribed_queue(topic)
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "NOTIFICATION_TOPIC_ARN": topic})

    report = function.invoke({"parameter_name": "/some/other"})

    assert report["status"] == "ignored"
    assert _messages(url) == []


def test_unreachable_topic_still_returns_the_report(aws):
    missing = f"arn:aws:sns:{aws.region}:{aws.account_id}:does-not-exist"
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "NOTIFICATION_TOPIC_ARN": missing})

    report = function.invoke({})

    assert report["status"] == "failed"
    assert report["reason"] == "cannot read parameter /ami/linux/test: ParameterNotFound"
