"""A refresh in the way is cancelled only when the engine may undo it: the one it recorded
on the group, or one heading to the group's own template (whose other changes the restart
keeps). Any other is another deployment: waited for under every policy, never cancelled,
and the report names it (refresh ID, target)."""

from __future__ import annotations

import boto3
import pytest

from handler.tags import REFRESH_ID


@pytest.fixture
def elsewhere(estate, images):
    """Group "web" on its template, and another team's refresh toward template "web-v2"."""

    def start(warmup: int = 600, record: bool = False, desired: dict | None = None) -> dict:
        estate.group("web")
        other = estate.template("web-v2", images.old, UserData="ZWNobyB2Mg==")
        autoscaling = boto3.client("autoscaling")
        refresh_id = autoscaling.start_instance_refresh(
            AutoScalingGroupName="web",
            DesiredConfiguration=desired or {"LaunchTemplate": {"LaunchTemplateId": other,
                                                                "Version": "1"}},
            Preferences={"MinHealthyPercentage": 100, "InstanceWarmup": warmup},
        )["InstanceRefreshId"]
        if record:   # as the engine records the refreshes it starts
            autoscaling.create_or_update_tags(Tags=[{
                "ResourceId": "web", "ResourceType": "auto-scaling-group", "Key": REFRESH_ID,
                "Value": refresh_id, "PropagateAtLaunch": False}])
        return {"template": other, "refresh_id": refresh_id}

    return start


def _status(estate, refresh_id: str) -> str:
    return next(r["Status"] for r in estate.refreshes("web")
                if r["InstanceRefreshId"] == refresh_id)


def test_another_templates_refresh_is_not_cancelled_under_cancel_and_restart(
        estate, images, elsewhere, function, api_calls):
    theirs = elsewhere()
    estate.publish(images.new)

    report = function(timeout_seconds=120).invoke({})

    assert api_calls.of("CancelInstanceRefresh") == []
    assert _status(estate, theirs["refresh_id"]) in ("Pending", "InProgress")
    assert report["asgs"][0]["action"] == "skipped"


def test_the_report_names_the_refresh_in_the_way_and_its_target(
        estate, images, elsewhere, function):
    theirs = elsewhere()
    estate.publish(images.new)

    report = function(timeout_seconds=120).invoke({})

    group = report["asgs"][0]
    assert group["active_refresh"] == {
        "id": theirs["refresh_id"], "status": "Pending", "heading_to": images.old,
        "target": f"launch template {theirs['template']} version 1", "cancellable": False}
    assert group["reason"].startswith(
        f"waiting for instance refresh {theirs['refresh_id']} (Pending) toward launch template "
        f"{theirs['template']} version 1, {images.old} (not started by this function and "
        "heading to another template, so not cancelled)")


def test_the_dry_run_says_the_refresh_in_the_way_is_waited_for(
        estate, images, elsewhere, function):
    theirs = elsewhere()
    estate.publish(images.new)

    report = function(DRY_RUN="true").invoke({})

    assert report["asgs"][0]["reason"].startswith(
        f"wait for instance refresh {theirs['refresh_id']} (Pending) toward launch template "
        f"{theirs['template']} version 1")
    assert "it is not cancelled" in report["asgs"][0]["reason"]


def test_another_template_named_by_name_is_not_cancelled_either(
        estate, images, elsewhere, function, api_calls):
    theirs = elsewhere(desired={"LaunchTemplate": {"LaunchTemplateName": "web-v2",
                                                   "Version": "$Latest"}})
    estate.publish(images.new)

    report = function(timeout_seconds=120).invoke({})

    assert api_calls.of("CancelInstanceRefresh") == []
    assert report["asgs"][0]["active_refresh"]["target"] == "launch template web-v2 version $Latest"
    assert _status(estate, theirs["refresh_id"]) in ("Pending", "InProgress")


def test_under_wait_another_templates_refresh_is_named_too(estate, images, elsewhere, function):
    theirs = elsewhere()
    estate.publish(images.new)

    report = function(timeout_seconds=120, ASG_CONFIGURATIONS='{"web": {"OnRefreshInProgress": '
                                                              '"wait"}}').invoke({})

    assert report["asgs"][0]["active_refresh"]["id"] == theirs["refresh_id"]
    assert report["asgs"][0]["active_refresh"]["cancellable"] is False
    assert _status(estate, theirs["refresh_id"]) in ("Pending", "InProgress")


def test_the_groups_own_recorded_refresh_is_cancelled_wherever_it_heads(
        estate, images, elsewhere, function, api_calls):
    ours = elsewhere(record=True)
    estate.publish(images.new)

    report = function().invoke({})

    assert api_calls.of("CancelInstanceRefresh") == [{"AutoScalingGroupName": "web"}]
    assert _status(estate, ours["refresh_id"]) == "Cancelled"
    assert report["asgs"][0]["action"] == "refresh_started"


def test_a_started_refresh_says_which_refresh_it_cancelled(estate, images, function):
    estate.group("web")
    template = estate.template_id("web")
    version = estate.add_version(template, ImageId=images.old, UserData="ZWNobyBoZWxsbw==")
    theirs = boto3.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template,
                                                 "Version": str(version)}},
        Preferences={"MinHealthyPercentage": 100, "InstanceWarmup": 600})["InstanceRefreshId"]
    estate.publish(images.new)

    report = function().invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert report["asgs"][0]["reason"].startswith(
        f"cancelled instance refresh {theirs} (Pending) toward {images.old}, then started "
        "instance refresh toward launch template")


def test_after_another_templates_refresh_ends_the_group_moves_from_its_new_template(
        estate, images, elsewhere, function):
    theirs = elsewhere(warmup=60)
    estate.publish(images.new)

    first = function(timeout_seconds=90).invoke({})
    assert first["asgs"][0]["action"] == "skipped"
    report = function().invoke({})

    assert _status(estate, theirs["refresh_id"]) == "Successful"
    assert report["asgs"][0]["action"] == "refresh_started", report["asgs"][0]
    versions = estate.versions(theirs["template"])
    assert versions[max(versions)] == {**versions[1], "ImageId": images.new}
