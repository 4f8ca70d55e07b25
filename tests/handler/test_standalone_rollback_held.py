"""A rollback step the old instance needs, refused by AWS for good, is held for an operator.

Stopping the new instance, detaching a volume from it, attaching a volume back and
starting the old instance cannot be left out of a rollback. When AWS refuses one with a
permanent error, the engine records the hold on the old instance
(``ami-upgrade:operator-hold``: what to do, then AWS's words), reports the instance
``failed`` with that, makes no further call for it, and lets the follow-up rule be
disabled when nothing else is in flight. Once an operator fixed the cause and removed
the tag, the next run finishes the rollback, and a later AMI moves the instance.
"""

from __future__ import annotations

import pytest
from standalone_estate import (
    PARAMETER,
    entry,
    function,
    newer_ami_takes_the_volumes,
    published_estate,
)

from sandbox import follow_up

HOLD = "ami-upgrade:operator-hold"


@pytest.fixture
def estate(aws):
    return published_estate()


def _held_reason(old: str, hold: str) -> str:
    return (f"rollback held for an operator: {hold}; then remove tag {HOLD} from {old}: the "
            "next run (a direct invocation, the scheduled reconcile or a new AMI) resumes "
            "the rollback from its progress tags; until then it is not retried")


def _refuse_the_old_ones_start(aws, old: str) -> None:
    """The launch is refused (so the relaunch rolls back), then so is the old one's start."""
    aws.faults.fail("RunInstances", "Unsupported", "not here")
    aws.faults.fail("StartInstances", "UnauthorizedOperation", "denied by an SCP",
                    times=None, when=lambda p: old in str(p))


def test_a_start_of_the_old_instance_refused_for_good_is_held_for_an_operator(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    follow_up.deploy(fn, PARAMETER)
    _refuse_the_old_ones_start(aws, old)

    report = fn.invoke({})

    hold = (f"start {old} once the cause is fixed ('start the old instance' was refused: "
            "StartInstances failed: UnauthorizedOperation: denied by an SCP)")
    final = entry(report, old)
    assert (final["action"], final["reason"]) == ("failed", _held_reason(old, hold))
    assert "next_run" not in final
    assert estate.tags(old)[HOLD] == hold
    assert estate.data_volumes(old) == volumes         # attached back, the start left
    assert estate.describe(old)["State"]["Name"] == "stopped"
    assert follow_up.state(fn) == "DISABLED"


def test_a_held_rollback_makes_no_call_until_the_hold_is_removed(aws, estate):
    old = estate.launch("app")
    fn = function(aws)
    follow_up.deploy(fn, PARAMETER)
    _refuse_the_old_ones_start(aws, old)
    fn.invoke({})
    hold = estate.tags(old)[HOLD]
    before = len(aws.faults.mutating_calls)

    report = fn.invoke({})

    final = entry(report, old)
    assert (final["action"], final["reason"]) == ("failed", _held_reason(old, hold))
    assert aws.faults.mutating_calls[before:] == []
    assert follow_up.state(fn) == "DISABLED"


def test_an_attach_back_refused_for_good_names_the_volume_and_its_device(aws, estate):
    old = estate.launch("app", volumes=1)
    (volume,) = estate.data_volumes(old).values()
    aws.faults.fail("RunInstances", "Unsupported", "not here")
    aws.faults.fail("AttachVolume", "IncorrectState", "key disabled", times=None,
                    when=lambda p: p.get("InstanceId") == old)

    report = function(aws).invoke({})

    final = entry(report, old)
    assert final["action"] == "failed"
    assert final["reason"].startswith(
        f"rollback held for an operator: attach {volume} to {old} at /dev/sdf once the cause "
        "is fixed ('attach "), final
    assert estate.tags(old)[HOLD].startswith(f"attach {volume} to {old} at /dev/sdf")


def test_once_the_operator_removes_the_hold_the_rollback_ends_and_a_newer_ami_moves_it(
        aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    _refuse_the_old_ones_start(aws, old)
    fn.invoke({})
    aws.faults.clear()                                   # the operator fixed the cause ...
    estate.ec2.delete_tags(Resources=[old], Tags=[{"Key": HOLD}])   # ... and cleared it

    report = fn.invoke({})

    assert entry(report, old)["action"] == "failed"
    assert entry(report, old)["code"] == "rolled_back", entry(report, old)
    assert estate.describe(old)["State"]["Name"] == "running"
    assert estate.data_volumes(old) == volumes
    assert estate.tags(old)["ami-upgrade:failed-ami"] == estate.new_ami
    newer_ami_takes_the_volumes(estate, fn, volumes)


def test_a_detach_from_the_new_instance_refused_for_good_names_both(aws, estate):
    """The new instance failed its status checks; moving a volume off it is refused."""
    old = estate.launch("app", volumes=1)
    (volume,) = estate.data_volumes(old).values()
    aws.faults.status_checks("impaired", after_seconds=30, image_id=estate.new_ami)
    aws.faults.fail("DetachVolume", "UnauthorizedOperation", "denied", times=None,
                    when=lambda p: p.get("InstanceId") not in (None, old))

    report = function(aws).invoke({})

    final = entry(report, old)
    new = final["new_instance_id"]
    assert (final["action"], final["reason"]) == ("failed", _held_reason(
        old, f"detach {volume} from {new} once the cause is fixed ('detach {volume} from the "
             "new instance' was refused: DetachVolume failed: UnauthorizedOperation: denied)"))
    assert estate.data_volumes(new) == {"/dev/sdf": volume}
