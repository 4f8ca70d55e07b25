"""Preview refuses, naming the key, what AWS would refuse at ``up`` (issue 10, item 1).

Every case goes through the real program (``__main__.py``) under Pulumi's mocks.
"""

from __future__ import annotations

import json
import re

import pytest

from components import limits
from components.stack_settings import load_stack_settings
from handler.settings import CONFIGURATION_PARAMETER_VARIABLE, SettingsError
from infra.harness import render, stack_config

KMS = "arn:aws:kms:us-east-1:123456789012:key/{:08x}-4567-89ab-cdef-0123456789ab"
FUNCTION = "aws:lambda/function:Function"
PARAMETER = "aws:ssm/parameter:Parameter"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def refused(overrides: dict, stack: str = "dev") -> str:
    with pytest.raises(SettingsError) as raised:
        render(stack, {f"ami-upgrade:{k}": v for k, v in overrides.items()})
    return str(raised.value)


def instances(count: int) -> list[str]:
    return [f"i-{n:017x}" for n in range(count)]


@pytest.mark.parametrize(("tags", "starts"), [
    ({"owner": "team#1, ops!"}, "ami-upgrade:tags.owner: the tag value 'team#1, ops!' has "
                                "character(s) AWS refuses ('#' ',' '!')"),
    ({"cost center?": "1234"}, "ami-upgrade:tags.cost center?: the tag key"),
    ({f"k{n}": "v" for n in range(48)}, "ami-upgrade:tags: 48 tags plus the 3 standard ones "
                                        "exceed AWS's 50"),
])
def test_tags_aws_refuses(tags, starts):
    assert refused({"tags": tags}).startswith(starts)


def test_tags_aws_accepts_pass():
    rendered = render("dev", {"ami-upgrade:tags": {"owner": "Équipe plateforme", "a/b": "x=y@z",
                                                   **{f"k{n}": "v" for n in range(45)}}})
    assert rendered.one(FUNCTION).inputs["tags"]["owner"] == "Équipe plateforme"


@pytest.mark.parametrize(("entry", "says"), [
    ({"MaxHealthyPercentage": 150}, "MaxHealthyPercentage needs MinHealthyPercentage"),
    ({"MinHealthyPercentage": 40, "MaxHealthyPercentage": 150}, "must be at most 100"),
    ({"CheckpointPercentages": [50, 20]}, "strictly increasing"),
    ({"CheckpointDelay": 60}, "CheckpointDelay needs CheckpointPercentages"),
    ({"BakeTime": 172_801}, "from 0 to 172800"),
    ({"StandbyInstances": "Keep"}, "expected one of Terminate, Ignore, Wait"),
])
def test_refresh_preferences_aws_refuses(entry, says):
    message = refused({"asgConfigurations": {"default": entry}})
    assert message.startswith("ami-upgrade:asgConfigurations['default']") and says in message


def test_a_group_entry_may_add_max_to_the_defaults_min():
    rendered = render("dev", {"ami-upgrade:asgConfigurations": {
        "default": {"MinHealthyPercentage": 90}, "web": {"MaxHealthyPercentage": 150}}})
    assert json.loads(rendered.one(FUNCTION).inputs["environment"]["variables"][
        "ASG_CONFIGURATIONS"])["web"] == {"MaxHealthyPercentage": 150}


