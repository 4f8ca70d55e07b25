"""Crash at every point of a replacement whose old instance holds an Elastic IP.

The role moves an address only while it carries the engine's in-flight tag
(``MoveElasticIpsOntoInFlight`` conditions ``elastic-ip/*`` on it): the relaunch writes the
tag on the old instance's addresses in the intent's own CreateTags and removes it with the
other progress tags. The embedded AWS does not evaluate IAM, so each test installs the
refusal IAM would answer (``UnauthorizedOperation`` for an address not so tagged): a
replacement that moved an unmarked address would roll back, and the tables below would
fail. As in ``test_standalone_crash.py``, the tables are every N from 1 to the number of
mutating calls, pinned by the clean runs.
"""

from __future__ import annotations

import pytest
from standalone_estate import (
    PARAMETER,
    build_estate,
    crash_then_converge,
    function,
    replayed,
    set_parameter,
)

from handler.aws import tag_map
from handler.tags import IN_FLIGHT
from sandbox.faults import SimulatedCrash

CLEAN_REPLACEMENT = [
    "CreateTags",                # intent on the old instance and on its Elastic IP
    "CreateTags",                # home of /dev/sdf
    "StopInstances",
    "DetachVolume",
    "CreateTags",                # the launch token
    "RunInstances",
    "AttachVolume",
    "AssociateAddress",          # the Elastic IP onto the new instance (marked in flight)
    "TerminateInstances",
    "DeleteTags",                # progress tags off the new instance, the volume, the address
]
ROLLED_BACK_HEALTH = [           # the new instance's status checks fail: the address stays
    *CLEAN_REPLACEMENT[:7],
    "CreateTags",                # record the rollback
    "StopInstances", "DetachVolume", "AttachVolume", "StartInstances", "TerminateInstances",
    "CreateTags",                # failed-ami and the reason
    "DeleteTags",                # the intent's attempt off the address (it stays on the old one)
    "DeleteTags",                # progress tags off the old instance, the volume, the address
]
ROLLED_BACK_LAUNCH = [
    *CLEAN_REPLACEMENT[:5],
    "CreateTags",                # RunInstances failed: record the rollback
    "AttachVolume", "StartInstances", "CreateTags", "DeleteTags", "DeleteTags",
]


def _build():
    estate = build_estate()
    old = estate.launch("app", volumes=1)
    allocation = estate.ec2.allocate_address(Domain="vpc")["AllocationId"]
    estate.ec2.associate_address(AllocationId=allocation, InstanceId=old)
    set_parameter(estate.new_ami)
    return estate, old, allocation


_replay, aws, built = replayed(_build)


def _role_moves_only_addresses_in_flight(aws, estate) -> None:
    """IAM's answer to the role's AssociateAddress of an address not marked in flight."""
    def unmarked(params: dict) -> bool:
        (address,) = estate.ec2.describe_addresses(
            AllocationIds=[params["AllocationId"]])["Addresses"]
        return tag_map(address.get("Tags")).get(IN_FLIGHT) != PARAMETER

    aws.faults.fail("AssociateAddress", "UnauthorizedOperation", times=None, when=unmarked)


def _address(estate, allocation: str) -> dict:
    (address,) = estate.ec2.describe_addresses(AllocationIds=[allocation])["Addresses"]
    return address


def _engine_tags(address: dict) -> list[str]:
    return sorted(k for k in tag_map(address.get("Tags")) if k.startswith("ami-upgrade:"))


def _calls_of(aws, invoke) -> list[str]:
    before = len(aws.faults.mutating_calls)
    invoke()
    return [op for _, op in aws.faults.mutating_calls[before:]]


def _assert_replaced(estate, old: str, allocation: str) -> None:
    new = estate.replacement_of(old)
    assert estate.describe(old)["State"]["Name"] == "terminated"
    address = _address(estate, allocation)
    assert address["InstanceId"] == new["InstanceId"]
    assert _engine_tags(address) == []


