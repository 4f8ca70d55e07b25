"""A CloudTrail event naming the parameter by ARN: an ARN drops the name's leading '/', so
``arn:...:parameter/my-ami`` names the parameter ``my-ami`` (issue 13, class 6)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("configured", "named"), [
    ("golden-ami", "arn:aws:ssm:us-east-1:123456789012:parameter/golden-ami"),
    ("/ami/web/prod", "arn:aws:ssm:us-east-1:123456789012:parameter/ami/web/prod"),
])
def test_a_parameter_named_by_arn_in_cloudtrail_rolls_the_fleet(
        estate, images, function, load_event, configured, named):
    estate.group("web", parameter=configured)
    version = estate.publish(images.new, name=configured)
    event = load_event("cloudtrail-put-parameter")
    event["detail"]["requestParameters"]["name"] = named
    event["detail"]["responseElements"]["version"] = version

    report = function(AMI_PARAMETER_NAME=configured).invoke(event)

    assert report["status"] == "succeeded", report
    assert report["asgs"][0]["action"] == "refresh_started"


def test_an_arn_naming_another_parameter_is_still_ignored(estate, images, function, load_event):
    estate.group("web", parameter="golden-ami")
    estate.publish(images.new, name="golden-ami")
    event = load_event("cloudtrail-put-parameter")
    event["detail"]["requestParameters"]["name"] = (
        "arn:aws:ssm:us-east-1:123456789012:parameter/golden-ami-staging")

    report = function(AMI_PARAMETER_NAME="golden-ami").invoke(event)

    assert report["status"] == "ignored"


def test_a_template_alias_naming_the_parameter_by_arn_follows_it():
    from handler.asg.launch_templates import ImageAlias

    alias = ImageAlias.parse("resolve:ssm:arn:aws:ssm:us-east-1:123456789012:parameter/golden-ami")

    assert alias is not None and alias.follows("golden-ami")
    assert not alias.follows("golden-ami-2")
