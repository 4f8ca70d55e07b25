"""When the new instance cannot be launched or made healthy, the old one gets everything back."""

from __future__ import annotations

import pytest
from standalone_estate import build_estate, entry, function, set_parameter


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _assert_old_restored(estate, old: str, volumes: dict[str, str]) -> None:
    described = estate.describe(old)
    assert described["State"]["Name"] == "running"
    assert described["ImageId"] == estate.old_ami
    assert estate.data_volumes(old) == volumes
    assert [i["InstanceId"] for i in estate.live_instances()] == [old]
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags["ami-upgrade:failed-ami"] == estate.new_ami
    for volume_id in volumes.values():
        assert not [t for t in estate.volume(volume_id).get("Tags", [])
                    if t["Key"].startswith("ami-upgrade:")]


def _launched(aws, old: str) -> list[str]:
    """The ClientTokens of the successful launches that replace ``old``."""
    return [r["ClientToken"] for r in aws.faults.requests("RunInstances")
            if r.get("ClientToken", "").startswith(f"ami-upgrade-{old}-")]


def test_launch_failure_rolls_back_with_aws_reason(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.fail("RunInstances", "Unsupported",   # permanent (capacity is transient)
                    "The requested configuration is currently not supported.")

    report = function(aws).invoke({})

    assert report["status"] == "failed"
    assert entry(report, old) == {
        "id": old, "action": "failed", "code": "rolled_back", "volumes": sorted(volumes.values()),
        "reason": "rolled back: RunInstances failed: Unsupported: The requested "
                  "configuration is currently not supported."}
    _assert_old_restored(estate, old, volumes)


def test_attach_failure_rolls_back_and_terminates_the_new_instance(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.fail("AttachVolume", "VolumeInUse", "vol is already attached",
                    when=lambda p: p["Device"] == "/dev/sdg" and p["InstanceId"] != old)

    report = function(aws).invoke({})

    new = entry(report, old)["new_instance_id"]
    assert entry(report, old)["reason"] == (
        "rolled back: AttachVolume failed: VolumeInUse: vol is already attached")
    assert estate.describe(new)["State"]["Name"] == "terminated"
    _assert_old_restored(estate, old, volumes)
    assert aws.faults.count("StopInstances") >= 2    # the new one stopped before detaching


def test_impaired_status_checks_roll_back(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.status_checks("impaired", after_seconds=30, image_id=estate.new_ami)

    report = function(aws).invoke({})

    new = entry(report, old)["new_instance_id"]
    assert entry(report, old)["reason"] == (
        f"rolled back: status checks of {new} failed: instance impaired, system ok")
    assert estate.describe(new)["State"]["Name"] == "terminated"
    _assert_old_restored(estate, old, volumes)


def test_status_checks_that_never_pass_roll_back_after_the_timeout(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.status_checks("never", image_id=estate.new_ami)
    started = aws.clock.monotonic()

    report = function(aws, health_check_timeout_seconds=60).invoke({})

    new = entry(report, old)["new_instance_id"]
    assert entry(report, old)["reason"] == (
        f"rolled back: status checks of {new} did not pass within 60 s (instance "
        "initializing, system initializing)")
    assert aws.clock.monotonic() - started == 60
    _assert_old_restored(estate, old, volumes)


def test_a_failed_ami_is_not_retried_but_a_newer_one_is(aws, estate):
    old = estate.launch("app")
    aws.faults.fail("RunInstances", "Unsupported", "not supported")
    fn = function(aws)
    fn.invoke({})
    calls = len(aws.faults.mutating_calls)

    again = fn.invoke({})

    assert aws.faults.mutating_calls[calls:] == []
    assert entry(again, old)["action"] == "skipped"
    assert entry(again, old)["reason"] == (
        f"an earlier replacement onto {estate.new_ami} failed and was rolled back (RunInstances "
        "failed: Unsupported: not supported); remove tag ami-upgrade:failed-ami to retry")
    set_parameter(estate.newer_ami)
    newer = fn.invoke({})
    assert entry(newer, old)["action"] == "replaced"
    (token,) = _launched(aws, old)
    assert token.startswith(f"ami-upgrade-{old}-2-")   # attempt 2: a new launch token
