"""The sandbox answers as AWS does where moto does not: ``AttachVolume`` of an attached
volume is refused (``VolumeInUse``), and ``DisableApiTermination`` given at launch is
kept (termination refused with ``OperationNotPermitted``). Each failed on moto alone."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox import embedded_aws

IMAGE = "ami-1e749f67"   # one of moto's stock images


@pytest.fixture
def ec2():
    with embedded_aws():
        yield boto3.client("ec2")


def _launch(ec2, **extra) -> str:
    return ec2.run_instances(ImageId=IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                             Placement={"AvailabilityZone": "us-east-1a"},
                             **extra)["Instances"][0]["InstanceId"]


def _volume(ec2) -> str:
    return ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]


def test_attaching_a_volume_attached_elsewhere_is_refused_and_leaves_it_where_it_was(ec2):
    first, second, volume = _launch(ec2), _launch(ec2), _volume(ec2)
    ec2.attach_volume(VolumeId=volume, InstanceId=first, Device="/dev/sdf")

    with pytest.raises(ClientError) as refused:
        ec2.attach_volume(VolumeId=volume, InstanceId=second, Device="/dev/sdf")

    assert refused.value.response["Error"]["Code"] == "VolumeInUse"
    (attachment,) = ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"]
    assert attachment["InstanceId"] == first


def test_attaching_a_volume_again_to_its_own_instance_is_refused(ec2):
    instance, volume = _launch(ec2), _volume(ec2)
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")

    with pytest.raises(ClientError) as refused:
        ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdg")

    assert refused.value.response["Error"]["Code"] == "VolumeInUse"


def test_a_detached_volume_attaches_again(ec2):
    first, second, volume = _launch(ec2), _launch(ec2), _volume(ec2)
    ec2.attach_volume(VolumeId=volume, InstanceId=first, Device="/dev/sdf")
    ec2.detach_volume(VolumeId=volume, InstanceId=first)

    ec2.attach_volume(VolumeId=volume, InstanceId=second, Device="/dev/sdf")

    (attachment,) = ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"]
    assert attachment["InstanceId"] == second


def test_termination_protection_given_at_launch_is_kept(ec2):
    instance = _launch(ec2, DisableApiTermination=True)

    attribute = ec2.describe_instance_attribute(InstanceId=instance,
                                                Attribute="disableApiTermination")
    assert attribute["DisableApiTermination"]["Value"] is True
    with pytest.raises(ClientError) as refused:
        ec2.terminate_instances(InstanceIds=[instance])
    assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"


def test_termination_protection_from_a_launch_template_is_kept(ec2):
    ec2.create_launch_template(LaunchTemplateName="protected", LaunchTemplateData={
        "ImageId": IMAGE, "InstanceType": "t3.micro", "DisableApiTermination": True})
    instance = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={
        "LaunchTemplateName": "protected"})["Instances"][0]["InstanceId"]

    with pytest.raises(ClientError) as refused:
        ec2.terminate_instances(InstanceIds=[instance])
    assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"


def test_an_unprotected_launch_terminates(ec2):
    instance = _launch(ec2)

    ec2.terminate_instances(InstanceIds=[instance])

    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")


def test_an_event_reaches_no_scheduled_nor_disabled_rule():
    """The stack's follow-up rule (scheduled, DISABLED) next to a pattern rule: PutEvents
    delivers to the pattern rule's target only (moto failed on the Lambda target)."""
    import json

    with embedded_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        queue = sqs.create_queue(QueueName="seen")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
        events.put_rule(Name="follow-up", ScheduleExpression="rate(5 minutes)",
                        State="DISABLED")
        events.put_targets(Rule="follow-up", Targets=[{"Id": "f", "Arn": lambda_arn}])
        events.put_rule(Name="reconcile", ScheduleExpression="rate(1 day)")
        events.put_targets(Rule="reconcile", Targets=[{"Id": "f", "Arn": lambda_arn}])
        events.put_rule(Name="pattern", EventPattern=json.dumps({"source": ["test"]}))
        events.put_targets(Rule="pattern", Targets=[{"Id": "q", "Arn": arn}])

        events.put_events(Entries=[{"Source": "test", "DetailType": "x", "Detail": "{}"}])

        assert len(sqs.receive_message(QueueUrl=queue).get("Messages", [])) == 1


def test_with_a_read_lag_a_launch_and_an_attachment_show_only_after_it():
    from sandbox.read_lag import lag

    with embedded_aws() as aws:
        ec2 = boto3.client("ec2")
        lag(aws, 30)
        instance, volume = _launch(ec2), _volume(ec2)
        ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")

        def listed() -> list[str]:
            return [i["InstanceId"] for r in ec2.describe_instances(Filters=[{
                "Name": "instance-id", "Values": [instance]}])["Reservations"]
                for i in r["Instances"]]

        early = (listed(), ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"])
        aws.advance(30)
        late = (listed(), ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"])

    assert (early, late) == (([], "available"), ([instance], "in-use"))
