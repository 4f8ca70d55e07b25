"""The Lambda role's policy: what the engine needs, scoped, and nothing wildcarded."""

from __future__ import annotations

import json
import re
from functools import cache

import botocore.session
import pytest
from botocore import xform_name

from components.policy import lambda_policy_document
from infra.harness import ACCOUNT, REPO, Rendered, render, rendered_stack

POLICY = "aws:iam/rolePolicy:RolePolicy"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0123abcd-4567-89ab-cdef-0123456789ab"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ami-upgrade-prod"
SCOPE_TAG = "aws:ResourceTag/ami-upgrade:parameter"

REQUIRED_ACTIONS = {
    "ssm:GetParameter",
    "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeInstanceStatus",
    "ec2:DescribeVolumes", "ec2:DescribeInstanceAttribute", "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeReplaceRootVolumeTasks",
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes",
    "autoscaling:StartInstanceRefresh", "autoscaling:CancelInstanceRefresh",
    "autoscaling:RollbackInstanceRefresh",
    "ec2:CreateLaunchTemplateVersion", "ec2:RunInstances", "ec2:CreateTags",
    "ec2:StopInstances", "ec2:StartInstances", "ec2:TerminateInstances",
    "ec2:AttachVolume", "ec2:DetachVolume", "ec2:CreateReplaceRootVolumeTask",
    "iam:PassRole", "lambda:InvokeFunction", "logs:CreateLogStream", "logs:PutLogEvents",
}
MUTATED_BY_SCOPE = ("instance/", "launch-template/", "autoScalingGroup:")


@cache
def with_topic_and_keys() -> Rendered:
    """prod plus a notification topic and a customer-managed EBS key."""
    return render("prod", {"ami-upgrade:kmsKeyArns": [KMS_KEY],
                           "ami-upgrade:notificationTopicArn": TOPIC})


def statements_of(stack: Rendered) -> list[dict]:
    return json.loads(stack.one(POLICY).inputs["policy"])["Statement"]


def document(scope: str, **extra) -> list[dict]:
    return lambda_policy_document(
        partition="aws", dns_suffix="amazonaws.com", region="us-east-1", account=ACCOUNT,
        parameter_name="/ami/linux/test", scope=scope, function_name="ami-upgrade-dev",
        log_group_name="/aws/lambda/ami-upgrade-dev", **extra)["Statement"]


def granting(statements: list[dict], action: str) -> list[dict]:
    return [s for s in statements if action in s["Action"]]


@pytest.fixture(params=["dev", "prod"])
def statements(request) -> list[dict]:
    return statements_of(rendered_stack(request.param))


def test_policy_grants_every_action_the_engine_needs(statements):
    granted = {a for s in statements for a in s["Action"]}
    assert granted >= REQUIRED_ACTIONS, REQUIRED_ACTIONS - granted


def handler_aws_calls() -> dict[str, set[str]]:
    """The AWS operations ``handler/`` calls, as IAM actions: method name -> candidates.

    Found by name in the source (``client.describe_volumes(``, ``get_paginator(
    "describe_...")``, an operation named in a string: ``describe(ec2, "describe_volumes"``,
    ``Call("stop_instances"``) against botocore's models of the clients the engine builds.
    """
    session = botocore.session.get_session()
    operations: dict[str, set[str]] = {}
    for service in ("autoscaling", "ec2", "events", "lambda", "sns", "ssm"):
        for operation in session.get_service_model(service).operation_names:
            action = "lambda:InvokeFunction" if operation == "Invoke" else f"{service}:{operation}"
            operations.setdefault(xform_name(operation), set()).add(action)
    source = "\n".join(p.read_text() for p in (REPO / "handler").rglob("*.py"))
    called = set(re.findall(r"\.([a-z][a-z0-9_]*)\(", source))
    called |= set(re.findall(r"get_paginator\(\s*[\"']([a-z0-9_]+)", source))
    # Operations named as data: describe(ec2, "describe_volumes", ...), Call("stop_instances", ...)
    called |= set(re.findall(r"[\"']([a-z][a-z0-9_]+)[\"']", source))
    return {name: operations[name] for name in called if name in operations}


def test_policy_grants_every_aws_call_the_handler_makes():
    granted = {a for s in statements_of(with_topic_and_keys()) for a in s["Action"]}
    calls = handler_aws_calls()
    assert "ssm:GetParameter" in calls["get_parameter"]  # the scan finds calls at all
    assert {name: sorted(actions) for name, actions in calls.items()
            if not actions & granted} == {}


