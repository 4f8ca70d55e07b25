"""The function's role policy, as each stack renders it in both scopes, evaluated offline
(``iam_eval``): what the engine itself could be steered into doing is denied by the role
too. Each call is one resource of the request, as IAM authorises each resource of it."""

from __future__ import annotations

import json
from functools import cache

import pytest

from tests.infra.harness import render

from .iam_eval import ALLOW, Call, evaluate

ACCOUNT = "123456789012"
PARAMETER = "/ami/linux/test"   # both stacks are rendered following it (dev's own)
INSTANCE = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"
VOLUME = f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-0123456789abcdef0"
IMAGE = "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0"
TEMPLATE = f"arn:aws:ec2:us-east-1:{ACCOUNT}:launch-template/lt-0123456789abcdef0"
ELASTIC_IP = f"arn:aws:ec2:us-east-1:{ACCOUNT}:elastic-ip/eipalloc-0123456789abcdef0"
FOREIGN_PUBLIC_IMAGE = {"ec2:Owner": "210987654321", "ec2:Public": "true"}
IN_SCOPE = {"aws:ResourceTag/ami-upgrade:parameter": PARAMETER}
IN_FLIGHT = {**IN_SCOPE, "aws:ResourceTag/ami-upgrade:in-flight": PARAMETER}
CASES = [(stack, scope) for stack in ("dev", "prod") for scope in ("tagged", "all")]
POLICY = "aws:iam/rolePolicy:RolePolicy"


@cache
def _policy(stack: str, scope: str) -> dict:
    """Rendered once per stack and scope (the tests only read it)."""
    rendered = render(stack, {"ami-upgrade:scope": scope, "ami-upgrade:parameterName": PARAMETER,
                              "ami-upgrade:instanceRoles": ["/ec2/"]})
    return json.loads(rendered.one(POLICY).inputs["policy"])


DENIED = {
    "an Elastic IP moved onto an instance not in flight": Call(
        "ec2:AssociateAddress", INSTANCE, IN_SCOPE),
    "user data set on an instance not in flight": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE, IN_SCOPE),
    "user data set on an instance in flight": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute": "userData", "ec2:Attribute/UserData": "IyEvYmluL3No"}),
    "user data set on an instance in flight, named by its parameter": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute/UserData": "IyEvYmluL3No"}),
    "the type of an instance in flight changed": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute": "instanceType",
         "ec2:Attribute/InstanceType": "p5.48xlarge"}),
    "an Elastic IP not in flight moved (any address of the account)": Call(
        "ec2:AssociateAddress", ELASTIC_IP, {}),
    "an Elastic IP carrying the user tags only moved": Call(
        "ec2:AssociateAddress", ELASTIC_IP, IN_SCOPE),
    "an Elastic IP in flight for another parameter moved": Call(
        "ec2:AssociateAddress", ELASTIC_IP, {"aws:ResourceTag/ami-upgrade:in-flight": "/x"}),
    "an Elastic IP put in scope": Call(
        "ec2:CreateTags", ELASTIC_IP, {"aws:TagKeys": ["ami-upgrade:parameter"]}),
    "user data set on an instance in flight, by the generic Attribute form": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE, {**IN_FLIGHT, "ec2:Attribute": "userData"}),
    "ENA support turned off on an instance in flight": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute/EnaSupport": "false"}),
    "stop protection set on an instance in flight": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute/DisableApiStop": "true"}),
    "the security groups of an instance in flight replaced": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute/GroupId": ["sg-0123456789abcdef0"]}),
    "a volume attached to an instance not in flight": Call(
        "ec2:AttachVolume", INSTANCE, IN_SCOPE),
    "a volume not in flight attached": Call("ec2:AttachVolume", VOLUME, {}),
    "an excluded instance un-excluded": Call(
        "ec2:DeleteTags", INSTANCE, {**IN_SCOPE, "aws:TagKeys": ["ami-upgrade:exclude"]}),
    "an instance put in scope": Call(
        "ec2:CreateTags", INSTANCE, {**IN_SCOPE, "aws:TagKeys": ["ami-upgrade:parameter"]}),
    "every tag of an instance deleted": Call("ec2:DeleteTags", INSTANCE, IN_SCOPE),
    "a role outside instanceRoles passed": Call(
        "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin",
        {"iam:PassedToService": "ec2.amazonaws.com"}),
    "a configured role passed to another service": Call(
        "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/ec2/app",
        {"iam:PassedToService": "lambda.amazonaws.com"}),
    "a launch from a public image of another account": Call(
        "ec2:RunInstances", IMAGE, FOREIGN_PUBLIC_IMAGE),
    "a launch from an Amazon image (allowedAmiOwners: self)": Call(
        "ec2:RunInstances", IMAGE, {"ec2:Owner": "amazon", "ec2:Public": "true"}),
    "a root volume replaced from a public image of another account": Call(
        "ec2:CreateReplaceRootVolumeTask", IMAGE, FOREIGN_PUBLIC_IMAGE),
    "a launch by name from the engine's shape template (marked in flight)": Call(
        "ec2:RunInstances", TEMPLATE,
        {**IN_SCOPE, "aws:ResourceTag/ami-upgrade:in-flight": PARAMETER}),
    "a new version of the engine's shape template": Call(
        "ec2:CreateLaunchTemplateVersion", TEMPLATE,
        {**IN_SCOPE, "aws:ResourceTag/ami-upgrade:in-flight": PARAMETER}),
    "another parameter read": Call(
        "ssm:GetParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/secrets/db", {}),
}
ALLOWED = {
    "a launch from an image of the deployment's account": Call(
        "ec2:RunInstances", IMAGE, {"ec2:Owner": ACCOUNT, "ec2:Public": "false"}),
    "a root volume replaced from an image of the deployment's account": Call(
        "ec2:CreateReplaceRootVolumeTask", IMAGE, {"ec2:Owner": ACCOUNT, "ec2:Public": "false"}),
    "source/dest check set on the new instance in flight": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute": "sourceDestCheck",
         "ec2:Attribute/SourceDestCheck": "false"}),
    "termination protection lifted from the new instance in flight": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE,
        {**IN_FLIGHT, "ec2:Attribute": "disableApiTermination"}),
    "DeleteOnTermination restored on a volume in flight": Call(
        "ec2:ModifyInstanceAttribute", VOLUME,
        {**IN_FLIGHT, "ec2:Attribute": "blockDeviceMapping"}),
    "an attribute change whose request names no attribute key": Call(
        "ec2:ModifyInstanceAttribute", INSTANCE, IN_FLIGHT),
    "an Elastic IP moved onto the new instance in flight": Call(
        "ec2:AssociateAddress", INSTANCE, IN_FLIGHT),
    "the old instance's Elastic IP, marked in flight with the intent, moved": Call(
        "ec2:AssociateAddress", ELASTIC_IP, {"aws:ResourceTag/ami-upgrade:in-flight": PARAMETER}),
    "the intent's tags written on the old instance's Elastic IP": Call(
        "ec2:CreateTags", ELASTIC_IP, {"aws:TagKeys": [
            "ami-upgrade:in-flight", "ami-upgrade:target-ami", "ami-upgrade:volumes",
            "ami-upgrade:attempt"]}),
    "the progress tags removed from the Elastic IP": Call(
        "ec2:DeleteTags", ELASTIC_IP, {"aws:TagKeys": ["ami-upgrade:in-flight"]}),
    "a launch from a group's template (Auto Scaling's check at a refresh)": Call(
        "ec2:RunInstances", TEMPLATE, IN_SCOPE),
    "a volume in flight attached to an instance in flight": Call(
        "ec2:AttachVolume", VOLUME, IN_FLIGHT),
}


