"""A group whose launch template passes a role the function may not pass (issue 10).

Auto Scaling checks that whoever starts an instance refresh naming a launch template
may launch from it, ``iam:PassRole`` on the template's instance profile role included.
The role policy grants PassRole only for ``ami-upgrade:instanceRoles``, so such a group
is a misconfiguration: reported ``failed`` with the fix, before any version is written.
"""

from __future__ import annotations

import json

import boto3
import pytest


@pytest.fixture
def profile_arn(aws) -> str:
    iam = boto3.client("iam")
    iam.create_role(RoleName="web", Path="/apps/", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    arn = iam.create_instance_profile(InstanceProfileName="web")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")
    return arn


@pytest.fixture
def fleet(estate, images, profile_arn):
    template = estate.template("web", IamInstanceProfile={"Arn": profile_arn})
    estate.group("web", template)
    estate.publish(images.new)
    return estate


def test_a_group_whose_template_role_is_not_passable_fails_with_the_fix(
        fleet, function, api_calls):
    report = function(INSTANCE_ROLES=json.dumps(["/ec2/"])).invoke({})

    (entry,) = report["asgs"]
    assert entry["action"] == "failed"
    assert "arn:aws:iam::123456789012:role/apps/web" in entry["reason"]
    assert "is not in ami-upgrade:instanceRoles (/ec2/)" in entry["reason"]
    assert entry["fix"] == ("add the role of instance profile web (its ARN or path) to "
                            "ami-upgrade:instanceRoles")
    assert report["status"] in ("failed", "partial")
    assert [c for c in api_calls.mutating()
            if c[0] in ("CreateLaunchTemplateVersion", "StartInstanceRefresh")] == []
    assert sorted(fleet.versions(fleet.template_id("web"))) == [1]


def test_a_group_without_instance_roles_configured_fails_naming_the_key(fleet, function):
    report = function().invoke({})

    (entry,) = report["asgs"]
    assert entry["action"] == "failed"
    assert "ami-upgrade:instanceRoles names none" in entry["reason"]


def test_a_group_whose_template_role_is_passable_is_refreshed(fleet, function):
    report = function(INSTANCE_ROLES=json.dumps(["/apps/"])).invoke({})

    (entry,) = report["asgs"]
    assert entry["action"] == "refresh_started"
    assert fleet.refreshes("web")[0]["Status"] in ("Pending", "InProgress")