@pytest.mark.parametrize(("key", "name"), [
    ("parameterName", "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
    ("parameterName", "ssm-images/linux"),
    ("exclusionsParameterName", "/AWS/exclusions"),
])
def test_parameter_names_ssm_reserves_are_refused_with_the_reason(key, name):
    message = refused({key: name})
    assert message.startswith(f"ami-upgrade:{key}: {name!r} begins with 'aws' or 'ssm'")
    assert "copy the value into a parameter of your own" in message


def test_too_many_levels_of_hierarchy_are_refused():
    assert "more than 15 levels" in refused({"parameterName": "/a" * 16})


def test_a_policy_over_iams_limit_is_refused_naming_the_kms_keys():
    message = refused({"kmsKeyArns": [KMS.format(n) for n in range(30)]})
    assert re.match(r"^ami-upgrade:kmsKeyArns: the role's inline policy would be \d+ "
                    r"characters \(whitespace excluded\); IAM allows 10240", message), message


def test_a_policy_over_iams_limit_is_refused_naming_a_long_parameter_name():
    # The name appears many times (its ARN, the tag conditions, the in-flight conditions).
    message = refused({"parameterName": "/ami/" + "x" * 460})
    size = re.match(r"^ami-upgrade:parameterName: the role's inline policy would be (\d+) "
                    r"characters \(whitespace excluded\); IAM allows 10240", message)
    assert size and int(size.group(1)) > 10_240, message


def test_a_parameter_name_too_long_for_the_rules_description_is_refused():
    message = refused({"parameterName": "/ami/" + "x" * 480}, stack="dev")
    assert message.startswith("ami-upgrade:parameterName: too long for the rule's description")


def test_a_parameter_name_too_long_for_the_roles_description_is_refused():
    name = "/" + "x" * 966                     # its ARN has SSM's 1011 characters exactly
    assert limits.parameter_arn_length("us-east-1", name) == limits.PARAMETER_ARN_LIMIT
    assert refused({"parameterName": name}).startswith(
        "ami-upgrade:parameterName: too long for the role's description (1003 of IAM's 1000")


def test_a_parameter_name_too_long_for_its_arn_is_refused():
    message = refused({"parameterName": "/" + "x" * 1000})
    assert message.startswith("ami-upgrade:parameterName: the parameter's ARN would be")


def test_a_configuration_over_4_kb_goes_into_a_parameter_the_function_may_read():
    excluded = instances(250)
    rendered = render("prod", {"ami-upgrade:excludedInstances": excluded})
    variables = rendered.one(FUNCTION).inputs["environment"]["variables"]
    assert variables == {CONFIGURATION_PARAMETER_VARIABLE:
                         "/ami-upgrade/ami-upgrade-prod/configuration"}
    parameter = rendered.one(PARAMETER).inputs
    secret = parameter["value"]   # pulumi_aws marks the value secret: Pulumi's wrapper
    document = json.loads(secret["value"])
    assert (parameter["name"], parameter["type"], parameter["tier"]) == (
        "/ami-upgrade/ami-upgrade-prod/configuration", "String", "Advanced")
    assert document["EXCLUDED_INSTANCES"] == sorted(excluded)   # JSON, not escaped text
    reads = [json.loads(p.inputs["policy"]) for p in rendered.of_type(ROLE_POLICY)
             if "ReadOwnConfiguration" in p.inputs["policy"]]
    assert reads[0]["Statement"][0]["Resource"] == [rendered.one(PARAMETER).outputs["arn"]]
    function = rendered.one(FUNCTION)
    assert rendered.one(PARAMETER).urn in function.dependencies


def test_a_configuration_too_large_even_for_a_parameter_is_refused_naming_its_largest_key():
    message = refused({"excludedInstances": instances(450)}, stack="prod")
    assert message.startswith("ami-upgrade:excludedInstances, ")
    assert "more than Lambda's environment (4096 bytes)" in message


def test_the_shipped_stacks_fit_every_limit():
    for stack in ("dev", "prod"):
        values = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()
                  if k.startswith("ami-upgrade:")}
        settings = load_stack_settings(values, stack=stack, region="us-east-1")
        assert settings.configuration_document() is None
        assert limits.environment_size(settings.environment()) < limits.LAMBDA_ENVIRONMENT_LIMIT
        assert limits.policy_size(*settings.role_policies()) < limits.INLINE_POLICY_LIMIT


def test_the_policy_size_is_measured_on_the_policy_the_stack_renders():
    rendered = render("prod")
    values = {k.split(":", 1)[1]: v for k, v in stack_config("prod").items()
              if k.startswith("ami-upgrade:")}
    settings = load_stack_settings(values, stack="prod", region="us-east-1")
    deployed = [json.loads(p.inputs["policy"]) for p in rendered.of_type(ROLE_POLICY)]
    assert limits.policy_size(*deployed) == limits.policy_size(*settings.role_policies())
    role = rendered.one("aws:iam/role:Role").inputs
    assert role["description"] == settings.role_description()
