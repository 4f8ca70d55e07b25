"""Groups remember an AMI whose refresh rolled back, as instances do (issue 13, class 6): the
next delivery of the same AMI does not restart the refresh toward it; a newer AMI, or removing
the tag, does."""

from __future__ import annotations

import json

import pytest

CONFIG = json.dumps({"default": {"MinHealthyPercentage": 50, "InstanceWarmup": 60}})


def _tags(estate, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in estate.describe(name).get("Tags", [])}


@pytest.fixture
def rolled_back(aws, estate, images, function):
    """web's refresh toward images.new, started by the function, then rolled back."""
    estate.group("web", capacity=4)
    estate.publish(images.new)
    first = function(ASG_CONFIGURATIONS=CONFIG).invoke({})
    aws.advance(90)
    estate.autoscaling.rollback_instance_refresh(AutoScalingGroupName="web")   # alarm/operator
    aws.advance(1800)
    assert estate.refreshes("web")[0]["Status"] == "RollbackSuccessful"
    return first["asgs"][0]["refresh_id"]


def test_a_rolled_back_refresh_is_not_restarted_toward_the_same_ami(
        estate, images, function, rolled_back, api_calls):
    report = function(ASG_CONFIGURATIONS=CONFIG).invoke({})   # the next delivery, same AMI

    entry = report["asgs"][0]
    assert entry["action"] == "skipped"
    assert entry["reason"].startswith(
        f"instance refresh {rolled_back} toward {images.new} ended RollbackSuccessful")
    assert "remove tag ami-upgrade:failed-ami from the group to retry" in entry["reason"]
    assert [r["InstanceRefreshId"] for r in estate.refreshes("web")] == [rolled_back]
    assert api_calls.of("StartInstanceRefresh") == []
    tags = _tags(estate, "web")
    assert tags["ami-upgrade:failed-ami"] == images.new
    assert "RollbackSuccessful" in tags["ami-upgrade:failure-reason"]

    again = function(ASG_CONFIGURATIONS=CONFIG).invoke({})   # remembered by the tag now

    assert again["asgs"][0]["action"] == "skipped"
    assert again["asgs"][0]["reason"].startswith(f"an earlier instance refresh onto {images.new}")


def test_removing_the_tag_retries_the_same_ami(estate, images, function, rolled_back):
    function(ASG_CONFIGURATIONS=CONFIG).invoke({})
    estate.autoscaling.delete_tags(Tags=[{"ResourceId": "web", "ResourceType":
                                          "auto-scaling-group", "Key": "ami-upgrade:failed-ami"}])

    report = function(ASG_CONFIGURATIONS=CONFIG).invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"


def test_a_newer_ami_is_refreshed_toward_and_clears_the_memory(
        aws, estate, images, function, rolled_back):
    function(ASG_CONFIGURATIONS=CONFIG).invoke({})
    estate.publish(images.newer)

    report = function(ASG_CONFIGURATIONS=CONFIG).invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert "ami-upgrade:failed-ami" not in _tags(estate, "web")
    aws.advance(1800)
    assert set(estate.instance_images("web").values()) == {images.newer}


def test_a_dry_run_reports_the_rollback_and_writes_nothing(
        estate, images, function, rolled_back, api_calls):
    report = function(ASG_CONFIGURATIONS=CONFIG, DRY_RUN="true").invoke({})

    assert report["asgs"][0]["action"] == "skipped"
    assert "RollbackSuccessful" in report["asgs"][0]["reason"]
    assert api_calls.mutating() == []


# The mutating calls of the run that records the memory, in order; a crash after each one
# leaves a state the next run finishes from.
RECORDING = ["CreateOrUpdateTags", "DeleteTags"]


def test_the_recording_run_makes_these_calls(aws, estate, function, rolled_back):
    calls = len(aws.faults.mutating_calls)

    function(ASG_CONFIGURATIONS=CONFIG).invoke({})

    assert [op for _, op in aws.faults.mutating_calls[calls:]] == RECORDING


@pytest.mark.parametrize("n", range(1, len(RECORDING) + 1))
def test_a_crash_after_each_recording_call_converges(aws, estate, images, function,
                                                     rolled_back, n):
    from sandbox.faults import SimulatedCrash

    aws.faults.crash_after(n)
    with pytest.raises(SimulatedCrash):
        function(ASG_CONFIGURATIONS=CONFIG).invoke({})

    report = function(ASG_CONFIGURATIONS=CONFIG).invoke({})

    assert report["asgs"][0]["action"] == "skipped"
    assert _tags(estate, "web")["ami-upgrade:failed-ami"] == images.new
    assert [r["InstanceRefreshId"] for r in estate.refreshes("web")] == [rolled_back]
