"""The trigger's pattern, routed by a real matcher: moto's EventBridge delivering to SQS."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from components.event_pattern import event_pattern
from handler.events import parse_event
from handler.triggers import REFRESH_ENDED, REGISTRY, TRIGGERS, Emulation
from infra.harness import REPO

PARAMETER = "/ami/linux/test"  # the parameter the shared fixture events name
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def delivered(pattern: dict, event: dict) -> list[dict]:
    """Put ``event`` on a bus whose only rule has ``pattern``; the events its target got."""
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="target")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="ami-upgrade", EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule="ami-upgrade", Targets=[{"Id": "queue", "Arn": queue_arn}])
        put = events.put_events(Entries=[{
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event["resources"],
        }])
        assert put["FailedEntryCount"] == 0
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


def renamed(event: dict, name: str) -> dict:
    if "requestParameters" in event["detail"]:
        event["detail"]["requestParameters"]["name"] = name
    else:
        event["detail"]["name"] = name
    return event


@pytest.mark.parametrize("fixture", [
    "parameter-store-change-create",
    "parameter-store-change-update",
    "parameter-store-change-invalid-image",
])
def test_native_pattern_routes_create_and_update_of_the_parameter(load_event, fixture):
    event = load_event(fixture)
    got = delivered(event_pattern("parameter-store-change", PARAMETER), event)
    assert [e["detail"] for e in got] == [event["detail"]]


@pytest.mark.parametrize("fixture", [
    "parameter-store-change-delete",
    "cloudtrail-put-parameter",
    "cloudtrail-put-parameter-failed",
    "cloudtrail-put-parameter-other-name",
])
def test_native_pattern_drops_deletes_and_cloudtrail_events(load_event, fixture):
    assert delivered(event_pattern("parameter-store-change", PARAMETER), load_event(fixture)) == []


def test_native_pattern_drops_another_parameters_update(load_event):
    event = renamed(load_event("parameter-store-change-update"), "/ami/linux/other")
    assert delivered(event_pattern("parameter-store-change", PARAMETER), event) == []


def test_native_pattern_drops_label_parameter_version(load_event):
    event = load_event("parameter-store-change-update")
    event["detail"]["operation"] = "LabelParameterVersion"
    assert delivered(event_pattern("parameter-store-change", PARAMETER), event) == []


def test_cloudtrail_pattern_routes_the_parameters_put_parameter(load_event):
    event = load_event("cloudtrail-put-parameter")
    got = delivered(event_pattern("cloudtrail", PARAMETER), event)
    assert [e["detail"]["requestParameters"]["name"] for e in got] == [PARAMETER]


@pytest.mark.parametrize("fixture", [
    "cloudtrail-put-parameter-failed",
    "cloudtrail-put-parameter-other-name",
    "parameter-store-change-update",
    "parameter-store-change-create",
    "parameter-store-change-delete",
])
def test_cloudtrail_pattern_drops_failed_calls_other_names_and_native_events(load_event, fixture):
    assert delivered(event_pattern("cloudtrail", PARAMETER), load_event(fixture)) == []


def test_cloudtrail_pattern_routes_a_put_parameter_naming_the_parameter_by_arn(load_event):
    arn = f"arn:aws:ssm:{REGION}:123456789012:parameter{PARAMETER}"
    event = renamed(load_event("cloudtrail-put-parameter"), arn)
    assert len(delivered(event_pattern("cloudtrail", PARAMETER), event)) == 1


def test_cloudtrail_pattern_drops_the_arn_of_a_deeper_parameter_with_the_same_tail(load_event):
    arn = f"arn:aws:ssm:{REGION}:123456789012:parameter/team{PARAMETER}"
    event = renamed(load_event("cloudtrail-put-parameter"), arn)
    assert delivered(event_pattern("cloudtrail", PARAMETER), event) == []


def test_cloudtrail_pattern_drops_another_put_api_call(load_event):
    event = load_event("cloudtrail-put-parameter")
    event["detail"]["eventName"] = "DeleteParameter"
    assert delivered(event_pattern("cloudtrail", PARAMETER), event) == []


def test_unknown_trigger_is_rejected_naming_the_key():
    with pytest.raises(ValueError, match=r"^trigger: expected one of cloudtrail, "):
        event_pattern("cloudwatch", PARAMETER)


def test_each_call_returns_a_fresh_pattern():
    first = event_pattern("cloudtrail", PARAMETER)
    first["detail"]["eventName"].append("DeleteParameter")
    assert event_pattern("cloudtrail", PARAMETER)["detail"]["eventName"] == ["PutParameter"]


def test_pattern_and_settings_modules_import_without_pulumi():
    code = ("import sys, components, components.event_pattern, components.stack_settings, "
            "components.tags, components.policy; "
            "sys.exit(1 if any(m.split('.')[0].startswith('pulumi') for m in sys.modules) else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr or "pulumi was imported"


# ----------------------------------------------------- the trigger registry, walked whole


@pytest.mark.parametrize("name", REGISTRY)
def test_each_registered_trigger_routes_its_recorded_event_and_no_other(load_event, name):
    spec = REGISTRY[name]
    own = load_event(spec.fixture)
    assert len(delivered(spec.event_pattern(PARAMETER), own)) == 1
    for other in REGISTRY.values():
        if other.name != name:
            assert delivered(spec.event_pattern(PARAMETER), load_event(other.fixture)) == []


@pytest.mark.parametrize("name", REGISTRY)
def test_the_function_reads_each_triggers_event_as_that_trigger(load_event, name):
    request = parse_event(load_event(REGISTRY[name].fixture), PARAMETER)
    assert (request.kind, request.parameter_name, request.ignored_reason,
            request.failure_reason) == (name, PARAMETER, None, None)


@pytest.mark.parametrize("name", REGISTRY)
def test_the_sandboxs_emulated_event_is_routed_and_read_like_the_recorded_one(name):
    spec = REGISTRY[name]
    detail, resources = spec.emulate(Emulation(PARAMETER, REGION, "123456789012", 7,
                                               datetime(2026, 1, 1, tzinfo=UTC), group="web"))
    event = {"source": spec.source, "detail-type": spec.detail_type, "detail": detail,
             "resources": resources}
    assert len(delivered(spec.event_pattern(PARAMETER), event)) == 1
    assert parse_event(event, PARAMETER).kind == name


def test_the_choices_of_the_trigger_key_are_the_triggers_of_the_parameter():
    assert TRIGGERS == ("cloudtrail", "parameter-store-change")
    assert not REGISTRY[REFRESH_ENDED].follows_parameter


def test_the_refresh_ended_pattern_is_every_end_of_a_refresh_in_the_account_whatever_group(
        load_event):
    arn = f"arn:aws:ssm:{REGION}:111111111111:parameter/ami-upgrade/hub/waves/canary"
    pattern = REGISTRY[REFRESH_ENDED].event_pattern(arn)
    assert pattern == {"source": ["aws.autoscaling"], "detail-type": [
        "EC2 Auto Scaling Instance Refresh Succeeded", "EC2 Auto Scaling Instance Refresh Failed",
        "EC2 Auto Scaling Instance Refresh Cancelled",
        "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
        "EC2 Auto Scaling Instance Refresh Rollback Failed"]}
    event = load_event("autoscaling-refresh-succeeded")
    event["detail-type"] = "EC2 Auto Scaling Instance Refresh Rollback Succeeded"
    event["detail"]["AutoScalingGroupName"] = "any-group"
    assert len(delivered(pattern, event)) == 1
    event["detail-type"] = "EC2 Auto Scaling Instance Refresh Started"
    assert delivered(pattern, event) == []


def test_the_rule_description_names_the_trigger_and_fits_eventbridges_limit():
    for spec in REGISTRY.values():
        description = spec.rule_description(PARAMETER)
        assert description.startswith("ami-upgrade: ") and PARAMETER in description
        assert len(description) <= 512
