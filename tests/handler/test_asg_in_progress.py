"""A refresh already running on a group: skip it when it heads to the new AMI, otherwise
apply the group's OnRefreshInProgress policy (cancel-and-restart, wait, skip)."""

import json

import boto3
import pytest


@pytest.fixture
def busy(estate):
    """Group "web" whose own refresh runs toward version 2 (old AMI, new user data)."""

    def start(warmup: int, image_id: str | None = None) -> dict:
        estate.group("web")
        template = estate.template_id("web")
        version = estate.add_version(template, ImageId=image_id or estate.images.old,
                                     UserData="ZWNobyBoZWxsbw==")
        refresh_id = boto3.client("autoscaling").start_instance_refresh(
            AutoScalingGroupName="web",
            DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template,
                                                     "Version": str(version)}},
            Preferences={"MinHealthyPercentage": 100, "InstanceWarmup": warmup},
        )["InstanceRefreshId"]
        return {"template": template, "refresh_id": refresh_id}

    return start


def _policy(policy: str) -> dict:
    return {"ASG_CONFIGURATIONS": json.dumps({"web": {"OnRefreshInProgress": policy}})}


def _refresh(estate, refresh_id: str) -> dict:
    return next(r for r in estate.refreshes("web") if r["InstanceRefreshId"] == refresh_id)


@pytest.mark.parametrize("policy", ["cancel-and-restart", "wait", "skip"])
def test_a_refresh_toward_the_new_ami_is_left_alone_whatever_the_policy(
        estate, images, busy, function, api_calls, policy):
    theirs = busy(warmup=600, image_id=images.new)
    estate.publish(images.new)

    report = function(**_policy(policy)).invoke({})

    assert report["asgs"][0]["action"] == "skipped"
    assert report["asgs"][0]["reason"] == (f"instance refresh {theirs['refresh_id']} (Pending) "
                                           f"is already in progress toward {images.new}")
    assert api_calls.of("CancelInstanceRefresh") == []
    assert [r["InstanceRefreshId"] for r in estate.refreshes("web")] == [theirs["refresh_id"]]


@pytest.mark.parametrize("policy", ["wait", "skip"])
def test_wait_or_skip_reads_the_refresh_first_and_writes_nothing(
        estate, images, busy, function, api_calls, policy):
    """Only cancel-and-restart learns of a running refresh from StartInstanceRefresh."""
    busy(warmup=600, image_id=images.new)
    estate.publish(images.new)

    function(**_policy(policy)).invoke({})

    assert api_calls.mutating() == []


def test_cancel_and_restart_cancels_the_refresh_and_starts_one_toward_the_new_ami(
        estate, images, busy, function, api_calls):
    theirs = busy(warmup=600)
    estate.publish(images.new)

    report = function().invoke({})

    entry = report["asgs"][0]
    assert entry["action"] == "refresh_started"
    assert entry["active_refresh"]["id"] == theirs["refresh_id"]
    assert entry["on_refresh_in_progress"] == "cancel-and-restart"
    assert _refresh(estate, theirs["refresh_id"])["Status"] == "Cancelled"
    assert estate.refreshes("web")[0]["InstanceRefreshId"] == entry["refresh_id"]
    assert api_calls.of("CancelInstanceRefresh") == [{"AutoScalingGroupName": "web"}]


def test_cancel_and_restart_keeps_the_cancelled_refreshs_other_changes(
        estate, images, busy, function):
    theirs = busy(warmup=600)
    estate.publish(images.new)

    report = function().invoke({})

    # Version 3 (version 1 with the new AMI) was written before StartInstanceRefresh met
    # the running refresh; the refresh started is built on the cancelled one's version 2.
    versions = estate.versions(theirs["template"])
    assert report["asgs"][0]["launch_template_version"] == "4"
    assert versions[4] == {**versions[2], "ImageId": images.new}
    assert versions[4]["UserData"] == "ZWNobyBoZWxsbw=="


def test_wait_starts_the_refresh_once_the_running_one_has_finished(
        estate, images, busy, function, api_calls):
    theirs = busy(warmup=120)
    estate.publish(images.new)

    report = function(**_policy("wait")).invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert _refresh(estate, theirs["refresh_id"])["Status"] == "Successful"
    assert api_calls.of("CancelInstanceRefresh") == []
    assert "continuation" not in report


def test_wait_builds_on_the_version_the_finished_refresh_left(estate, images, busy, function):
    theirs = busy(warmup=120)
    estate.publish(images.new)

    report = function(**_policy("wait")).invoke({})

    versions = estate.versions(theirs["template"])
    assert report["asgs"][0]["source_version"] == "2"
    assert versions[3] == {**versions[2], "ImageId": images.new}


def test_wait_beyond_the_invocation_continues_in_a_follow_up_invocation(
        estate, images, busy, function):
    theirs = busy(warmup=1800)           # two instances, one at a time: an hour
    estate.publish(images.new)
    ours = function(timeout_seconds=600, **_policy("wait"))

    first = ours.invoke({})
    later = ours.drain()

    assert first["asgs"][0]["action"] == "skipped"
    assert first["asgs"][0]["reason"].startswith(
        f"waiting for instance refresh {theirs['refresh_id']} (")
    assert first["continuation"] == 1
    assert [r["asgs"][0]["action"] for r in later[:-1]] == ["skipped"] * (len(later) - 1)
    assert later[-1]["asgs"][0]["action"] == "refresh_started"
    assert _refresh(estate, theirs["refresh_id"])["Status"] == "Successful"


def test_skip_reports_the_group_and_leaves_the_refresh_running(
        estate, images, busy, function, api_calls):
    theirs = busy(warmup=600)
    estate.publish(images.new)

    report = function(**_policy("skip")).invoke({})

    assert report["asgs"][0]["action"] == "skipped"
    assert report["asgs"][0]["reason"].endswith("is in progress and OnRefreshInProgress is skip")
    assert _refresh(estate, theirs["refresh_id"])["Status"] in ("Pending", "InProgress")
    assert sorted(estate.versions(theirs["template"])) == [1, 2]
    assert api_calls.mutating() == []
