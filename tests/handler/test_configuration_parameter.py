"""A configuration too large for the environment is read from the parameter the stack writes."""

import json

import boto3
import pytest

from handler.settings import SettingsError
from sandbox import LambdaFunction

NAME = "/ami-upgrade/ami-upgrade-dev/configuration"


def test_the_function_reads_its_settings_from_the_configuration_parameter(
        aws, estate, images, api_calls):
    estate.group("web")
    estate.publish(images.new)
    boto3.client("ssm").put_parameter(Name=NAME, Type="String", Value=json.dumps({
        "AMI_PARAMETER_NAME": "/ami/linux/test", "DRY_RUN": "true",
        "ASG_CONFIGURATIONS": json.dumps({"default": {"MinHealthyPercentage": 75}})}))

    report = LambdaFunction(aws, {"CONFIGURATION_PARAMETER_NAME": NAME}).invoke({})

    assert report["dry_run"] is True
    assert report["asgs"][0]["preferences"] == {"MinHealthyPercentage": 75}
    assert api_calls.mutating() == []


@pytest.mark.parametrize(("value", "says"), [
    (None, "cannot read the configuration"),
    ('{"AMI_PARAMETER_NAME": "/ami/linux/test", "SCOPE": "everything"}',
     "SCOPE: expected one of tagged, all"),
    ('{"AMI_PARAMETER_NAME": "/ami/linux/test", "DRYRUN": "true"}',
     "unknown variable(s) DRYRUN"),
])
def test_a_missing_or_bad_configuration_fails_before_anything_changes(
        aws, estate, images, api_calls, value, says):
    estate.group("web")
    estate.publish(images.new)
    if value is not None:
        boto3.client("ssm").put_parameter(Name=NAME, Type="String", Value=value)

    with pytest.raises(SettingsError) as raised:
        LambdaFunction(aws, {"CONFIGURATION_PARAMETER_NAME": NAME}).invoke({})

    assert says in str(raised.value)
    assert api_calls.mutating() == []
