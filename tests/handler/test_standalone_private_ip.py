"""preserve_private_ip: the new instance gets the old one's private IP; failures roll forward."""

from __future__ import annotations

import pytest
from standalone_estate import (
    build_estate,
    crash_then_converge,
    entry,
    function,
    replayed,
    set_parameter,
)

PRESERVED = [
    "CreateTags", "CreateTags", "CreateTags",     # intent, the homes of /dev/sdf and /dev/sdg
    "StopInstances", "DetachVolume", "DetachVolume",
    "CreateTags",                                 # the launch token
    "CreateLaunchTemplate",                       # the launch request, kept
    "TerminateInstances",                         # the old instance: its IP is free
    "RunInstances",                               # ... and taken by the new one
    "ModifyInstanceAttribute",                    # source/dest check off, as before
    "AttachVolume", "AttachVolume",
    "ModifyInstanceAttribute",                    # DeleteOnTermination of /dev/sdf
    "DeleteLaunchTemplate",
    "DeleteTags",
]


def _build():
    estate = build_estate()
    set_parameter(estate.new_ami)
    old = estate.launch("app")
    estate.ec2.modify_instance_attribute(InstanceId=old, SourceDestCheck={"Value": False})
    estate.ec2.modify_instance_attribute(InstanceId=old, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    return estate, (old, estate.describe(old)["PrivateIpAddress"], estate.data_volumes(old))


# Built once per module; every test starts from a restored snapshot of it.
_replay, aws, built = replayed(_build)


@pytest.fixture
def estate(built):
    return built[0]


def _old(built) -> tuple[str, str, dict[str, str]]:
    return built[1]


def _assert_replaced_with_ip(estate, old: str, ip: str, volumes: dict[str, str]) -> None:
    new = estate.replacement_of(old)
    assert new["PrivateIpAddress"] == ip
    assert new["ImageId"] == estate.new_ami
    assert new["SourceDestCheck"] is False
    assert estate.data_volumes(new["InstanceId"]) == volumes
    dot = {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in new["BlockDeviceMappings"]}
    assert (dot["/dev/sdf"], dot["/dev/sdg"]) == (True, False)
    assert estate.describe(old)["State"]["Name"] == "terminated"
    assert estate.ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert not [(v["VolumeId"], t["Key"]) for v in estate.ec2.describe_volumes()["Volumes"]
                for t in v.get("Tags", []) if t["Key"].startswith("ami-upgrade:")]


def test_the_new_instance_takes_the_old_private_ip(aws, estate, built):
    old, ip, volumes = _old(built)
    calls = len(aws.faults.mutating_calls)

    report = function(aws, preserve_private_ip=True).invoke({})

    assert [op for _, op in aws.faults.mutating_calls[calls:]] == PRESERVED
    assert entry(report, old)["action"] == "replaced"
    _assert_replaced_with_ip(estate, old, ip, volumes)


@pytest.mark.parametrize("n", range(1, len(PRESERVED) + 1))
def test_crash_after_each_call_converges_with_the_ip(aws, estate, built, n):
    old, ip, volumes = _old(built)
    fn = function(aws, preserve_private_ip=True)
    launches = aws.faults.count("RunInstances")
    crash_then_converge(aws, fn, n)

    _assert_replaced_with_ip(estate, old, ip, volumes)
    assert aws.faults.count("RunInstances") - launches == 1


def test_a_failure_before_termination_still_rolls_back(aws, estate, built):
    old, _, volumes = _old(built)
    aws.faults.fail("CreateLaunchTemplate", "LaunchTemplateLimitExceeded", "too many")

    report = function(aws, preserve_private_ip=True).invoke({})

    assert entry(report, old)["reason"] == (
        "rolled back: CreateLaunchTemplate failed: LaunchTemplateLimitExceeded: too many")
    assert estate.describe(old)["State"]["Name"] == "running"
    assert estate.data_volumes(old) == volumes


def test_a_failed_launch_after_termination_rolls_forward(aws, estate, built):
    old, ip, volumes = _old(built)
    aws.faults.fail("RunInstances", "Unsupported", "not supported")   # permanent
    fn = function(aws, preserve_private_ip=True)

    first = fn.invoke({})

    assert entry(first, old)["action"] == "failed"
    assert entry(first, old)["reason"].startswith(
        "replacement stopped at 'launch on " + estate.new_ami + " with the old private IP': "
        "RunInstances failed: Unsupported: not supported;")
    for device, volume_id in volumes.items():
        volume = estate.volume(volume_id)
        tags = {t["Key"]: t["Value"] for t in volume["Tags"]}
        assert (volume["State"], tags["ami-upgrade:home-device"]) == ("available", device)
    (template,) = estate.ec2.describe_launch_templates()["LaunchTemplates"]
    assert template["LaunchTemplateName"] == f"ami-upgrade-{old}"

    second = fn.invoke({})

    assert entry(second, old)["action"] == "replaced"
    _assert_replaced_with_ip(estate, old, ip, volumes)


def test_a_new_instance_failing_its_checks_keeps_the_volumes(aws, estate, built):
    old, _, volumes = _old(built)
    aws.faults.status_checks("impaired", image_id=estate.new_ami)

    report = function(aws, preserve_private_ip=True).invoke({})

    new = entry(report, old)["new_instance_id"]
    assert entry(report, old)["action"] == "failed"
    assert entry(report, old)["reason"] == (
        f"status checks of {new} failed: instance impaired, system ok; the old instance is "
        f"terminated (private IP preservation), so {new} keeps the volumes: check it")
    assert estate.data_volumes(new) == volumes
