"""A rollback can finish when AWS refuses one of its steps for good: what the engine set
itself (termination protection copied onto the new instance) is undone first; a refused
step the old instance does not need is left to an operator, named with what to do; the
instance is not held in flight, so a later AMI moves it. Each failed before the change
(the rollback stopped at the step and was retried every 5 minutes without end)."""

from __future__ import annotations

import pytest
from standalone_estate import entry, function, newer_ami_takes_the_volumes, published_estate


@pytest.fixture
def estate(aws):
    return published_estate()


def _progress(tags: dict[str, str]) -> set[str]:
    """The progress tags (what keeps a replacement in flight); the scope tag, the
    attempt count and the failure record stay after a rollback."""
    return {k for k in tags if k.startswith("ami-upgrade:")} - {
        "ami-upgrade:parameter", "ami-upgrade:attempt", "ami-upgrade:failed-ami",
        "ami-upgrade:failure-reason"}


def _assert_back_on_old(estate, old: str, volumes: dict[str, str]) -> None:
    assert estate.describe(old)["State"]["Name"] == "running"
    assert estate.data_volumes(old) == volumes
    assert _progress(estate.tags(old)) == set()
    for volume_id in volumes.values():
        assert not [t for t in estate.volume(volume_id).get("Tags", [])
                    if t["Key"].startswith("ami-upgrade:")]


def test_termination_protection_copied_to_the_new_instance_is_undone_by_the_rollback(
        aws, estate):
    """keep_old_instance relaunches a protected instance; its replacement carries the
    protection, so terminating it in the rollback needs the protection off first."""
    old = estate.launch("app", DisableApiTermination=True)
    volumes = estate.data_volumes(old)
    aws.faults.status_checks("impaired", after_seconds=30, image_id=estate.new_ami)
    fn = function(aws, keep_old_instance=True)

    report = fn.invoke({})
    fn.drain()

    final = entry(fn.reports[-1], old)
    assert (final["action"], final["reason"]) == ("failed", (
        f"rolled back: status checks of {final['new_instance_id']} failed: instance impaired, "
        "system ok"))
    assert estate.describe(final["new_instance_id"])["State"]["Name"] == "terminated"
    _assert_back_on_old(estate, old, volumes)
    assert entry(report, old)["action"] == "failed"


def test_a_new_instance_aws_will_not_terminate_is_left_to_an_operator(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.status_checks("impaired", after_seconds=30, image_id=estate.new_ami)
    aws.faults.fail("TerminateInstances", "UnauthorizedOperation", "denied by an SCP",
                    times=None, when=lambda p: old not in str(p))
    fn = function(aws)

    report = fn.invoke({})

    final = entry(report, old)
    new = final["new_instance_id"]
    assert final["action"] == "failed"
    assert final["reason"].endswith(
        "; left to an operator: 'terminate the new instance' was refused (TerminateInstances "
        f"failed: UnauthorizedOperation: denied by an SCP): terminate {new} by hand (it holds "
        "none of the data volumes; turn off its termination protection first if it has one)")
    _assert_back_on_old(estate, old, volumes)
    assert estate.describe(new)["State"]["Name"] == "stopped"
    assert estate.data_volumes(new) == {}
    assert _progress(estate.tags(new)) == set()      # it no longer claims the old one


def test_after_a_step_left_to_an_operator_a_newer_ami_moves_the_instance(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.status_checks("impaired", after_seconds=30, image_id=estate.new_ami)
    aws.faults.fail("TerminateInstances", "UnauthorizedOperation", "denied", times=None,
                    when=lambda p: old not in str(p))
    fn = function(aws)
    fn.invoke({})
    fn.drain()
    aws.faults.clear()

    newer_ami_takes_the_volumes(estate, fn, volumes)
    assert estate.describe(old)["State"]["Name"] == "terminated"


def test_delete_on_termination_refused_on_the_old_instance_does_not_hold_the_rollback(
        aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    estate.ec2.modify_instance_attribute(InstanceId=old, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    aws.faults.status_checks("impaired", after_seconds=30, image_id=estate.new_ami)
    aws.faults.fail("ModifyInstanceAttribute", "UnauthorizedOperation", "denied", times=None,
                    when=lambda p: p.get("InstanceId") == old)
    fn = function(aws)

    report = fn.invoke({})

    final = entry(report, old)
    assert final["action"] == "failed"
    assert final["reason"].endswith(
        f"; left to an operator: 'restore DeleteOnTermination on {old}' was refused "
        "(ModifyInstanceAttribute failed: UnauthorizedOperation: denied): set "
        f"DeleteOnTermination on {old}'s data volumes by hand")
    assert estate.describe(final["new_instance_id"])["State"]["Name"] == "terminated"
    _assert_back_on_old(estate, old, volumes)
