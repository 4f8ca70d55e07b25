"""One rule, one place: the stack's validator and the sandbox's StartInstanceRefresh agree.

Every case goes through ``handler.refresh_preferences.check_preferences`` (what preview
and the function check) and through boto3 against the embedded AWS (botocore's own
parameter validation, then the emulation): both accept or both refuse.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from handler.refresh_preferences import check_preferences, checks
from handler.schema import SettingsError
from sandbox import embedded_aws

CASES = [
    ({}, True),
    ({"MinHealthyPercentage": 90}, True),
    ({"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200}, True),
    ({"MaxHealthyPercentage": 150}, False),                        # Max needs Min
    ({"MinHealthyPercentage": 50, "MaxHealthyPercentage": 200}, False),   # spread > 100
    ({"MinHealthyPercentage": 90, "MaxHealthyPercentage": 99}, False),    # Max below 100
    ({"MinHealthyPercentage": 90, "MaxHealthyPercentage": 201}, False),
    ({"MinHealthyPercentage": 101}, False),
    ({"MinHealthyPercentage": -1}, False),
    ({"InstanceWarmup": -5}, False),
    ({"InstanceWarmup": 600}, True),
    ({"CheckpointPercentages": [20, 100], "CheckpointDelay": 60}, True),
    ({"CheckpointDelay": 60}, False),                              # delay needs checkpoints
    ({"CheckpointPercentages": [0, 100]}, False),
    ({"CheckpointPercentages": [50, 101]}, False),
    ({"CheckpointPercentages": [20, 100], "CheckpointDelay": 172_801}, False),
    ({"ScaleInProtectedInstances": "Never"}, False),
    ({"ScaleInProtectedInstances": "Wait", "StandbyInstances": "Terminate"}, True),
    ({"BakeTime": 172_801}, False),
    ({"MinHealthyPercentageTypo": 90}, False),
]


def _validator_accepts(prefs: dict) -> bool:
    try:
        check_preferences(prefs, "Preferences")
    except SettingsError:
        return False
    return True


def test_the_validator_and_the_emulation_agree_on_every_case():
    with embedded_aws():
        ec2, autoscaling = boto3.client("ec2"), boto3.client("autoscaling")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        template = ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={
            "ImageId": image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
        verdicts = []
        for index, (prefs, accepted) in enumerate(CASES):
            name = f"g{index}"
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=0, MaxSize=2, DesiredCapacity=1,
                AvailabilityZones=["us-east-1a"],
                LaunchTemplate={"LaunchTemplateId": template, "Version": "1"})
            try:
                autoscaling.start_instance_refresh(AutoScalingGroupName=name, Preferences=prefs)
                emulation = True
            except (ClientError, ParamValidationError):
                emulation = False
            verdicts.append((prefs, _validator_accepts(prefs), emulation, accepted))
    assert [v for v in verdicts if not v[1] == v[2] == v[3]] == []


def test_the_checks_cover_every_field_of_botocores_refresh_preferences():
    import botocore.session

    shape = botocore.session.get_session().get_service_model("autoscaling").shape_for(
        "RefreshPreferences")
    assert list(checks()) == list(shape.members)


@pytest.mark.parametrize(("field", "bad", "says"), [
    ("MinHealthyPercentage", 101, "expected an integer from 0 to 100"),
    ("MaxHealthyPercentage", 99, "expected an integer from 100 to 200"),
    ("CheckpointDelay", 172_801, "expected an integer from 0 to 172800"),
    ("BakeTime", -1, "expected an integer from 0 to 172800"),
    ("InstanceWarmup", -1, "expected an integer of at least 0"),
    ("StandbyInstances", "Keep", "expected one of Terminate, Ignore, Wait"),
])
def test_the_bounds_and_enums_are_botocores(field, bad, says):
    with pytest.raises(SettingsError, match=f"^P.{field}: {says}"):
        check_preferences({"MinHealthyPercentage": 90, field: bad}, "P")
