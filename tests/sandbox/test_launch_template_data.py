"""GetLaunchTemplateData on the embedded AWS answers what AWS does (moto 5.2.5 leaves out
the user data and names every device "string"), and agrees with DescribeInstanceAttribute."""

from __future__ import annotations

import base64

import boto3
import pytest

from sandbox import embedded_aws

X86 = "ami-1e749f67"


@pytest.fixture
def ec2():
    with embedded_aws():
        yield boto3.client("ec2")


def _attribute(ec2, instance_id: str, name: str):
    key = name[0].upper() + name[1:]
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name)[key]
    return value.get("Value") if isinstance(value, dict) else value


def test_user_data_flags_and_devices_as_aws_answers_them(ec2):
    iid = ec2.run_instances(ImageId=X86, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            UserData="#!/bin/sh\necho hi\n")["Instances"][0]["InstanceId"]
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "Placement"]["AvailabilityZone"]
    volume = ec2.create_volume(Size=5, AvailabilityZone=zone)["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=iid, Device="/dev/sdf")
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": True})
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})

    data = ec2.get_launch_template_data(InstanceId=iid)["LaunchTemplateData"]

    assert base64.b64decode(data["UserData"]).decode() == "#!/bin/sh\necho hi\n"
    assert data["UserData"] == _attribute(ec2, iid, "userData")
    assert (data["DisableApiStop"], data["DisableApiTermination"]) == (True, True)
    assert data["InstanceInitiatedShutdownBehavior"] == _attribute(
        ec2, iid, "instanceInitiatedShutdownBehavior")
    instance = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert sorted(m["DeviceName"] for m in data["BlockDeviceMappings"]) == sorted(
        m["DeviceName"] for m in instance["BlockDeviceMappings"])


def test_no_user_data_no_field(ec2):
    iid = ec2.run_instances(ImageId=X86, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    assert "UserData" not in ec2.get_launch_template_data(InstanceId=iid)["LaunchTemplateData"]
