"""Crash at every point: an invocation killed after any mutating call loses nothing.

The table is every N from 1 to the number of mutating calls a clean replacement
makes; ``test_clean_replacement_makes_exactly_these_calls`` pins that number (and
the calls, in order), so the table cannot silently shrink when the engine changes.
The same for each kind of rollback: a failed launch, a volume that cannot be
attached to the new instance, and status checks that fail.
"""

from __future__ import annotations

import pytest
from standalone_estate import build_estate, crash_then_converge, function, replayed, set_parameter

from sandbox.faults import SimulatedCrash

CLEAN_REPLACEMENT = [
    "CreateTags",                # intent on the old instance
    "CreateTags",                # home of /dev/sdf
    "CreateTags",                # home of /dev/sdg
    "StopInstances",
    "DetachVolume",              # /dev/sdf
    "DetachVolume",              # /dev/sdg
    "CreateTags",                # the launch token (the AMI is fixed from here)
    "RunInstances",
    "ModifyInstanceAttribute",   # source/dest check off, as before
    "AttachVolume",              # /dev/sdf
    "AttachVolume",              # /dev/sdg
    "ModifyInstanceAttribute",   # DeleteOnTermination of /dev/sdf restored
    "TerminateInstances",
    "DeleteTags",                # progress tags off the new instance and the volumes
]
ROLLED_BACK_ON_NEW_INSTANCE = [   # /dev/sdg cannot be attached to the new instance
    *CLEAN_REPLACEMENT[:10],     # ... up to /dev/sdf attached to the new instance
    "CreateTags",                # record the rollback
    "StopInstances",             # the new instance, before taking its volume back
    "DetachVolume",              # /dev/sdf from the new instance
    "AttachVolume", "AttachVolume",   # both back on the old instance
    "ModifyInstanceAttribute",   # DeleteOnTermination of /dev/sdf restored on the old one
    "StartInstances",            # the old instance
    "TerminateInstances",        # the new instance, holding no volume
    "CreateTags",                # failed-ami and the reason
    "DeleteTags",
]
ROLLED_BACK_HEALTH = [           # the new instance's status checks fail
    *CLEAN_REPLACEMENT[:11],     # ... up to both volumes attached to the new instance
    "CreateTags", "StopInstances", "DetachVolume", "DetachVolume", "AttachVolume",
    "AttachVolume", "ModifyInstanceAttribute", "StartInstances", "TerminateInstances",
    "CreateTags", "DeleteTags",
]
ROLLED_BACK_LAUNCH = [
    "CreateTags", "CreateTags", "CreateTags", "StopInstances", "DetachVolume",
    "DetachVolume", "CreateTags",
    "CreateTags",                # RunInstances failed: record the rollback
    "AttachVolume", "AttachVolume",
    "ModifyInstanceAttribute",   # DeleteOnTermination of /dev/sdf restored on the old one
    "StartInstances",
    "CreateTags",                # failed-ami and the reason
    "DeleteTags",
]