def _assert_rolled_back(estate, old: str, allocation: str) -> None:
    assert estate.describe(old)["State"]["Name"] == "running"
    assert [i["InstanceId"] for i in estate.live_instances()] == [old]
    address = _address(estate, allocation)
    assert address["InstanceId"] == old
    assert _engine_tags(address) == []


def test_the_address_is_marked_in_the_intents_own_call(aws, built):
    estate, old, allocation = built
    _role_moves_only_addresses_in_flight(aws, estate)
    tags_before = len(aws.faults.requests("CreateTags"))
    moves_before = len(aws.faults.requests("AssociateAddress"))

    function(aws).invoke({})

    intent = aws.faults.requests("CreateTags")[tags_before]
    assert intent["Resources"] == [old, allocation]
    assert [t["Key"] for t in intent["Tags"]] == [
        "ami-upgrade:in-flight", "ami-upgrade:target-ami", "ami-upgrade:volumes",
        "ami-upgrade:attempt"]
    assert aws.faults.requests("AssociateAddress")[moves_before:] == [
        {"AllocationId": allocation, "InstanceId": estate.replacement_of(old)["InstanceId"],
         "AllowReassociation": True}]


def test_an_address_whose_mark_was_removed_is_marked_again_before_it_moves(aws, built):
    """The intent is written, then the address loses its in-flight tag (by hand, or it was
    associated after the intent): it is marked again, alone, before it moves."""
    estate, old, allocation = built
    _role_moves_only_addresses_in_flight(aws, estate)
    aws.faults.crash_after(1)
    with pytest.raises(SimulatedCrash):
        function(aws).invoke({})
    estate.ec2.delete_tags(Resources=[allocation], Tags=[{"Key": IN_FLIGHT}])
    tags_before = len(aws.faults.requests("CreateTags"))

    function(aws).invoke({})

    _assert_replaced(estate, old, allocation)
    assert [r for r in aws.faults.requests("CreateTags")[tags_before:]
            if r["Resources"] == [allocation]] == [
        {"Resources": [allocation], "Tags": [{"Key": IN_FLIGHT, "Value": PARAMETER}]}]


def test_clean_replacement_makes_exactly_these_calls(aws, built):
    estate, old, allocation = built
    _role_moves_only_addresses_in_flight(aws, estate)

    calls = _calls_of(aws, lambda: function(aws).invoke({}))

    assert calls == CLEAN_REPLACEMENT
    _assert_replaced(estate, old, allocation)


@pytest.mark.parametrize("n", range(1, len(CLEAN_REPLACEMENT) + 1))
def test_crash_after_each_call_of_a_replacement_converges(aws, built, n):
    estate, old, allocation = built
    _role_moves_only_addresses_in_flight(aws, estate)

    crash_then_converge(aws, function(aws), n)

    _assert_replaced(estate, old, allocation)


def _fail_health(aws, estate):
    aws.faults.status_checks("impaired", image_id=estate.new_ami)


def _fail_launch(aws, estate):
    aws.faults.fail("RunInstances", "Unsupported", times=None)


ROLLBACKS = {"health": (_fail_health, ROLLED_BACK_HEALTH),
             "launch": (_fail_launch, ROLLED_BACK_LAUNCH)}


@pytest.mark.parametrize("failure", sorted(ROLLBACKS))
def test_each_rollback_makes_exactly_these_calls(aws, built, failure):
    estate, old, allocation = built
    _role_moves_only_addresses_in_flight(aws, estate)
    inject, expected = ROLLBACKS[failure]
    inject(aws, estate)

    calls = _calls_of(aws, lambda: function(aws).invoke({}))

    assert calls == expected
    _assert_rolled_back(estate, old, allocation)


@pytest.mark.parametrize(("failure", "n"), [(failure, n) for failure in sorted(ROLLBACKS)
                                            for n in range(1, len(ROLLBACKS[failure][1]) + 1)])
def test_crash_after_each_call_of_a_rollback_converges(aws, built, failure, n):
    estate, old, allocation = built
    _role_moves_only_addresses_in_flight(aws, estate)
    ROLLBACKS[failure][0](aws, estate)

    crash_then_converge(aws, function(aws), n)

    _assert_rolled_back(estate, old, allocation)
