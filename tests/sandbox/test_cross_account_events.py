"""The embedded AWS delivers PutEvents onto another account's bus as its policy allows."""

from __future__ import annotations

import json

import boto3
import pytest

from components.hub_policy import report_bus_policy
from hub.settings import load_hub_settings
from sandbox.core import embedded_aws, environment
from sandbox.cross_account_events import STATE_KEY

HUB, SPOKE, STRANGER, REGION = "111111111111", "222222222222", "999999999999", "eu-west-1"
SETTINGS = load_hub_settings({
    "account": HUB, "region": REGION, "sourceParameterName": "/golden",
    "waves": [{"name": "canary", "targets": [{"account": SPOKE, "region": REGION}]}]})


@pytest.fixture
def bus():
    """The hub's report bus with the policy the hub stack renders."""
    with embedded_aws() as aws, environment({"MOTO_ACCOUNT_ID": HUB}):
        events = boto3.client("events", region_name=REGION)
        arn = events.create_event_bus(Name="reports")["EventBusArn"]
        events.put_permission(EventBusName="reports",
                              Policy=json.dumps(report_bus_policy(SETTINGS, REGION, arn)))
        yield aws, arn


def put(account: str, bus_arn: str, source: str = "ami-upgrade.spoke") -> dict:
    with environment({"MOTO_ACCOUNT_ID": account}):
        return boto3.client("events", region_name=REGION).put_events(Entries=[{
            "EventBusName": bus_arn, "Source": source, "DetailType": "ami-upgrade report",
            "Detail": json.dumps({"status": "succeeded"})}])


def test_a_spokes_report_arrives_with_the_spokes_account(bus):
    aws, arn = bus
    assert put(SPOKE, arn)["FailedEntryCount"] == 0
    [event] = aws.state[STATE_KEY][arn]
    assert (event["account"], event["source"], event["detail"]) == (
        SPOKE, "ami-upgrade.spoke", {"status": "succeeded"})


@pytest.mark.parametrize(("account", "source"), [
    (STRANGER, "ami-upgrade.spoke"),   # an account of no wave
    (SPOKE, "aws.ssm"),                # a spoke posing as another source
])
def test_the_report_bus_refuses_anyone_else_and_anything_else(bus, account, source):
    aws, arn = bus
    response = put(account, arn, source)
    assert response["FailedEntryCount"] == 1
    assert response["Entries"][0]["ErrorCode"] == "AccessDeniedException"
    assert aws.state.get(STATE_KEY, {}).get(arn, []) == []
