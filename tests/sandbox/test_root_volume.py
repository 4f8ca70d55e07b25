"""CreateReplaceRootVolumeTask / DescribeReplaceRootVolumeTasks on the embedded AWS."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox import embedded_aws
from sandbox.root_volume import DURATION_SECONDS, FAILING_SECONDS, PENDING_SECONDS

X86, ARM = "ami-1e749f67", "ami-0e9271c829888680e"


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


@pytest.fixture
def ec2(aws):
    return boto3.client("ec2")


def _instance(ec2) -> tuple[str, str, str]:
    """A running instance with a data volume: (instance, root volume, data volume)."""
    inst = ec2.run_instances(ImageId=X86, MinCount=1, MaxCount=1)["Instances"][0]
    data = ec2.create_volume(Size=5, AvailabilityZone=inst["Placement"]["AvailabilityZone"])
    ec2.attach_volume(VolumeId=data["VolumeId"], InstanceId=inst["InstanceId"],
                      Device="/dev/sdf")
    return inst["InstanceId"], inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"], \
        data["VolumeId"]


def _image(ec2) -> str:
    return ec2.copy_image(SourceImageId=X86, SourceRegion="us-east-1", Name="new")["ImageId"]


def _volumes(ec2, instance_id) -> dict[str, str]:
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]}


def _state(ec2, task_id) -> str:
    return ec2.describe_replace_root_volume_tasks(
        ReplaceRootVolumeTaskIds=[task_id])["ReplaceRootVolumeTasks"][0]["TaskState"]


def test_task_progresses_with_the_clock_and_replaces_the_root(aws, ec2):
    instance, root, data = _instance(ec2)
    image = _image(ec2)

    task = ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=image)[
        "ReplaceRootVolumeTask"]
    states = [task["TaskState"]]
    for _ in range(DURATION_SECONDS // 15):
        aws.advance(15)
        states.append(_state(ec2, task["ReplaceRootVolumeTaskId"]))

    assert states[0] == "pending"
    assert states[PENDING_SECONDS // 15] == "in-progress"
    assert states[-1] == "succeeded"
    inst = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert inst["ImageId"] == image
    volumes = _volumes(ec2, instance)
    assert volumes["/dev/sdf"] == data
    assert volumes["/dev/sda1"] != root
    assert ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["State"] == "available"


def test_replaced_root_volume_is_deleted_when_asked(aws, ec2):
    instance, root, _ = _instance(ec2)
    ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=_image(ec2),
                                        DeleteReplacedRootVolume=True)
    aws.advance(DURATION_SECONDS)

    with pytest.raises(ClientError, match=r"InvalidVolume\.NotFound"):
        ec2.describe_volumes(VolumeIds=[root])


@pytest.mark.parametrize("detached", [False, True])
def test_failing_task_keeps_the_original_root(aws, ec2, detached):
    instance, root, data = _instance(ec2)
    aws.root_volume.fail_next(instance, detached=detached)
    task = ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=_image(ec2))[
        "ReplaceRootVolumeTask"]["ReplaceRootVolumeTaskId"]
    volumes_before = len(ec2.describe_volumes()["Volumes"])

    aws.advance(DURATION_SECONDS)
    failing = _state(ec2, task)
    aws.advance(FAILING_SECONDS)

    assert (failing, _state(ec2, task)) == (
        "failing", "failed-detached" if detached else "failed")
    assert _volumes(ec2, instance) == {"/dev/sda1": root, "/dev/sdf": data}
    assert len(ec2.describe_volumes()["Volumes"]) == volumes_before + detached


def test_a_stopped_instance_is_refused(aws, ec2):
    instance, _, _ = _instance(ec2)
    ec2.stop_instances(InstanceIds=[instance])

    with pytest.raises(ClientError, match="IncorrectInstanceState"):
        ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=_image(ec2))


def test_an_image_of_another_architecture_is_refused(aws, ec2):
    instance, _, _ = _instance(ec2)

    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=ARM)


def test_one_task_at_a_time_and_tokens_are_idempotent(aws, ec2):
    instance, _, _ = _instance(ec2)
    image = _image(ec2)
    first = ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=image,
                                                ClientToken="t")["ReplaceRootVolumeTask"]

    again = ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=image,
                                                ClientToken="t")["ReplaceRootVolumeTask"]
    with pytest.raises(ClientError, match="IncorrectState"):
        ec2.create_replace_root_volume_task(InstanceId=instance, ImageId=image)

    assert again["ReplaceRootVolumeTaskId"] == first["ReplaceRootVolumeTaskId"]


def test_describe_filters_by_instance_and_paginates(aws, ec2):
    instances = [_instance(ec2)[0] for _ in range(3)]
    image = _image(ec2)
    ids = [ec2.create_replace_root_volume_task(
        InstanceId=i, ImageId=image, TagSpecifications=[{
            "ResourceType": "replace-root-volume-task",
            "Tags": [{"Key": "n", "Value": str(n)}]}])["ReplaceRootVolumeTask"][
        "ReplaceRootVolumeTaskId"] for n, i in enumerate(instances)]

    pages = ec2.get_paginator("describe_replace_root_volume_tasks").paginate(
        PaginationConfig={"PageSize": 2})
    mine = ec2.describe_replace_root_volume_tasks(
        Filters=[{"Name": "instance-id", "Values": [instances[1]]}])["ReplaceRootVolumeTasks"]

    assert [t["ReplaceRootVolumeTaskId"] for p in pages for t in p["ReplaceRootVolumeTasks"]] \
        == ids
    assert [(t["ReplaceRootVolumeTaskId"], t["Tags"]) for t in mine] == [
        (ids[1], [{"Key": "n", "Value": "1"}])]
    with pytest.raises(ClientError, match=r"InvalidReplaceRootVolumeTaskId\.NotFound"):
        ec2.describe_replace_root_volume_tasks(ReplaceRootVolumeTaskIds=["replacevol-0"])