def test_policy_names_every_action_without_wildcards(statements):
    actions = [a for s in statements for a in s["Action"]]
    assert [a for a in actions if "*" in a or ":" not in a] == []
    assert all("NotAction" not in s and "NotResource" not in s for s in statements)


def test_only_read_only_describe_calls_apply_to_every_resource(statements):
    unscoped = [s for s in statements if s["Resource"] == "*" or "*" in s["Resource"]]
    assert [s["Sid"] for s in unscoped] == ["Describe"]
    assert all(a.split(":")[1].startswith("Describe") for a in unscoped[0]["Action"])


def test_policy_fits_the_inline_policy_size_limit():
    policy = json.loads(with_topic_and_keys().one(POLICY).inputs["policy"])
    assert len(json.dumps(policy, separators=(",", ":"))) < 10_240


def test_every_statement_allows_and_has_a_unique_sid(statements):
    assert all(s["Effect"] == "Allow" for s in statements)
    assert len({s["Sid"] for s in statements}) == len(statements)


def test_pass_role_only_to_ec2(statements):
    (statement,) = granting(statements, "iam:PassRole")
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/*"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_tagged_scope_requires_the_scope_tag_to_change_instances_groups_and_templates(statements):
    parameter = json.dumps(statements)  # any stack: the parameter is in the conditions
    assert SCOPE_TAG in parameter
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else []
        if not any(marker in r for r in resources for marker in MUTATED_BY_SCOPE):
            continue
        condition = statement.get("Condition", {})
        equals = condition.get("StringEquals", {})
        scoped = (
            SCOPE_TAG in equals                                       # existing, tagged
            or "aws:RequestTag/ami-upgrade:parameter" in equals       # new, tagged at launch
            or "aws:RequestTag/ami-upgrade:in-flight" in equals       # the engine's own template
            or "aws:ResourceTag/ami-upgrade:in-flight" in equals      # ... used and deleted
            or "ec2:CreateAction" in equals                           # tags written at launch
            or condition.get("Null") == {"ec2:LaunchTemplate": "false"}  # from a tagged template
        )
        assert scoped, statement["Sid"]


def test_tag_conditions_name_the_stacks_parameter():
    for stack, parameter in (("dev", "/ami/linux/test"), ("prod", "/ami/linux/prod")):
        values = {s["Condition"]["StringEquals"][SCOPE_TAG]
                  for s in statements_of(rendered_stack(stack))
                  if SCOPE_TAG in s.get("Condition", {}).get("StringEquals", {})}
        assert values == {parameter}


def test_launching_from_a_template_requires_the_template_to_carry_the_scope_tag():
    (statement,) = [s for s in document("tagged") if s["Sid"] == "LaunchTemplates"]
    assert statement["Action"] == ["ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"]
    assert statement["Condition"] == {"StringEquals": {SCOPE_TAG: "/ami/linux/test"}}


def test_new_instances_without_a_template_must_be_tagged_for_the_parameter():
    (statement,) = [s for s in document("tagged") if s["Sid"] == "LaunchTaggedInstances"]
    assert statement["Resource"] == [f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:RequestTag/ami-upgrade:parameter": "/ami/linux/test"}}


def test_all_scope_has_no_tag_conditions_but_keeps_resource_types():
    statements = document("all")
    assert f"ResourceTag/{SCOPE_TAG}" not in json.dumps(statements)
    assert "RequestTag/ami-upgrade:parameter" not in json.dumps(statements)
    (refresh,) = granting(statements, "autoscaling:StartInstanceRefresh")
    assert refresh["Resource"] == [
        f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/*"]


def test_engine_tag_writes_are_limited_to_its_own_keys(statements):
    writes = [s for s in statements if any(a.endswith(":DeleteTags") for a in s["Action"])]
    assert {s["Sid"] for s in writes} == {"EngineTagsOnGroups", "EngineTagsOnInstances",
                                          "EngineTagsOnVolumes"}
    for statement in writes:
        condition = statement["Condition"]
        assert condition["Null"] == {"aws:TagKeys": "false"}
        assert condition["ForAllValues:StringLike"] == {"aws:TagKeys": ["ami-upgrade:*"]}
        assert sorted(condition["ForAllValues:StringNotEquals"]["aws:TagKeys"]) == [
            "ami-upgrade:exclude", "ami-upgrade:parameter", "ami-upgrade:strategy"]


def test_tags_on_create_only_while_launching_or_replacing_a_root_volume(statements):
    (statement,) = [s for s in granting(statements, "ec2:CreateTags")
                    if "ec2:CreateAction" in s.get("Condition", {}).get("StringEquals", {})]
    assert statement["Condition"]["StringEquals"]["ec2:CreateAction"] == [
        "CreateLaunchTemplate", "CreateReplaceRootVolumeTask", "RunInstances"]


def test_engine_launch_templates_are_only_its_own_in_flight_ones(statements):
    (create,) = granting(statements, "ec2:CreateLaunchTemplate")
    (delete,) = granting(statements, "ec2:DeleteLaunchTemplate")
    assert list(create["Condition"]["StringEquals"]) == ["aws:RequestTag/ami-upgrade:in-flight"]
    assert list(delete["Condition"]["StringEquals"]) == ["aws:ResourceTag/ami-upgrade:in-flight"]
    assert (create["Condition"]["StringEquals"]["aws:RequestTag/ami-upgrade:in-flight"]
            == delete["Condition"]["StringEquals"]["aws:ResourceTag/ami-upgrade:in-flight"])


def test_parameters_readable_are_only_the_followed_and_exclusions_parameters():
    (dev,) = granting(statements_of(rendered_stack("dev")), "ssm:GetParameter")
    (prod,) = granting(statements_of(rendered_stack("prod")), "ssm:GetParameter")
    assert dev["Resource"] == [f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/ami/linux/test"]
    assert prod["Resource"] == [
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/ami/linux/prod",
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/ami/linux/prod/exclusions"]


def test_the_function_may_invoke_only_itself(statements):
    (statement,) = granting(statements, "lambda:InvokeFunction")
    function = statement["Resource"][0]
    assert function.startswith(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ami-upgrade-")
    assert statement["Resource"] == [function, f"{function}:*"]


def test_the_function_writes_only_its_own_log_group(statements):
    (statement,) = granting(statements, "logs:PutLogEvents")
    group = statement["Resource"][0]
    assert group.startswith(f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/ami-upgrade-")
    assert statement["Resource"] == [group, f"{group}:log-stream:*"]
    assert "logs:CreateLogGroup" not in statement["Action"]


def test_no_kms_or_sns_grant_without_configured_keys_or_topic(statements):
    assert not [a for s in statements for a in s["Action"] if a.startswith(("kms:", "sns:"))]


def test_kms_is_usable_only_through_ec2_on_the_configured_keys():
    statements = [s for s in statements_of(with_topic_and_keys())
                  if any(a.startswith("kms:") for a in s["Action"])]
    assert {a for s in statements for a in s["Action"]} == {
        "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom", "kms:ReEncryptTo"}
    for statement in statements:
        assert statement["Resource"] == [KMS_KEY]
        assert statement["Condition"]["StringEquals"] == {
            "kms:ViaService": "ec2.us-east-1.amazonaws.com"}


def test_kms_grants_only_for_aws_resources():
    (statement,) = granting(statements_of(with_topic_and_keys()), "kms:CreateGrant")
    assert statement["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_summary_is_published_only_to_the_configured_topic():
    (statement,) = granting(statements_of(with_topic_and_keys()), "sns:Publish")
    assert (statement["Action"], statement["Resource"]) == (["sns:Publish"], [TOPIC])


def test_topic_receives_failed_async_invocations_and_alarms():
    stack = with_topic_and_keys()
    config = stack.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
    assert config["destinationConfig"] == {"onFailure": {"destination": TOPIC}}
    alarms = stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == 8
    assert [a.inputs["alarmActions"] for a in alarms] == [[TOPIC]] * len(alarms)
    assert stack.one("aws:lambda/function:Function").inputs["environment"]["variables"][
        "NOTIFICATION_TOPIC_ARN"] == TOPIC


@pytest.mark.parametrize("scope", ["tagged", "all"])
def test_the_policy_is_the_one_pinned_before_strategies_declared_their_own(scope):
    """The strategies' statements, rendered from the registry, give the policy as it was
    when it was written by hand (order aside): same statements, same conditions."""
    doc = lambda_policy_document(
        partition="aws", dns_suffix="amazonaws.com", region="us-east-1", account=ACCOUNT,
        parameter_name="/ami/linux/test", scope=scope, function_name="ami-upgrade-dev",
        log_group_name="/aws/lambda/ami-upgrade-dev",
        exclusions_parameter_name="/ami/exclusions",
        kms_key_arns=["arn:aws:kms:us-east-1:123456789012:key/k1"],
        notification_topic_arn="arn:aws:sns:us-east-1:123456789012:t")
    pinned = json.loads((REPO / "tests" / "fixtures" / "policy" / f"{scope}.json").read_text())
    assert doc["Version"] == pinned["Version"]
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid == {s["Sid"]: s for s in pinned["Statement"]}
    assert len(doc["Statement"]) == len(pinned["Statement"])
