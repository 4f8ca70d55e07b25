"""Work in flight is found by its tags and finished: newer AMIs, scope changes, deadlines."""

from __future__ import annotations

import pytest
from standalone_estate import build_estate, entry, function, set_parameter

from sandbox.faults import SimulatedCrash

STOP, RUN = 4, 8   # positions of StopInstances and RunInstances in a clean replacement


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _crash_after(aws, fn, n: int) -> None:
    aws.faults.crash_after(n)
    with pytest.raises(SimulatedCrash):
        fn.invoke({})


def test_newer_ami_after_launch_finishes_then_moves_on(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    _crash_after(aws, fn, RUN)
    stranded = estate.replacement_of(old)["InstanceId"]
    set_parameter(estate.newer_ami)

    report = fn.invoke({})

    assert entry(report, old)["action"] == "replaced"
    assert entry(report, old)["new_instance_id"] == stranded
    assert entry(report, old)["reason"] == f"replaced by {stranded} on {estate.new_ami}"
    assert report["continuation"] == 1
    (follow_up,) = fn.drain()
    assert entry(follow_up, stranded)["action"] == "replaced"
    final = estate.replacement_of(old)
    assert final["ImageId"] == estate.newer_ami
    assert estate.data_volumes(final["InstanceId"]) == volumes
    assert estate.describe(stranded)["State"]["Name"] == "terminated"


def test_newer_ami_before_launch_is_launched_directly(aws, estate):
    old = estate.launch("app")
    fn = function(aws)
    _crash_after(aws, fn, STOP)
    launches = aws.faults.count("RunInstances")
    set_parameter(estate.newer_ami)

    report = fn.invoke({})

    assert entry(report, old)["action"] == "replaced"
    assert estate.replacement_of(old)["ImageId"] == estate.newer_ami
    assert aws.faults.count("RunInstances") - launches == 1
    assert "continuation" not in report


def test_in_flight_replacement_no_longer_in_scope_is_reported_and_not_touched(aws, estate):
    old = estate.launch("app")
    fn = function(aws)
    _crash_after(aws, fn, STOP + 1)          # stopped, one volume detached
    estate.ec2.delete_tags(Resources=[old], Tags=[{"Key": "ami-upgrade:parameter"}])
    calls = len(aws.faults.mutating_calls)

    report = fn.invoke({})

    assert entry(report, old)["reason"].startswith("not tagged ami-upgrade:parameter")
    assert "never acted on, whatever its tags say" in entry(report, old)["reason"]
    assert aws.faults.mutating_calls[calls:] == []


def test_deadline_mid_fleet_continues_in_the_next_invocation(aws, estate):
    instances = sorted(estate.launch(f"app-{n}", volumes=1) for n in range(3))
    aws.faults.status_checks("ok", after_seconds=150)
    fn = function(aws, timeout_seconds=400, parallelism=1)

    first = fn.invoke({})

    assert [entry(first, i)["action"] for i in instances] == [
        "replaced", "in_progress", "in_progress"]
    assert entry(first, instances[1])["reason"] == (
        "not started yet (deadline reached); continues in the next invocation")
    assert first["continuation"] == 1
    reports = fn.drain()
    assert [r.get("continuation") for r in reports] == [2, None]
    assert [[e["action"] for e in r["instances"] if e["action"] != "skipped"]
            for r in reports] == [["replaced", "in_progress"], ["replaced"]]
    for instance in instances:
        assert estate.replacement_of(instance)["ImageId"] == estate.new_ami


def test_health_wait_spans_invocations_until_its_timeout(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.status_checks("never", image_id=estate.new_ami)
    fn = function(aws, timeout_seconds=150, health_check_timeout_seconds=120)

    first = fn.invoke({})

    assert entry(first, old)["action"] == "in_progress"
    assert entry(first, old)["reason"].startswith("in progress (status checks of ")
    tags = {t["Key"]: t["Value"] for t in estate.describe(old)["Tags"]}
    # 150 s, margin 37.5 s (a quarter): status checks polled every 30 s, the last at 90 s
    assert tags["ami-upgrade:health-waited"] == "90"
    (second,) = fn.drain()
    assert entry(second, old)["action"] == "failed"
    assert "did not pass within 120 s" in entry(second, old)["reason"]
    assert estate.data_volumes(old) == volumes
    assert estate.describe(old)["State"]["Name"] == "running"


def test_volumes_of_an_old_instance_gone_mid_flight_stay_tagged_with_their_home(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    _crash_after(aws, fn, STOP + 2)          # both volumes detached
    estate.ec2.terminate_instances(InstanceIds=[old])   # an operator, mid-flight

    report = fn.invoke({})

    assert entry(report, old)["action"] == "failed"
    assert entry(report, old)["reason"] == (
        f"old instance {old} is gone and no replacement exists; volumes "
        f"{volumes['/dev/sdf']}, {volumes['/dev/sdg']} are kept, tagged with their home")
    for device, volume_id in volumes.items():
        volume = estate.volume(volume_id)
        tags = {t["Key"]: t["Value"] for t in volume["Tags"]}
        assert volume["State"] == "available"
        assert (tags["ami-upgrade:home-instance"], tags["ami-upgrade:home-device"]) == (
            old, device)


def test_in_flight_tags_without_an_intent_touch_nothing(aws, estate):
    victim = estate.launch("victim", tags={"ami-upgrade:exclude": "true"})
    estate.launch("impostor", volumes=0, in_scope=False, tags={
        "ami-upgrade:in-flight": "/ami/linux/test", "ami-upgrade:replaces": victim})
    before = estate.describe(victim)
    calls = len(aws.faults.mutating_calls)

    report = function(aws).invoke({})

    assert entry(report, victim)["action"] == "skipped"
    assert entry(report, victim)["reason"] == "excluded by tag ami-upgrade:exclude=true"
    assert aws.faults.mutating_calls[calls:] == []
    assert estate.describe(victim) == before


def test_a_new_instance_that_dies_after_launch_is_rolled_back(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    _crash_after(aws, fn, RUN)
    dead = estate.replacement_of(old)["InstanceId"]
    estate.ec2.terminate_instances(InstanceIds=[dead])     # as if it failed to boot
    launches = aws.faults.count("RunInstances")

    report = fn.invoke({})

    assert entry(report, old)["action"] == "failed"
    assert entry(report, old)["reason"].startswith(f"rolled back: new instance {dead} is "
                                                   "terminated")
    assert aws.faults.count("RunInstances") == launches
    assert estate.data_volumes(old) == volumes
    assert estate.describe(old)["State"]["Name"] == "running"
