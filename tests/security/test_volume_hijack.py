"""Attack: the engine's tags written on the attacker's own resources while a victim's
replacement is in flight. An instance tagged ``replaces=<victim>`` is not the victim's new
instance (that one is launched with the token recorded on the victim, on the recorded
image), and a volume tagged ``home-instance=<victim>`` is not the victim's (its data
volumes are recorded on it with the intent): neither is ever attached, detached or
terminated for the victim, whose replacement finishes as if they were not there."""

from __future__ import annotations

import pytest
from standalone_estate import entry, function

from .conftest import crash_after

PARAMETER = "/ami/linux/test"
STOP, RUN = 4, 8   # positions of StopInstances and RunInstances in a clean replacement


@pytest.fixture
def estate(standalone):
    return standalone


def _attacker_instance(estate, victim: str, **tags: str) -> str:
    return estate.launch("attacker", volumes=0, in_scope=False, tags={
        "ami-upgrade:in-flight": PARAMETER, "ami-upgrade:replaces": victim, **tags})


def _the_real_replacement(estate, victim: str, attacker: str) -> dict:
    found = [i for i in estate.live_instances()
             if {"Key": "ami-upgrade:replaces", "Value": victim} in i.get("Tags", [])
             or ({"Key": "Name", "Value": "victim"} in i.get("Tags", [])
                 and i["InstanceId"] != victim)]
    (real,) = [i for i in found if i["InstanceId"] != attacker]
    return real


@pytest.mark.parametrize("crash", [STOP, STOP + 1, STOP + 2, RUN])
def test_an_instance_tagged_as_the_replacement_gets_nothing(aws, estate, crash):
    victim = estate.launch("victim")
    volumes = estate.data_volumes(victim)
    fn = function(aws)
    crash_after(aws, fn, crash)
    attacker = _attacker_instance(estate, victim)

    report = fn.invoke({})
    fn.drain()

    assert entry(report, victim)["action"] == "replaced"
    real = _the_real_replacement(estate, victim, attacker)
    assert entry(report, victim)["new_instance_id"] == real["InstanceId"]
    assert estate.data_volumes(real["InstanceId"]) == volumes
    assert estate.data_volumes(attacker) == {}
    assert estate.describe(attacker)["State"]["Name"] == "running"


def test_an_instance_tagged_as_the_replacement_with_a_copied_token_gets_nothing(aws, estate):
    victim = estate.launch("victim")
    volumes = estate.data_volumes(victim)
    fn = function(aws)
    crash_after(aws, fn, STOP + 3)          # the launch token is recorded
    token = {t["Key"]: t["Value"] for t in estate.describe(victim)["Tags"]}[
        "ami-upgrade:launch-token"]
    attacker = _attacker_instance(estate, victim, **{"ami-upgrade:launch-token": token})

    report = fn.invoke({})

    real = _the_real_replacement(estate, victim, attacker)
    assert entry(report, victim)["action"] == "replaced"
    assert estate.data_volumes(real["InstanceId"]) == volumes
    assert estate.data_volumes(attacker) == {}


@pytest.mark.parametrize("crash", [STOP, STOP + 2, RUN])
def test_a_volume_tagged_with_the_victim_as_its_home_is_not_moved(aws, estate, crash):
    victim = estate.launch("victim")
    volumes = estate.data_volumes(victim)
    zone = estate.describe(victim)["Placement"]["AvailabilityZone"]
    fn = function(aws)
    crash_after(aws, fn, crash)
    planted = estate.ec2.create_volume(Size=1, AvailabilityZone=zone, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [
            {"Key": "ami-upgrade:in-flight", "Value": PARAMETER},
            {"Key": "ami-upgrade:home-instance", "Value": victim},
            {"Key": "ami-upgrade:home-device", "Value": "/dev/sdk"},
            {"Key": "ami-upgrade:home-delete-on-termination", "Value": "false"}]}])["VolumeId"]

    report = fn.invoke({})

    assert entry(report, victim)["action"] == "replaced"
    new = entry(report, victim)["new_instance_id"]
    assert estate.data_volumes(new) == volumes
    assert estate.volume(planted)["State"] == "available"


def test_a_volume_planted_before_a_rollback_is_not_attached_to_the_old_instance(aws, estate):
    victim = estate.launch("victim")
    volumes = estate.data_volumes(victim)
    zone = estate.describe(victim)["Placement"]["AvailabilityZone"]
    fn = function(aws)
    crash_after(aws, fn, STOP + 2)          # stopped, both volumes detached
    planted = estate.ec2.create_volume(Size=1, AvailabilityZone=zone, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [
            {"Key": "ami-upgrade:in-flight", "Value": PARAMETER},
            {"Key": "ami-upgrade:home-instance", "Value": victim},
            {"Key": "ami-upgrade:home-device", "Value": "/dev/sdk"}]}])["VolumeId"]
    aws.faults.fail("RunInstances", "Unsupported", "not here")       # permanent: roll back

    report = fn.invoke({})

    assert entry(report, victim)["action"] == "failed"
    assert estate.data_volumes(victim) == volumes
    assert estate.volume(planted)["State"] == "available"
