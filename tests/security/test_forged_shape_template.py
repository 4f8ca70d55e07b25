"""Attack: a launch template tagged as the shape the engine keeps for an old instance
(``replaces=<old>``, private-IP preservation), with data of the attacker's choosing, plus a
volume claiming that old instance as its home. Once the old instance is no longer visible
(AWS shows a terminated instance for about an hour) nothing tells such a template from the
engine's own: the engine launches from a kept shape only if it has the engine's name
(unique in the account) and the old instance, still visible, records the same launch
token and image. Otherwise the entry names the template
and the tag, and nothing is launched, attached or deleted."""

from __future__ import annotations

from standalone_estate import PARAMETER, entry, function

from handler.standalone.relaunch import launch_token, template_name
from sandbox.terminal_states import forget_terminated

from .conftest import crash_after

GONE = "i-0123456789abcdef0"     # an instance AWS no longer shows (or never had)
TERMINATED = 9   # mutating calls of a kept-shape relaunch, the last terminating the old one


def _forge(estate, old_id: str, image: str, name: str) -> tuple[str, str]:
    """The attacker's volume claiming ``old_id`` and template ``name`` keeping a shape
    for it."""
    zone = estate.ec2.describe_subnets(SubnetIds=[estate.subnet_id])["Subnets"][0][
        "AvailabilityZone"]
    volume = estate.ec2.create_volume(Size=1, AvailabilityZone=zone, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [
            {"Key": "ami-upgrade:in-flight", "Value": PARAMETER},
            {"Key": "ami-upgrade:home-instance", "Value": old_id},
            {"Key": "ami-upgrade:home-device", "Value": "/dev/sdf"}]}])["VolumeId"]
    template = estate.ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro",
                            "UserData": "IyEvYmluL3NoCmN1cmwgZXZpbA==",
                            "IamInstanceProfile": {"Arn": estate.profile_arn}},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [
            {"Key": "ami-upgrade:in-flight", "Value": PARAMETER},
            {"Key": "ami-upgrade:replaces", "Value": old_id},
            {"Key": "ami-upgrade:launch-token",
             "Value": launch_token(old_id, image, "1")}]}])["LaunchTemplate"]
    return volume, template["LaunchTemplateId"]


def test_a_forged_shape_for_an_instance_no_longer_visible_launches_nothing(
        aws, standalone, api_calls):
    volume, template = _forge(standalone, GONE, standalone.new_ami, template_name(GONE))

    report = function(aws, preserve_private_ip=True).invoke({})

    assert entry(report, GONE)["action"] == "failed"
    assert entry(report, GONE)["reason"].startswith(
        f"launch template {template} (tag ami-upgrade:replaces={GONE}) keeps a shape for "
        f"{GONE}, which is no longer visible, so the template cannot be checked against its "
        "record; nothing was launched.")
    assert api_calls.mutating() == []
    assert standalone.volume(volume)["State"] == "available"


def test_a_second_shape_copying_the_engines_record_is_ignored(aws, standalone):
    """The victim's own kept-shape relaunch stopped after its termination; the attacker
    adds a template tagged for it with the recorded token and image and data of their
    own. Only the template with the engine's name (unique in the account) is the shape."""
    old = standalone.launch("app")
    fn = function(aws, preserve_private_ip=True)
    crash_after(aws, fn, TERMINATED)
    tags = standalone.tags(old)
    _, forged = _forge(standalone, old, tags["ami-upgrade:target-ami"], f"forged-{old}")
    assert launch_token(old, tags["ami-upgrade:target-ami"], "1") == tags[
        "ami-upgrade:launch-token"]
    launches = len(aws.faults.requests("RunInstances"))

    report = fn.invoke({})

    assert entry(report, old)["action"] == "replaced"
    (launch,) = aws.faults.requests("RunInstances")[launches:]
    assert "LaunchTemplate" not in launch
    assert launch.get("UserData") != "IyEvYmluL3NoCmN1cmwgZXZpbA=="
    assert standalone.ec2.describe_launch_templates(LaunchTemplateIds=[forged])[
        "LaunchTemplates"][0]["LaunchTemplateName"] == f"forged-{old}"


def test_the_engines_own_kept_shape_is_launched_from_while_the_old_instance_records_it(
        aws, standalone):
    old = standalone.launch("app")
    fn = function(aws, preserve_private_ip=True)
    crash_after(aws, fn, TERMINATED)
    assert standalone.describe(old)["State"]["Name"] == "terminated"

    report = fn.invoke({})

    assert entry(report, old)["action"] == "replaced"


def test_the_engines_own_kept_shape_waits_for_an_operator_once_the_old_instance_is_gone(
        aws, standalone, api_calls):
    """An hour later the record is gone with the instance: the shape is reported, with
    what to do, and the data volumes stay where they are."""
    old = standalone.launch("app")
    volumes = sorted(standalone.data_volumes(old).values())
    fn = function(aws, preserve_private_ip=True)
    crash_after(aws, fn, TERMINATED)
    forget_terminated(aws, old)
    before = len(api_calls.mutating())

    report = fn.invoke({})

    assert entry(report, old)["action"] == "failed"
    assert "is no longer visible" in entry(report, old)["reason"]
    assert api_calls.mutating()[before:] == []
    assert [standalone.volume(v)["State"] for v in volumes] == ["available", "available"]
