"""Groups under the invocation's deadline: reads stop at it as starts do, what is left is
``deferred`` to a continuation (the run ``in_progress``, never ``succeeded``), and a
continuation does not read again the groups it knows started."""

from __future__ import annotations

import json

import boto3
import pytest

TIMEOUT = 900.0
LONG_REFRESHES = json.dumps({"default": {"InstanceWarmup": 3600}})   # still running later


@pytest.fixture
def slow(aws, monkeypatch):
    """``slow(operation, seconds)``: each call of ``operation`` by the function's clients
    takes ``seconds`` of emulated time (the function's own clients only, as
    ``api_calls`` records them)."""
    delays: dict[str, float] = {}
    base = boto3.session.Session

    def wait(model, **_: object) -> None:
        if model.name in delays:
            aws.advance(delays[model.name])

    class SlowSession(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.events.register("before-call", wait)

    monkeypatch.setattr(boto3.session, "Session", SlowSession)
    return delays.__setitem__


def _groups(estate, count: int) -> list[str]:
    return [estate.group(f"g{n:02}", version="$Latest", capacity=1) for n in range(count)]


def test_running_out_of_time_while_reading_defers_the_rest_to_a_continuation(
        aws, estate, images, function, slow, api_calls):
    """Thirty groups whose refreshes the engine recorded (an earlier run started them): a
    new run reads each one (25 s apiece here) until the deadline, then reports the rest as
    deferred, sends a continuation and is not ``succeeded``."""
    names = _groups(estate, 30)
    estate.publish(images.new)
    ours = function(timeout_seconds=TIMEOUT, ASG_CONFIGURATIONS=LONG_REFRESHES)
    ours.invoke({})
    slow("DescribeInstanceRefreshes", 25.0)
    api_calls.clear()
    begin = aws.clock.monotonic()

    report = ours.invoke({})

    actions = {e["name"]: e["action"] for e in report["asgs"]}
    read = len(api_calls.of("DescribeInstanceRefreshes"))
    assert 0 < read < len(names)
    assert sorted(actions.values()) == ["deferred"] * (30 - read) + ["skipped"] * read
    assert report["status"] == "in_progress"
    assert report["pending"] == {"asgs": 30 - read, "instances": 0}
    assert report["continuation"] == 1
    assert aws.clock.monotonic() - begin <= 0.8 * TIMEOUT


def test_a_continuation_does_not_read_the_groups_it_knows_started(
        aws, estate, images, function, slow, api_calls, one_at_a_time):
    """Starting takes 100 s a group here: the first invocation starts what fits, the
    continuation starts the rest without reading any group's refresh."""
    names = _groups(estate, 10)
    estate.publish(images.new)
    slow("StartInstanceRefresh", 100.0)
    ours = function(timeout_seconds=TIMEOUT)

    first = ours.invoke({})
    api_calls.clear()
    later = ours.drain()

    started = [e["name"] for e in first["asgs"] if e["action"] == "refresh_started"]
    assert 0 < len(started) < len(names)
    assert first["status"] == "in_progress"
    assert first["pending"] == {"asgs": len(names) - len(started), "instances": 0}
    assert api_calls.of("DescribeInstanceRefreshes") == []
    assert [p["AutoScalingGroupName"] for p in api_calls.of("StartInstanceRefresh")] == [
        n for n in names if n not in started]
    assert later[-1]["status"] == "succeeded"
    for name in names:
        assert len(estate.refreshes(name)) == 1


def test_a_continuation_reports_the_groups_started_earlier_as_done(
        aws, estate, images, function, slow, one_at_a_time):
    names = _groups(estate, 10)
    estate.publish(images.new)
    slow("StartInstanceRefresh", 100.0)
    ours = function(timeout_seconds=TIMEOUT)

    first = ours.invoke({})
    last = ours.drain()[-1]

    started = {e["name"]: e["refresh_id"] for e in first["asgs"]
               if e["action"] == "refresh_started"}
    entries = {e["name"]: e for e in last["asgs"]}
    for name, refresh_id in started.items():
        assert entries[name]["action"] == "skipped"
        assert entries[name]["reason"] == (
            f"instance refresh {refresh_id} toward {images.new} was started by an earlier "
            "invocation of this rollout (recorded on the group)")
    assert {entries[n]["action"] for n in names if n not in started} == {"refresh_started"}


WAIT = json.dumps({"default": {"OnRefreshInProgress": "wait"}})   # its refresh is read first
SHORT = 60.0


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_60_second_function_reads_and_starts_a_lone_group(
        aws, estate, images, function, slow, api_calls, dry_run):
    """A group whose latest refresh is read before deciding (OnRefreshInProgress wait), in
    a 60 s function (45 s of work) whose reads take 17 s: 28 s are left when the group
    starts, less than a 15-minute function keeps for a start (30 s), and the start fits;
    nothing is deferred."""
    (name,) = _groups(estate, 1)
    estate.publish(images.new)
    for operation, seconds in (("DescribeInstanceRefreshes", 2.0),
                               ("DescribeLaunchTemplateVersions", 10.0),
                               ("DescribeImages", 5.0), ("CreateLaunchTemplateVersion", 2.0),
                               ("StartInstanceRefresh", 2.0)):
        slow(operation, seconds)
    begin = aws.clock.monotonic()

    report = function(timeout_seconds=SHORT, ASG_CONFIGURATIONS=WAIT).invoke(
        {"dry_run": True} if dry_run else {})

    assert [(e["name"], e["action"]) for e in report["asgs"]] == [
        (name, "planned" if dry_run else "refresh_started")]
    assert report["status"] == "succeeded"
    assert "pending" not in report and "continuation" not in report
    assert len(api_calls.of("DescribeInstanceRefreshes")) == 1
    assert len(estate.refreshes(name)) == (0 if dry_run else 1)
    assert aws.clock.monotonic() - begin <= 0.8 * SHORT


def test_a_60_second_function_reads_a_recorded_group_and_leaves_its_refresh_running(
        aws, estate, images, function, slow, api_calls):
    """The follow-up's invocation (attempt 0) of a 60 s function reads the group whose
    refresh it recorded toward this AMI: still running, left alone, nothing deferred."""
    (name,) = _groups(estate, 1)
    estate.publish(images.new)
    ours = function(timeout_seconds=SHORT, ASG_CONFIGURATIONS=LONG_REFRESHES)
    started = ours.invoke({})["asgs"][0]["refresh_id"]
    slow("DescribeInstanceRefreshes", 2.0)
    api_calls.clear()

    report = ours.invoke({})

    (entry,) = report["asgs"]
    assert (entry["name"], entry["action"]) == (name, "skipped")
    assert entry["reason"] == (f"instance refresh {started} (InProgress) is already in "
                               f"progress toward {images.new}")
    assert report["status"] == "succeeded"
    assert "pending" not in report
    assert [c["AutoScalingGroupName"] for c in api_calls.of("DescribeInstanceRefreshes")] == [
        name]
