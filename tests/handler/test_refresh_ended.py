"""The refresh-ended trigger: EC2 Auto Scaling's event when an instance refresh ends makes
the function re-derive the estate; a group out of scope is ignored and nothing else."""

from __future__ import annotations

import boto3
import pytest

from handler.engine import hub_counts
from handler.events import parse_event
from handler.outcomes import Code
from handler.report import AsgEntry, Report
from handler.run import Action, Status

PARAMETER = "/ami/linux/test"


def ended(load_event, group: str) -> dict:
    event = load_event("autoscaling-refresh-succeeded")
    event["detail"]["AutoScalingGroupName"] = group
    return event


def test_the_recorded_event_is_read_as_the_trigger_naming_its_group(load_event):
    request = parse_event(load_event("autoscaling-refresh-succeeded"), PARAMETER)
    assert (request.kind, request.parameter_name, request.group, request.ignored_reason) == (
        "refresh-ended", PARAMETER, "web", None)


@pytest.mark.parametrize("detail_type", [
    "EC2 Auto Scaling Instance Refresh Failed", "EC2 Auto Scaling Instance Refresh Cancelled",
    "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
    "EC2 Auto Scaling Instance Refresh Rollback Failed"])
def test_every_end_of_a_refresh_is_the_same_trigger(load_event, detail_type):
    event = load_event("autoscaling-refresh-succeeded")
    event["detail-type"] = detail_type
    assert parse_event(event, PARAMETER).kind == "refresh-ended"


def test_an_event_without_the_group_is_refused(function, load_event, aws):
    event = load_event("autoscaling-refresh-succeeded")
    del event["detail"]["AutoScalingGroupName"]
    report = function().invoke(event)
    assert report["status"] == "failed"
    assert report["reason"].startswith("instance refresh event without "
                                       "detail.AutoScalingGroupName")


def test_a_started_refresh_has_the_spoke_refreshing_and_its_end_reports_the_group_on_the_ami(
        estate, images, function, load_event, aws, api_calls):
    estate.group("web")
    estate.publish(images.new)
    first = function().invoke({})
    assert [g["action"] for g in first["asgs"]] == ["refresh_started"]

    aws.advance(3600)   # the emulated refresh runs its course
    assert estate.refreshes("web")[0]["Status"] == "Successful"
    api_calls.clear()
    report = function().invoke(ended(load_event, "web"))

    assert (report["status"], report["ami_id"]) == ("succeeded", images.new)
    assert [(g["name"], g["action"]) for g in report["asgs"]] == [("web", "skipped")]
    assert set(estate.instance_images("web").values()) == {images.new}
    assert "StartInstanceRefresh" not in api_calls.mutating()


@pytest.mark.parametrize(("tags", "parameter", "why"), [
    ({"ami-upgrade:exclude": "true"}, PARAMETER, "excluded by tag ami-upgrade:exclude=true"),
    ({}, "/another/parameter", "tagged ami-upgrade:parameter=/another/parameter, not "),
])
def test_a_refresh_of_a_group_out_of_scope_is_ignored_and_nothing_else(
        estate, images, function, load_event, api_calls, tags, parameter, why):
    estate.group("web")
    estate.group("other", tags=tags, parameter=parameter)
    estate.publish(images.new)
    api_calls.clear()

    report = function().invoke(ended(load_event, "other"))

    assert report["status"] == "ignored"
    assert report["reason"].startswith(
        f"an instance refresh of Auto Scaling group other ended: {why}")
    assert api_calls.mutating() == [] and estate.refreshes("web") == []
    assert {op for _, op, _ in api_calls.calls} <= {"DescribeAutoScalingGroups"}


def test_the_hub_counts_say_which_groups_are_not_on_the_ami_yet():
    report = Report("/p", "ami-1", False, Status.SUCCEEDED, asgs=(
        AsgEntry("a", Action.REFRESH_STARTED, Code.REFRESH_STARTED),
        AsgEntry("b", Action.SKIPPED, Code.ALREADY_CURRENT),
        AsgEntry("c", Action.SKIPPED, Code.REFRESH_ALREADY_RUNNING),
        AsgEntry("e", Action.SKIPPED, Code.STARTED_EARLIER),
        AsgEntry("d", Action.SKIPPED, Code.REFRESH_ROLLED_BACK),
        AsgEntry("f", Action.SKIPPED, Code.FAILED_BEFORE)),
        pending={"asgs": 0, "instances": 1})
    assert hub_counts(report) == {"refreshing": 3, "rolled_back": 2, "pending": 1}


def test_the_exclusions_parameter_is_read_once_for_a_refresh_end_and_its_run(
        estate, images, function, load_event, aws, api_calls):
    """The scope check of the event's group and the run share one read of it."""
    boto3.client("ssm").put_parameter(Name="/ami-upgrade/exclusions", Type="String",
                                      Value='{"asgs": ["legacy"]}')
    estate.group("web")
    estate.publish(images.new)
    api_calls.clear()

    report = function(EXCLUSIONS_PARAMETER_NAME="/ami-upgrade/exclusions").invoke(
        ended(load_event, "web"))

    assert [(g["name"], g["action"]) for g in report["asgs"]] == [("web", "refresh_started")]
    reads = [params.get("Name") for _, op, params in api_calls.calls if op == "GetParameter"]
    assert reads.count("/ami-upgrade/exclusions") == 1
