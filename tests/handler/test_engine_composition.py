"""Groups and standalone instances share one invocation: waiting for a group's refresh
must not starve the standalone replacements."""

import json

import boto3

from handler.tags import PARAMETER as SCOPE_TAG

PARAMETER = "/ami/linux/test"


def _standalone(image_id: str) -> tuple[str, str]:
    ec2 = boto3.client("ec2")
    instance = ec2.run_instances(
        ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        # No auto-assigned public IP (the default subnet's): one would keep it from being
        # relaunched (the preflight replaces its root volume in place instead).
        NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}],
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": SCOPE_TAG, "Value": PARAMETER}]}],
    )["Instances"][0]
    volume = ec2.create_volume(Size=10, AvailabilityZone=instance["Placement"][
        "AvailabilityZone"])["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    return instance["InstanceId"], volume


def _busy_group(estate) -> str:
    """Group "web" with a refresh of its own that takes about an hour."""
    estate.group("web")
    template = estate.template_id("web")
    version = estate.add_version(template, UserData="ZWNobyBoZWxsbw==")
    return boto3.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template,
                                                 "Version": str(version)}},
        Preferences={"MinHealthyPercentage": 100, "InstanceWarmup": 1800},
    )["InstanceRefreshId"]


def test_a_group_waited_for_does_not_starve_standalone_replacements(aws, estate, images,
                                                                    function):
    theirs = _busy_group(estate)
    old_instance, volume = _standalone(images.old)
    aws.faults.status_checks("ok", after_seconds=240, image_id=images.new)   # as in AWS
    estate.publish(images.new)
    ours = function(timeout_seconds=600,
                    ASG_CONFIGURATIONS=json.dumps({"web": {"OnRefreshInProgress": "wait"}}))

    report = ours.invoke({})

    (group,) = report["asgs"]
    (instance,) = [e for e in report["instances"] if e["id"] == old_instance]
    assert group["action"] == "skipped"
    assert group["active_refresh"]["id"] == theirs
    assert instance["action"] == "replaced"
    new = boto3.client("ec2").describe_instances(InstanceIds=[instance["new_instance_id"]])[
        "Reservations"][0]["Instances"][0]
    assert new["ImageId"] == images.new
    assert [m["Ebs"]["VolumeId"] for m in new["BlockDeviceMappings"]
            if m["DeviceName"] == "/dev/sdf"] == [volume]
    assert report["continuation"] == 1
