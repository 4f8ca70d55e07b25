"""A spoke (HUB_EVENT_BUS_ARN set) sends its run's outcome to the hub's bus; a refusal is
logged and never loses the run's report."""

from __future__ import annotations

import json

import boto3
import pytest

from sandbox import LambdaFunction, embedded_aws
from sandbox.core import environment
from sandbox.cross_account_events import STATE_KEY

HUB, SPOKE = "111111111111", "123456789012"
PARAMETER = "/ami/linux/test"


@pytest.fixture
def hub_bus():
    """A hub bus in another account, admitting SPOKE's reports only."""
    with embedded_aws() as aws:
        with environment({"MOTO_ACCOUNT_ID": HUB}):
            events = boto3.client("events")
            arn = events.create_event_bus(Name="reports")["EventBusArn"]
            events.put_permission(EventBusName="reports", Policy=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Sid": "Spokes", "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{SPOKE}:root"},
                    "Action": "events:PutEvents", "Resource": arn,
                    "Condition": {"StringEquals": {"events:source": "ami-upgrade.spoke"}}}]}))
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value="ami-03cf127a", Type="String")
        yield aws, arn


def test_a_spokes_run_report_reaches_the_hub_bus_as_the_promoter_reads_it(hub_bus):
    aws, arn = hub_bus
    report = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                  "HUB_EVENT_BUS_ARN": arn}).invoke({})

    [event] = aws.state[STATE_KEY][arn]
    assert (event["account"], event["source"], event["detail-type"]) == (
        SPOKE, "ami-upgrade.spoke", "ami-upgrade report")
    assert event["detail"] == {"region": "us-east-1", "parameter": PARAMETER,
                               "ami_id": report["ami_id"], "status": report["status"],
                               "dry_run": False, "refreshing": 0, "rolled_back": 0,
                               "pending": 0}


def test_a_bus_refusing_the_report_is_logged_and_the_run_still_reports(hub_bus, caplog):
    aws, arn = hub_bus
    other = arn.replace(HUB, "222222222222")   # a bus that does not exist / admit us
    report = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                  "HUB_EVENT_BUS_ARN": other,
                                  "ALLOWED_AMI_OWNERS": "[\"amazon\"]"}).invoke({})

    assert report["status"] == "succeeded"
    logged = [json.loads(m) for m in caplog.messages if m.startswith("{")]
    assert [e["error"] for e in logged if e.get("event") == "hub_report_failed"] == [
        "AccessDeniedException"]


def test_an_ignored_event_sends_nothing_to_the_hub(hub_bus):
    aws, arn = hub_bus
    LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER, "HUB_EVENT_BUS_ARN": arn}).invoke(
        {"parameter_name": "/some/other"})
    assert aws.state.get(STATE_KEY, {}).get(arn, []) == []
