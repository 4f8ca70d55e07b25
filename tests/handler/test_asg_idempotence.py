"""At-least-once, out-of-order delivery: one refresh per change, no second version, and
a stale event never moves a group back."""

import pytest

from sandbox.faults import SimulatedCrash


def _event(load_event, version: int) -> dict:
    event = load_event("cloudtrail-put-parameter")
    event["detail"]["responseElements"]["version"] = version
    return event


def test_duplicate_delivery_starts_one_refresh_and_writes_one_version(
        estate, images, function, load_event):
    estate.group("web")
    event = _event(load_event, estate.publish(images.new))
    ours = function()

    first = ours.invoke(event)
    second = ours.invoke(event)

    assert first["asgs"][0]["action"] == "refresh_started"
    assert second["asgs"][0] == {
        "name": "web", "action": "skipped", "code": "refresh_already_running",
        "reason": f"instance refresh {first['asgs'][0]['refresh_id']} (Pending) is already in "
                  f"progress toward {images.new}"}
    assert sorted(estate.versions(estate.template_id("web"))) == [1, 2]
    assert len(estate.refreshes("web")) == 1


def test_duplicate_delivery_after_the_refresh_finished_changes_nothing(
        aws, estate, images, function, load_event):
    estate.group("web")
    event = _event(load_event, estate.publish(images.new))
    ours = function()
    ours.invoke(event)
    aws.advance(600)

    again = ours.invoke(event)

    assert again["asgs"][0]["action"] == "skipped"
    assert again["asgs"][0]["reason"].startswith(f"already on {images.new}")
    assert len(estate.refreshes("web")) == 1


def test_an_older_event_arriving_last_changes_nothing(estate, images, function, load_event):
    estate.group("web")
    older = estate.publish(images.new)
    newer = estate.publish(images.newer)
    ours = function()
    ours.invoke(_event(load_event, newer))

    late = ours.invoke(_event(load_event, older))

    assert late["ami_id"] == images.newer
    assert late["asgs"][0]["action"] == "skipped"
    assert "already in progress toward " + images.newer in late["asgs"][0]["reason"]
    versions = estate.versions(estate.template_id("web"))
    assert sorted(versions) == [1, 2]
    assert versions[2]["ImageId"] == images.newer


def test_a_version_left_by_a_crashed_run_is_reused(estate, images, function):
    estate.group("web")
    template = estate.template_id("web")
    estate.add_version(template, ImageId=images.new)   # what a run that died here left
    estate.publish(images.new)

    report = function().invoke({})

    assert report["asgs"][0]["launch_template_version"] == "2"
    assert report["asgs"][0]["creates_version"] is False
    assert sorted(estate.versions(template)) == [1, 2]


def test_a_crash_after_writing_the_version_then_another_version_still_gets_the_same_one(
        aws, estate, images, function):
    """The ClientToken returns the version the crashed run wrote, not a copy of it."""
    estate.group("web")
    template = estate.template_id("web")
    estate.publish(images.new)
    ours = function()
    aws.faults.crash_after(1)      # the run dies right after CreateLaunchTemplateVersion
    with pytest.raises(SimulatedCrash):
        ours.invoke({})
    estate.add_version(template, InstanceType="t3.large")   # someone else's, now $Latest

    report = ours.invoke({})

    assert report["asgs"][0]["launch_template_version"] == "2"
    assert sorted(estate.versions(template)) == [1, 2, 3]
    assert estate.refreshes("web")[0]["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "2"


def test_a_refresh_started_between_planning_and_starting_is_detected(
        aws, estate, images, function):
    estate.group("web")
    estate.publish(images.new)
    aws.faults.fail("StartInstanceRefresh", "InstanceRefreshInProgress", times=1)

    report = function().invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert sorted(estate.versions(estate.template_id("web"))) == [1, 2]
    assert len(estate.refreshes("web")) == 1