@pytest.mark.parametrize(("stack", "scope"), CASES)
@pytest.mark.parametrize("attack", sorted(DENIED))
def test_the_role_denies_each_call_the_engine_could_be_steered_into(stack, scope, attack):
    assert evaluate([_policy(stack, scope)], DENIED[attack]) != ALLOW


@pytest.mark.parametrize(("stack", "scope"), CASES)
@pytest.mark.parametrize("call", sorted(ALLOWED))
def test_the_role_allows_the_engines_own_moves(stack, scope, call):
    assert evaluate([_policy(stack, scope)], ALLOWED[call]) == ALLOW


IN_FLIGHT_REQUEST = {"aws:RequestTag/ami-upgrade:in-flight": PARAMETER}
TAGGED_DENIED = {
    "a launch from a template marked in flight (the engine's shape template)": Call(
        "ec2:RunInstances", TEMPLATE, {"aws:ResourceTag/ami-upgrade:in-flight": PARAMETER}),
    "an instance launched without the scope tag": Call(
        "ec2:RunInstances", INSTANCE, IN_FLIGHT_REQUEST),
    "an instance launched with another parameter's scope tag": Call(
        "ec2:RunInstances", INSTANCE,
        {**IN_FLIGHT_REQUEST, "aws:RequestTag/ami-upgrade:parameter": "/ami/other"}),
    "an instance launched from a template with another parameter's scope tag": Call(
        "ec2:RunInstances", INSTANCE,
        {"ec2:LaunchTemplate": TEMPLATE, "aws:RequestTag/ami-upgrade:parameter": "/ami/other"}),
}
# Auto Scaling's check of the template at a refresh: AWS does not document whether its
# request carries the template's tags, so both forms must pass.
TAGGED_ALLOWED = {
    "an instance from a group's template, the check carrying no request tag": Call(
        "ec2:RunInstances", INSTANCE, {"ec2:LaunchTemplate": TEMPLATE}),
    "an instance from a group's template, the check carrying its scope tag": Call(
        "ec2:RunInstances", INSTANCE,
        {"ec2:LaunchTemplate": TEMPLATE, "aws:RequestTag/ami-upgrade:parameter": PARAMETER}),
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("call", sorted(TAGGED_ALLOWED))
def test_tagged_scope_allows_auto_scalings_check_of_a_groups_template(stack, call):
    assert evaluate([_policy(stack, "tagged")], TAGGED_ALLOWED[call]) == ALLOW


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("attack", sorted(TAGGED_DENIED))
def test_tagged_scope_denies_launches_that_do_not_carry_the_scope_tag(stack, attack):
    assert evaluate([_policy(stack, "tagged")], TAGGED_DENIED[attack]) != ALLOW


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_tagged_scope_allows_the_engines_launch_carrying_the_scope_tag(stack):
    call = Call("ec2:RunInstances", INSTANCE,
                {**IN_FLIGHT_REQUEST, "aws:RequestTag/ami-upgrade:parameter": PARAMETER})

    assert evaluate([_policy(stack, "tagged")], call) == ALLOW


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_tagged_scope_denies_stopping_an_instance_outside_it(stack):
    call = Call("ec2:StopInstances", INSTANCE, {"aws:ResourceTag/ami-upgrade:parameter": "/x"})

    assert evaluate([_policy(stack, "tagged")], call) != ALLOW
