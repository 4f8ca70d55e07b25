"""A parameter that does not hold an available AMI, or unreadable exclusions: a failed report
naming the value, and nothing touched."""

import json

import boto3
import pytest
from moto.ec2.models import ec2_backends

from handler.engine import NOT_RETRIED

EXCLUSIONS = "/ami-upgrade/exclusions"


@pytest.fixture
def fleet(estate):
    estate.group("web")
    return estate


def _untouched(fleet, api_calls) -> None:
    assert api_calls.mutating() == []
    assert sorted(fleet.versions(fleet.template_id("web"))) == [1]
    assert fleet.refreshes("web") == []


@pytest.mark.parametrize("value", ["not-an-ami", "ami-12", "ami-0123456789ABCDEF0", " "])
def test_a_value_that_is_not_an_ami_id_fails_naming_it(fleet, function, api_calls, value):
    fleet.publish(value)

    report = function().invoke({})

    assert report["status"] == "failed"
    assert repr(value.strip()) in report["reason"]
    assert report["reason"].startswith("parameter /ami/linux/test (version 2) holds")
    _untouched(fleet, api_calls)


def test_an_ami_that_does_not_exist_fails_naming_it(fleet, function, api_calls):
    fleet.publish("ami-0123456789abcdef0")

    report = function().invoke({})

    assert report["reason"] == ("parameter /ami/linux/test (version 2) holds "
                                "ami-0123456789abcdef0, which does not exist or is not visible; "
                                f"{NOT_RETRIED}")
    _untouched(fleet, api_calls)


def test_a_deregistered_ami_fails(fleet, images, function, api_calls):
    boto3.client("ec2").deregister_image(ImageId=images.new)
    fleet.publish(images.new)

    report = function().invoke({})

    assert report["status"] == "failed"
    assert f"holds {images.new}, which does not exist" in report["reason"]
    _untouched(fleet, api_calls)


def test_an_ami_that_is_not_available_yet_fails_naming_its_state(
        aws, fleet, images, function, api_calls):
    ec2_backends[aws.account_id][aws.region].amis[images.new].state = "pending"
    fleet.publish(images.new)

    report = function().invoke({})

    assert f"holds {images.new}, whose state is 'pending', not 'available' yet" in \
        report["reason"]
    _untouched(fleet, api_calls)


def test_a_missing_parameter_fails(fleet, function, api_calls):
    report = function(AMI_PARAMETER_NAME="/ami/linux/missing").invoke({})

    assert report["reason"] == ("cannot read parameter /ami/linux/missing: ParameterNotFound; "
                                f"{NOT_RETRIED}")
    _untouched(fleet, api_calls)


def test_a_pinned_ami_that_is_not_the_parameters_value_fails(fleet, function, api_calls):
    report = function().invoke({"ami_id": "ami-0123456789abcdef0"})

    assert report["reason"].startswith("the invocation's ami_id ami-0123456789abcdef0 is not "
                                       "the current value of parameter /ami/linux/test")
    _untouched(fleet, api_calls)


def test_unreadable_exclusions_fail_naming_the_parameter(fleet, images, function, api_calls):
    boto3.client("ssm").put_parameter(Name=EXCLUSIONS, Type="String", Value="{asgs: web}")
    fleet.publish(images.new)

    report = function(EXCLUSIONS_PARAMETER_NAME=EXCLUSIONS).invoke({})

    assert report["status"] == "failed"
    assert report["reason"].startswith(f"exclusions parameter {EXCLUSIONS}: the value is not "
                                       "valid JSON")
    _untouched(fleet, api_calls)


def test_exclusions_of_the_wrong_shape_fail(fleet, images, function, api_calls):
    boto3.client("ssm").put_parameter(Name=EXCLUSIONS, Type="String",
                                      Value=json.dumps({"groups": ["web"]}))
    fleet.publish(images.new)

    report = function(EXCLUSIONS_PARAMETER_NAME=EXCLUSIONS).invoke({})

    assert report["reason"].startswith(f'exclusions parameter {EXCLUSIONS}: expected '
                                       '{"instances": [...], "asgs": [...]}')
    _untouched(fleet, api_calls)


def test_a_missing_exclusions_parameter_fails(fleet, images, function, api_calls):
    fleet.publish(images.new)

    report = function(EXCLUSIONS_PARAMETER_NAME=EXCLUSIONS).invoke({})

    assert report["reason"] == (f"EXCLUSIONS_PARAMETER_NAME: cannot read {EXCLUSIONS}: "
                                f"ParameterNotFound; {NOT_RETRIED}")
    _untouched(fleet, api_calls)
