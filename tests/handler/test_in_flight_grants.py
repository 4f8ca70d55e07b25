"""The role's ``InFlight`` statement holds: every volume move is between resources the
engine marked in flight first.

The policy lets ``AttachVolume``, ``DetachVolume`` and ``ModifyInstanceAttribute`` act
only on an instance and a volume that both carry ``ami-upgrade:in-flight=<parameter>``
(``components/policy.py``). Here each such call the function makes, in a relaunch and
in a rollback, is looked at as the embedded AWS receives it: the tags at that moment
must be there, or the real AWS would have refused the call.
"""

from __future__ import annotations

import boto3
import pytest
from standalone_estate import PARAMETER, build_estate, entry, function, set_parameter

from handler.standalone.relaunch import ENGINE_SET_ATTRIBUTES

GUARDED = ("AttachVolume", "DetachVolume", "ModifyInstanceAttribute")


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def watch(aws) -> list[tuple[str, str, bool]]:
    """(operation, resource, carried in-flight) for each resource of each guarded call.

    Uses the fault plan's predicate as the observer: it is asked at every request and
    answers "do not fail", after reading the resources' tags.
    """
    ec2 = boto3.client("ec2")
    seen: list[tuple[str, str, bool]] = []

    def in_flight(resource: str) -> bool:
        tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]},
                                          {"Name": "key", "Values": ["ami-upgrade:in-flight"]}])
        return [t["Value"] for t in tags["Tags"]] == [PARAMETER]

    def observer(operation: str):
        def look(params: dict) -> bool:
            for key in ("InstanceId", "VolumeId"):
                if params.get(key):
                    seen.append((operation, params[key], in_flight(params[key])))
            return False
        return look

    for operation in GUARDED:
        aws.faults.fail(operation, "NeverRaised", times=None, when=observer(operation))
    return seen


def test_a_relaunch_moves_volumes_only_between_resources_in_flight(aws, estate):
    old = estate.launch("app", volumes=2)
    estate.ec2.modify_instance_attribute(InstanceId=old, SourceDestCheck={"Value": False})
    estate.ec2.modify_instance_attribute(InstanceId=old, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdg", "Ebs": {"DeleteOnTermination": True}}])
    seen = watch(aws)
    report = function(aws).invoke({})
    assert entry(report, old)["action"] == "replaced"
    assert {op for op, _, _ in seen} == set(GUARDED)
    assert [call for call in seen if not call[2]] == []


def test_a_rollback_moves_volumes_back_only_while_in_flight(aws, estate):
    old = estate.launch("app", volumes=2)
    seen = watch(aws)
    aws.faults.fail("AttachVolume", "VolumeInUse", "vol is already attached",
                    when=lambda p: p["Device"] == "/dev/sdg" and p["InstanceId"] != old)
    report = function(aws).invoke({})
    assert entry(report, old)["reason"].startswith("rolled back: AttachVolume failed")
    detached_from_new = [r for op, r, _ in seen if op == "DetachVolume" and r.startswith("i-")
                         and r != old]
    assert detached_from_new                     # the rollback path was taken
    assert [call for call in seen if not call[2]] == []


# ModifyInstanceAttribute's parameters -> the attribute names the role's ShapeInFlight
# statement allows (``ec2:Attribute``, compared ignoring case).
ATTRIBUTE_OF = {"BlockDeviceMappings": "blockDeviceMappings",
                "DisableApiTermination": "disableApiTermination",
                "SourceDestCheck": "sourceDestCheck"}


def test_the_function_sets_only_the_instance_attributes_its_role_allows(aws, estate):
    """Each ModifyInstanceAttribute of a relaunch (source/dest check, DeleteOnTermination
    restored) sets an attribute the role's ``ec2:Attribute`` condition lists."""
    old = estate.launch("app", volumes=2)
    estate.ec2.modify_instance_attribute(InstanceId=old, SourceDestCheck={"Value": False})
    estate.ec2.modify_instance_attribute(InstanceId=old, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdg", "Ebs": {"DeleteOnTermination": True}}])
    sets: list[str] = []

    def record(params: dict) -> bool:
        sets.extend(k for k in params if k not in ("InstanceId", "DryRun"))
        return False

    aws.faults.fail("ModifyInstanceAttribute", "NeverRaised", times=None, when=record)
    report = function(aws).invoke({})
    assert entry(report, old)["action"] == "replaced"
    allowed = {a.lower() for a in ENGINE_SET_ATTRIBUTES}
    assert sets                                   # the calls were seen
    assert [k for k in sets if ATTRIBUTE_OF.get(k, k).lower() not in allowed] == []
