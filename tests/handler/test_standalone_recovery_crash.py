"""Issue 13: crash and fault tables for the paths it added.

* a run whose AMI was withdrawn (deregistered) mid-flight rolls the replacement back
  through the recovery path: its calls, pinned, and a crash after each converges;
* a transient error on the launch is retried (a ``retry`` tag, then the launch): its
  calls, pinned, and a crash after each converges to the replacement;
* a transient error on the rollback's ``StartInstances``: the same.
"""

from __future__ import annotations

import pytest
from standalone_estate import build_estate, crash_then_converge, function, set_parameter
from test_standalone_crash import (
    CLEAN_REPLACEMENT,
    _assert_replaced,
    _assert_rolled_back,
    _calls_of,
)

from sandbox.faults import SimulatedCrash

DETACHED = CLEAN_REPLACEMENT.index("CreateTags", 4)   # stopped, both volumes detached

RECOVERY_ROLLBACK = [              # the run fails (AMI gone); the work in flight goes back
    "CreateTags",                  # record the rollback
    "AttachVolume", "AttachVolume",
    "ModifyInstanceAttribute",     # DeleteOnTermination of /dev/sdf restored
    "StartInstances",
    "CreateTags",                  # failed-ami and the reason
    "DeleteTags",
]
TRANSIENT_LAUNCH = [
    *CLEAN_REPLACEMENT[:7],
    "CreateTags",                  # ami-upgrade:retry: the launch again in 30 s
    *CLEAN_REPLACEMENT[7:],
]
TRANSIENT_ROLLBACK_START = [
    *CLEAN_REPLACEMENT[:7],
    "CreateTags",                  # RunInstances refused for good: record the rollback
    "AttachVolume", "AttachVolume", "ModifyInstanceAttribute",
    "CreateTags",                  # StartInstances: no capacity; retry in 30 s
    "StartInstances",
    "CreateTags", "DeleteTags",
]


def _estate(aws):
    estate = build_estate()
    old = estate.launch("app")
    estate.ec2.modify_instance_attribute(InstanceId=old, SourceDestCheck={"Value": False})
    estate.ec2.modify_instance_attribute(InstanceId=old, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    set_parameter(estate.new_ami)
    return estate, old, estate.data_volumes(old)


def _withdrawn_midway(aws, estate, fn) -> None:
    aws.faults.crash_after(DETACHED)
    with pytest.raises(SimulatedCrash):
        fn.invoke({})
    estate.ec2.deregister_image(ImageId=estate.new_ami)


def test_a_withdrawn_ami_rolls_back_with_exactly_these_calls(aws):
    estate, old, volumes = _estate(aws)
    fn = function(aws)
    _withdrawn_midway(aws, estate, fn)

    calls = _calls_of(aws, lambda: fn.invoke({}))

    assert calls == RECOVERY_ROLLBACK
    _assert_rolled_back(estate, old, volumes)


@pytest.mark.parametrize("n", range(1, len(RECOVERY_ROLLBACK) + 1))
def test_crash_after_each_call_of_a_recovery_rollback_converges(aws, n):
    estate, old, volumes = _estate(aws)
    fn = function(aws)
    _withdrawn_midway(aws, estate, fn)
    crash_then_converge(aws, fn, n)

    _assert_rolled_back(estate, old, volumes)


def _transient_launch(aws):
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", times=1)


def _transient_rollback_start(aws):
    aws.faults.fail("RunInstances", "Unsupported", times=None)
    aws.faults.fail("StartInstances", "InsufficientInstanceCapacity", times=1)


TABLES = {"launch": (_transient_launch, TRANSIENT_LAUNCH, _assert_replaced),
          "rollback-start": (_transient_rollback_start, TRANSIENT_ROLLBACK_START,
                             _assert_rolled_back)}


@pytest.mark.parametrize("fault", sorted(TABLES))
def test_a_transient_fault_makes_exactly_these_calls(aws, fault):
    estate, old, volumes = _estate(aws)
    inject, expected, converged = TABLES[fault]
    inject(aws)
    fn = function(aws)

    calls = _calls_of(aws, lambda: fn.invoke({}))

    assert calls == expected
    converged(estate, old, volumes)


@pytest.mark.parametrize(("fault", "n"), [(fault, n) for fault in sorted(TABLES)
                                          for n in range(1, len(TABLES[fault][1]) + 1)])
def test_crash_after_each_call_under_a_transient_fault_converges(aws, fault, n):
    estate, old, volumes = _estate(aws)
    inject, _, converged = TABLES[fault]
    inject(aws)
    fn = function(aws)
    crash_then_converge(aws, fn, n)

    converged(estate, old, volumes)