def _build():
    estate = build_estate()
    old = estate.launch("app")
    estate.ec2.modify_instance_attribute(InstanceId=old, SourceDestCheck={"Value": False})
    estate.ec2.modify_instance_attribute(InstanceId=old, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    set_parameter(estate.new_ami)
    return estate, old, estate.data_volumes(old)


# Built once per module; every test starts from a restored snapshot of it.
_replay, aws, built = replayed(_build)


def _calls_of(aws, invoke) -> list[str]:
    before = len(aws.faults.mutating_calls)
    invoke()
    return [op for _, op in aws.faults.mutating_calls[before:]]


def _assert_replaced(estate, old: str, volumes: dict[str, str]) -> None:
    new = estate.replacement_of(old)
    assert estate.describe(old)["State"]["Name"] == "terminated"
    assert new["ImageId"] == estate.new_ami
    assert new["State"]["Name"] == "running"
    assert estate.data_volumes(new["InstanceId"]) == volumes
    _assert_each_volume_on_one_live_instance(estate, volumes)
    dot = {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in new["BlockDeviceMappings"]}
    assert (dot["/dev/sdf"], dot["/dev/sdg"]) == (True, False)
    _assert_no_progress_tags(estate)


def _assert_rolled_back(estate, old: str, volumes: dict[str, str]) -> None:
    assert estate.describe(old)["State"]["Name"] == "running"
    assert estate.describe(old)["ImageId"] == estate.old_ami
    assert estate.data_volumes(old) == volumes
    assert [i["InstanceId"] for i in estate.live_instances()] == [old]
    _assert_each_volume_on_one_live_instance(estate, volumes)
    tags = {t["Key"]: t["Value"] for t in estate.describe(old)["Tags"]}
    assert tags["ami-upgrade:failed-ami"] == estate.new_ami
    assert not {k for k in tags if k.startswith("ami-upgrade:")} - {
        "ami-upgrade:parameter", "ami-upgrade:failed-ami", "ami-upgrade:failure-reason",
        "ami-upgrade:attempt"}


def _assert_each_volume_on_one_live_instance(estate, volumes: dict[str, str]) -> None:
    live = {i["InstanceId"] for i in estate.live_instances()}
    for device, volume_id in volumes.items():
        attachments = estate.volume(volume_id)["Attachments"]
        assert [(a["Device"], a["InstanceId"] in live) for a in attachments] == [(device, True)]


def _assert_no_progress_tags(estate) -> None:
    progress = [(i["InstanceId"], t["Key"]) for i in estate.live_instances()
                for t in i.get("Tags", []) if t["Key"].startswith("ami-upgrade:")
                and t["Key"] != "ami-upgrade:parameter"]
    progress += [(v["VolumeId"], t["Key"]) for v in estate.ec2.describe_volumes()["Volumes"]
                 for t in v.get("Tags", []) if t["Key"].startswith("ami-upgrade:")]
    assert progress == []


def test_clean_replacement_makes_exactly_these_calls(aws, built):
    estate, old, volumes = built
    fn = function(aws)

    calls = _calls_of(aws, lambda: fn.invoke({}))

    assert calls == CLEAN_REPLACEMENT
    _assert_replaced(estate, old, volumes)


@pytest.mark.parametrize("n", range(1, len(CLEAN_REPLACEMENT) + 1))
def test_crash_after_each_call_of_a_replacement_converges(aws, built, n):
    estate, old, volumes = built
    fn = function(aws)
    launches = aws.faults.count("RunInstances")
    crash_then_converge(aws, fn, n)

    _assert_replaced(estate, old, volumes)
    assert aws.faults.count("RunInstances") - launches == 1


def _fail_attach_on_new(aws, estate, old):
    aws.faults.fail("AttachVolume", "InvalidParameterValue", times=None,
                    when=lambda p: p["Device"] == "/dev/sdg" and p["InstanceId"] != old)


def _fail_health(aws, estate, old):
    aws.faults.status_checks("impaired", image_id=estate.new_ami)


def _fail_launch(aws, estate, old):
    aws.faults.fail("RunInstances", "Unsupported", times=None)   # permanent: rolls back


ROLLBACKS = {"launch": (_fail_launch, ROLLED_BACK_LAUNCH),
             "attach": (_fail_attach_on_new, ROLLED_BACK_ON_NEW_INSTANCE),
             "health": (_fail_health, ROLLED_BACK_HEALTH)}


@pytest.mark.parametrize("failure", sorted(ROLLBACKS))
def test_each_rollback_makes_exactly_these_calls(aws, built, failure):
    estate, old, volumes = built
    fn = function(aws)
    inject, expected = ROLLBACKS[failure]
    inject(aws, estate, old)

    calls = _calls_of(aws, lambda: fn.invoke({}))

    assert calls == expected
    _assert_rolled_back(estate, old, volumes)


@pytest.mark.parametrize(("failure", "n"), [(failure, n) for failure in sorted(ROLLBACKS)
                                            for n in range(1, len(ROLLBACKS[failure][1]) + 1)])
def test_crash_after_each_call_of_a_rollback_converges(aws, built, failure, n):
    estate, old, volumes = built
    fn = function(aws)
    ROLLBACKS[failure][0](aws, estate, old)
    crash_then_converge(aws, fn, n)

    _assert_rolled_back(estate, old, volumes)


def test_a_resumed_launch_sends_the_request_a_clean_one_sends(aws, built):
    """Same ClientToken, same parameters: AWS would answer a repeat with the first launch."""
    _, old, _ = built
    fn = function(aws)
    aws.faults.crash_after(CLEAN_REPLACEMENT.index("RunInstances"))   # token written

    with pytest.raises(SimulatedCrash):
        fn.invoke({})
    fn.invoke({})

    (launch,) = [r for r in aws.faults.requests("RunInstances")
                 if r.get("ClientToken", "").startswith(f"ami-upgrade-{old}-1-")]
    assert launch["BlockDeviceMappings"][1:] == [{"DeviceName": "/dev/sdf", "NoDevice": ""},
                                                 {"DeviceName": "/dev/sdg", "NoDevice": ""}]
