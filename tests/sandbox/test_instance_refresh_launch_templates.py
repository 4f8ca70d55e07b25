"""The launch-template behaviour the engine's refreshes rely on, which moto lacks:
SourceVersion, ClientToken idempotency, and resolve:ssm ImageIds resolved at launch."""

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox import embedded_aws


@pytest.fixture
def ec2():
    with embedded_aws():
        yield boto3.client("ec2")


@pytest.fixture
def template(ec2) -> str:
    return ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-11111111", "InstanceType": "t3.micro", "KeyName": "ops"})[
        "LaunchTemplate"]["LaunchTemplateId"]


def _version(ec2, template: str, **kwargs) -> dict:
    return ec2.create_launch_template_version(LaunchTemplateId=template,
                                              **kwargs)["LaunchTemplateVersion"]


def test_a_version_from_a_source_keeps_what_it_does_not_override(ec2, template):
    created = _version(ec2, template, SourceVersion="1",
                       LaunchTemplateData={"ImageId": "ami-22222222"})

    assert created["VersionNumber"] == 2
    assert created["LaunchTemplateData"] == {"ImageId": "ami-22222222",
                                             "InstanceType": "t3.micro", "KeyName": "ops"}


def test_a_version_without_a_source_has_only_what_was_sent(ec2, template):
    created = _version(ec2, template, LaunchTemplateData={"ImageId": "ami-22222222"})

    assert created["LaunchTemplateData"] == {"ImageId": "ami-22222222"}


def test_a_repeated_client_token_returns_the_first_version(ec2, template):
    args = {"SourceVersion": "1", "LaunchTemplateData": {"ImageId": "ami-22222222"},
            "ClientToken": "upgrade-1"}

    first = _version(ec2, template, **args)
    again = _version(ec2, template, **args)

    assert again["VersionNumber"] == first["VersionNumber"] == 2
    assert len(ec2.describe_launch_template_versions(
        LaunchTemplateId=template)["LaunchTemplateVersions"]) == 2


def test_a_client_token_reused_with_other_parameters_is_refused(ec2, template):
    _version(ec2, template, SourceVersion="1", LaunchTemplateData={"ImageId": "ami-22222222"},
             ClientToken="upgrade-1")

    with pytest.raises(ClientError) as raised:
        _version(ec2, template, SourceVersion="1",
                 LaunchTemplateData={"ImageId": "ami-33333333"}, ClientToken="upgrade-1")

    assert raised.value.response["Error"]["Code"] == "IdempotentParameterMismatch"


def test_a_group_launches_the_ami_a_resolve_ssm_image_id_names(ec2):
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    boto3.client("ssm").put_parameter(Name="/ami/linux/test", Value=image, Type="String")
    template = ec2.create_launch_template(LaunchTemplateName="alias", LaunchTemplateData={
        "ImageId": "resolve:ssm:/ami/linux/test"})["LaunchTemplate"]["LaunchTemplateId"]

    boto3.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="alias", MinSize=1, MaxSize=1, DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"], LaunchTemplate={"LaunchTemplateId": template})

    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:aws:autoscaling:groupName", "Values": ["alias"]}])["Reservations"]
    assert [i["ImageId"] for r in reservations for i in r["Instances"]] == [image]
