"""The Lambda role's policy: what the engine needs, scoped, and nothing wildcarded."""

from __future__ import annotations

import json
import re
from functools import cache

import botocore.session
import pytest
from botocore import xform_name

from components.policy import lambda_policy_document
from handler.settings import SettingsError
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
    "ec2:CreateLaunchTemplateVersion", "ec2:RunInstances", "ec2:CreateTags",
    "ec2:StopInstances", "ec2:StartInstances", "ec2:TerminateInstances",
    "ec2:AttachVolume", "ec2:DetachVolume", "ec2:CreateReplaceRootVolumeTask",
    "iam:PassRole", "iam:GetInstanceProfile", "lambda:InvokeFunction", "logs:CreateLogStream",
    "logs:PutLogEvents",
}
MUTATED_BY_SCOPE = ("instance/", "launch-template/", "autoScalingGroup:")


HUB_BUS = "arn:aws:events:us-east-1:111111111111:event-bus/ami-upgrade-hub-reports"


@cache
def with_topic_and_keys() -> Rendered:
    """prod plus a notification topic, a customer-managed EBS key and a hub to report to."""
    return render("prod", {"ami-upgrade:kmsKeyArns": [KMS_KEY],
                           "ami-upgrade:notificationTopicArn": TOPIC,
                           "ami-upgrade:hubEventBusArn": HUB_BUS,
                           "ami-upgrade:instanceRoles": [f"arn:aws:iam::{ACCOUNT}:role/app",
                                                         "/ec2/"]})


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


# botocore's service name -> IAM's action prefix, for every client the engine may build.
SERVICES = {"autoscaling": "autoscaling", "ec2": "ec2", "elb": "elasticloadbalancing",
            "elbv2": "elasticloadbalancing",
            "events": "events", "iam": "iam", "kms": "kms", "lambda": "lambda", "sns": "sns",
            "ssm": "ssm"}


def handler_aws_calls() -> dict[str, set[str]]:
    """The AWS operations ``handler/`` calls, as IAM actions: method name -> candidates.

    Found by name in the source (``client.describe_volumes(``, ``get_paginator(
    "describe_...")``, an operation named in a string: ``describe(ec2, "describe_volumes"``,
    ``Call("stop_instances"``) against botocore's models of the clients the engine builds.
    """
    session = botocore.session.get_session()
    operations: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            action = "lambda:InvokeFunction" if operation == "Invoke" else f"{prefix}:{operation}"
            operations.setdefault(xform_name(operation), set()).add(action)
    source = "\n".join(p.read_text() for p in (REPO / "handler").rglob("*.py"))
    called = set(re.findall(r"\.([a-z][a-z0-9_]*)\(", source))
    called |= set(re.findall(r"get_paginator\(\s*[\"']([a-z0-9_]+)", source))
    # Operations named as data: describe(ec2, "describe_volumes", ...), Call("stop_instances", ...)
    called |= set(re.findall(r"[\"']([a-z][a-z0-9_]+)[\"']", source))
    return {name: operations[name] for name in called if name in operations}


def test_policy_grants_nothing_the_handler_never_calls():
    """Dropped as never called: ssm:GetParameters, autoscaling:RollbackInstanceRefresh
    (AutoRollback is AWS's), CreateTags at launch on volumes and network interfaces
    (RunInstances tags the instance only). Every action granted is a call of handler/, or
    one AWS checks on the function's behalf (listed here with the call that needs it)."""
    indirect = {
        "iam:PassRole": "RunInstances/StartInstanceRefresh with an instance profile",
        "ec2:CreateTags": "TagSpecifications of RunInstances, CreateLaunchTemplate, ...",
        "ec2:RunInstances": "StartInstanceRefresh checks the caller may launch the template",
        "kms:CreateGrant": "EC2 on encrypted volumes", "kms:Decrypt": "", "kms:DescribeKey": "",
        "kms:GenerateDataKeyWithoutPlaintext": "", "kms:ReEncryptFrom": "",
        "kms:ReEncryptTo": "", "logs:CreateLogStream": "the Lambda runtime",
        "logs:PutLogEvents": "the Lambda runtime"}
    called = {a for actions in handler_aws_calls().values() for a in actions}
    granted = {a for s in statements_of(with_topic_and_keys()) for a in s["Action"]}
    assert sorted(granted - called - set(indirect)) == []


def test_policy_grants_every_aws_call_the_handler_makes():
    granted = {a for s in statements_of(with_topic_and_keys()) for a in s["Action"]}
    calls = handler_aws_calls()
    assert "ssm:GetParameter" in calls["get_parameter"]  # the scan finds calls at all
    assert "iam:GetInstanceProfile" in calls["get_instance_profile"]
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


def test_pass_role_only_to_ec2_and_only_the_configured_instance_roles(statements):
    (statement,) = granting(statements, "iam:PassRole")
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/ec2/*"]  # both stacks: /ec2/
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    (profiles,) = granting(statements, "iam:GetInstanceProfile")
    assert profiles["Resource"] == [f"arn:aws:iam::{ACCOUNT}:instance-profile/*"]


def test_instance_roles_render_as_arns_kept_and_paths_widened_to_their_roles():
    role = f"arn:aws:iam::{ACCOUNT}:role/app/web"
    (statement,) = granting(document("all", instance_roles=[role, "/ec2/", "/"]),
                            "iam:PassRole")
    assert statement["Resource"] == sorted([role, f"arn:aws:iam::{ACCOUNT}:role/ec2/*",
                                            f"arn:aws:iam::{ACCOUNT}:role/*"])


def test_no_instance_roles_no_pass_role_and_no_profile_reads():
    statements = document("tagged")
    assert granting(statements, "iam:PassRole") == []
    assert granting(statements, "iam:GetInstanceProfile") == []


@pytest.mark.parametrize("scope", ["tagged", "all"])
def test_volumes_move_only_between_resources_the_engine_marked_in_flight(scope):
    """The relaunch writes in-flight on the old instance with its intent, on the new one
    at launch and on each volume with its home before detaching it, and removes it once
    done; attach, detach and block-device changes need it on the instance and the volume."""
    statements = document(scope)
    moving = [s for s in statements if {"ec2:AttachVolume", "ec2:DetachVolume",
                                        "ec2:ModifyInstanceAttribute"} & set(s["Action"])]
    assert [s["Sid"] for s in moving] == ["InFlight", "ShapeInFlight"]
    in_flight = {"aws:ResourceTag/ami-upgrade:in-flight": "/ami/linux/test"}
    for owned in moving:
        assert owned["Resource"] == [f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*",
                                     f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/*"]
        assert owned["Condition"]["StringEquals"] == in_flight
    assert moving[0]["Action"] == ["ec2:AttachVolume", "ec2:DetachVolume"]
    assert moving[1]["Action"] == ["ec2:ModifyInstanceAttribute"]


@pytest.mark.parametrize("scope", ["tagged", "all"])
def test_instance_attributes_change_only_those_the_engine_sets(scope):
    """Block devices (DeleteOnTermination), source/dest check and termination protection:
    ``ec2:Attribute`` names one of them, and no user data, type, kernel, ramdisk, shutdown
    behaviour or security groups is set (``ec2:Attribute/<name>`` absent)."""
    (shape,) = granting(document(scope), "ec2:ModifyInstanceAttribute")
    assert shape["Condition"]["ForAllValues:StringEqualsIgnoreCase"] == {"ec2:Attribute": [
        "blockDeviceMapping", "blockDeviceMappings", "disableApiTermination",
        "sourceDestCheck"]}
    assert shape["Condition"]["Null"]["ec2:Attribute/UserData"] == "true"
    assert shape["Condition"]["Null"]["ec2:Attribute/InstanceType"] == "true"


def _modify_instance_attribute_request():
    return botocore.session.get_session().get_service_model("ec2").operation_model(
        "ModifyInstanceAttribute").input_shape


# What ModifyInstanceAttribute's request carries besides an attribute: no ec2:Attribute key.
NOT_ATTRIBUTES = {"InstanceId", "DryRun", "Attribute", "Value"}
# The parameters the engine sets (handler/standalone/relaunch.py), by botocore's name.
ENGINE_SETS = {"BlockDeviceMappings", "DisableApiTermination", "SourceDestCheck"}


def test_every_attribute_the_engine_never_sets_must_be_absent_from_its_requests():
    """Each other parameter of ModifyInstanceAttribute, as botocore's model has it today
    (by its name and its wire name, key names being case-insensitive), has its
    ``ec2:Attribute/<name>`` key required absent: a parameter botocore adds fails here."""
    (shape,) = granting(document("tagged"), "ec2:ModifyInstanceAttribute")
    request = _modify_instance_attribute_request()
    names = {n for member, s in request.members.items()
             if member not in NOT_ATTRIBUTES | ENGINE_SETS
             for n in (member, s.serialization.get("name") or member)}
    absent = {k.split("/", 1)[1].lower() for k, v in shape["Condition"]["Null"].items()
              if v == "true"}
    assert {n.lower() for n in names} - absent == set()
    assert {n.lower() for n in ENGINE_SETS} & absent == set()


def test_the_attribute_names_allowed_are_those_aws_knows_for_what_the_engine_sets():
    """``ec2:Attribute`` values: the API's enum value and the SDK's member name of each
    parameter the engine sets, and nothing else (compared ignoring case)."""
    (shape,) = granting(document("tagged"), "ec2:ModifyInstanceAttribute")
    request = _modify_instance_attribute_request()
    enum = {v.lower() for v in request.members["Attribute"].enum}
    wanted = {n.lower() for member in ENGINE_SETS
              for n in (member, request.members[member].serialization.get("name") or member)}
    allowed = {v.lower() for v in shape["Condition"]["ForAllValues:StringEqualsIgnoreCase"][
        "ec2:Attribute"]}
    assert allowed == wanted
    assert {"blockdevicemapping", "disableapitermination", "sourcedestcheck"} <= enum


@pytest.mark.parametrize("sid", ["LaunchOwnedImages", "ReplaceRootFromOwnedImages"])
def test_images_are_used_only_from_the_owners_the_stack_allows(sid):
    """``allowedAmiOwners`` as ``ec2:Owner`` on the image: ``self`` is the account's ID."""
    stack = render("dev", {"ami-upgrade:allowedAmiOwners": ["self", "amazon", "111122223333"]})
    (images,) = [s for s in statements_of(stack) if s["Sid"] == sid]
    assert images["Resource"] == ["arn:aws:ec2:us-east-1::image/*"]
    assert images["Condition"] == {"StringEquals": {
        "ec2:Owner": ["111122223333", ACCOUNT, "amazon"]}}


def test_no_other_statement_grants_a_use_of_images():
    images = [s["Sid"] for s in document("tagged") if any(":image/" in r for r in s["Resource"])]
    assert images == ["LaunchOwnedImages", "ReplaceRootFromOwnedImages"]


def test_reads_with_resource_level_permissions_are_scoped_to_instances():
    (tagged,) = granting(document("tagged"), "ec2:DescribeInstanceAttribute")
    assert (tagged["Sid"], tagged["Resource"]) == (
        "ReadInstances", [f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*"])
    assert tagged["Condition"] == {"StringEquals": {SCOPE_TAG: "/ami/linux/test"}}
    (every,) = granting(document("all"), "ec2:DescribeInstanceAttribute")
    assert "Condition" not in every


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
            # (and the volumes the engine owns while it moves them)
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
    assert statement["Condition"] == {"StringEquals": {SCOPE_TAG: "/ami/linux/test"},
                                      "Null": {"aws:ResourceTag/ami-upgrade:in-flight": "true"}}


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
                                          "EngineTagsOnVolumes",
                                          "EngineTagsOnStrategyResources"}
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
    (streams,) = statement["Resource"]     # both actions act on streams, not on the group
    assert re.match(f"^arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/ami-upgrade-"
                    r"(dev|prod):log-stream:\*$", streams)
    assert "logs:CreateLogGroup" not in statement["Action"]


AWS_MANAGED_KEY_READ = "ReadAwsManagedEbsKey"


def test_no_kms_or_sns_grant_without_configured_keys_or_topic(statements):
    assert not [a for s in statements if s["Sid"] != AWS_MANAGED_KEY_READ
                for a in s["Action"] if a.startswith(("kms:", "sns:"))]


@pytest.mark.parametrize("stack", ["dev", "with keys"])
def test_the_only_key_read_outside_the_configured_keys_is_the_aws_managed_ebs_key(stack):
    """Planning tells a volume under the AWS-managed key (no grant needed) from one under a
    customer key not configured: DescribeKey, and only when asked for by that alias."""
    rendered = rendered_stack("dev") if stack == "dev" else with_topic_and_keys()
    (statement,) = [s for s in statements_of(rendered) if s["Sid"] == AWS_MANAGED_KEY_READ]
    assert statement["Action"] == ["kms:DescribeKey"]
    assert statement["Resource"] == [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"]
    assert statement["Condition"] == {"StringEquals": {"kms:RequestAlias": "alias/aws/ebs"}}


def test_kms_is_usable_only_through_ec2_on_the_configured_keys():
    statements = [s for s in statements_of(with_topic_and_keys())
                  if any(a.startswith("kms:") for a in s["Action"])
                  and s["Sid"] != AWS_MANAGED_KEY_READ]
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
    assert len(alarms) == 9   # reporting to a hub: its refresh-ended rule is watched too
    assert [a.inputs["alarmActions"] for a in alarms] == [[TOPIC]] * len(alarms)
    assert stack.one("aws:lambda/function:Function").inputs["environment"]["variables"][
        "NOTIFICATION_TOPIC_ARN"] == TOPIC


def pinned_document(scope: str) -> dict:
    return lambda_policy_document(
        partition="aws", dns_suffix="amazonaws.com", region="us-east-1", account=ACCOUNT,
        parameter_name="/ami/linux/test", scope=scope, function_name="ami-upgrade-dev",
        log_group_name="/aws/lambda/ami-upgrade-dev",
        exclusions_parameter_name="/ami/exclusions",
        kms_key_arns=["arn:aws:kms:us-east-1:123456789012:key/k1"],
        notification_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
        instance_roles=["/ec2/"])


def pinned(name: str) -> dict:
    return json.loads((REPO / "tests" / "fixtures" / "policy" / name).read_text())


@pytest.mark.parametrize("scope", ["tagged", "all"])
def test_the_policy_is_the_one_pinned(scope):
    """The strategies' statements, rendered from the registry, give the pinned policy
    (order aside): same statements, same conditions."""
    doc = pinned_document(scope)
    expected = pinned(f"{scope}.json")
    assert doc["Version"] == expected["Version"]
    assert {s["Sid"]: s for s in doc["Statement"]} == {s["Sid"]: s for s in expected["Statement"]}
    assert len(doc["Statement"]) == len(expected["Statement"])


# What issue 10 changed, statement by statement, from the policy pinned before it
# (tests/fixtures/policy/before-issue-10/): every difference has its reason here.
CHANGES = {
    "ReadParameters": "ssm:GetParameters dropped: the function calls GetParameter only",
    "InstanceRefresh": "autoscaling:RollbackInstanceRefresh dropped: never called "
                       "(AutoRollback is AWS's own)",
    "Describe": "ec2:DescribeInstanceAttribute moved to ReadInstances (it supports "
                "resource-level permissions); the standalone preflight's reads added (key "
                "pairs, subnets, security groups, type offerings, route tables, load balancers, "
                "target groups and their health: issue 13)",
    "ReadInstances": "DescribeInstanceAttribute and GetLaunchTemplateData (an instance's "
                     "shape in one read, issue 12) on instance/*, in tagged scope tagged ones",
    "TagOnCreate": "network-interface/* and volume/* dropped: RunInstances tags the instance "
                   "only",
    "ManageInstances": "AttachVolume, DetachVolume, ModifyInstanceAttribute moved to InFlight; "
                       "AssociateAddress moved to MoveElasticIpsOntoInFlight",
    "MoveElasticIps": "elastic-ip/* moved to MoveElasticIpsOntoInFlight: only addresses "
                      "carrying the in-flight tag move",
    "MoveElasticIpsOntoInFlight": "AssociateAddress only of an Elastic IP and onto an "
                                  "instance both carrying the engine's in-flight tag for the "
                                  "parameter (issue 18)",
    "EngineTagsOnStrategyResources": "the relaunch's progress tags on the old instance's "
                                     "Elastic IPs (the in-flight mark that lets them move), "
                                     "engine keys only",
    "VolumesOfManagedInstances": "AttachVolume, DetachVolume, ModifyInstanceAttribute moved "
                                 "to InFlight",
    "InFlight": "volume moves only between an instance and a volume that both carry the "
                "engine's in-flight tag for the parameter",
    "LaunchResources": "image/* moved to LaunchOwnedImages",
    "LaunchOwnedImages": "RunInstances only from images of the owners allowedAmiOwners names "
                         "(ec2:Owner; self is the deployment's account)",
    "ReplaceRootVolumeSources": "image/* moved to ReplaceRootFromOwnedImages",
    "ReplaceRootFromOwnedImages": "CreateReplaceRootVolumeTask only from images of the "
                                  "allowed owners (ec2:Owner)",
    "UseShapeTemplates": "replaced by DeleteShapeTemplates: the engine launches from the "
                         "kept data (whose tags carry the scope tag), never naming the template",
    "DeleteShapeTemplates": "DeleteLaunchTemplate only of templates in flight",
    "ShapeInFlight": "ModifyInstanceAttribute only on resources in flight, and only for the "
                     "attributes the engine sets (ec2:Attribute), never user data or type",
    "PassInstanceProfileRoles": "replaced by PassInstanceRoles (was role/*: any role)",
    "PassInstanceRoles": "PassRole only for ami-upgrade:instanceRoles (here /ec2/)",
    "ReadInstanceProfiles": "iam:GetInstanceProfile: the preflight reads an instance's role",
    "SwitchFollowUpRule": "events:DescribeRule/EnableRule/DisableRule on the follow-up rule "
                          "only (issue 13: work in flight is always scheduled)",
    "ReadAwsManagedEbsKey": "kms:DescribeKey of alias/aws/ebs only (kms:RequestAlias): the "
                            "preflight tells a volume under the AWS-managed key from one under "
                            "a customer key not in kmsKeyArns",
    "WriteOwnLogs": "the bare log group ARN dropped: CreateLogStream and PutLogEvents act "
                    "on log-stream ARNs only (IAM reference)",
    "LaunchTemplates": "never on the engine's own shape templates (marked in flight): it "
                       "launches from their data, never by name (issue 18)",
}
# Statements of one scope only, and what changed in them.
CHANGES_IN_SCOPE = {"tagged": {
    "LaunchFromTaggedTemplates": "the scope tag required of the instance wherever Auto "
                                 "Scaling's check of a group's template carries request tags "
                                 "(StringEqualsIfExists; issue 18)"}, "all": {}}


@pytest.mark.parametrize("scope", ["tagged", "all"])
def test_every_change_from_the_policy_before_issue_10_is_explained(scope):
    before = {s["Sid"]: s for s in pinned(f"before-issue-10/{scope}.json")["Statement"]}
    after = {s["Sid"]: s for s in pinned(f"{scope}.json")["Statement"]}
    changed = {sid for sid in before.keys() | after.keys() if before.get(sid) != after.get(sid)}
    assert changed == set(CHANGES) | set(CHANGES_IN_SCOPE[scope])
    granted = {a for s in after.values() for a in s["Action"]}
    assert {"ssm:GetParameters", "autoscaling:RollbackInstanceRefresh"} & granted == set()


@pytest.mark.parametrize(("roles", "says"), [
    (["arn:aws:iam::123456789012:role/*"], "ami-upgrade:instanceRoles: "
                                           "'arn:aws:iam::123456789012:role/*': no wildcards"),
    (["ec2"], "ami-upgrade:instanceRoles: 'ec2': a role path must start and end with '/'"),
    (["arn:aws:iam::123456789012:instance-profile/app"],
     "ami-upgrade:instanceRoles: not an IAM role ARN"),
])
def test_preview_refuses_instance_roles_that_are_not_roles_or_paths(roles, says):
    with pytest.raises(SettingsError) as raised:
        render("dev", {"ami-upgrade:instanceRoles": roles})
    assert str(raised.value).startswith(says)


def test_preview_refuses_instance_roles_of_another_account_before_any_resource():
    """The account is the caller's, known at preview through the identity invoke, which
    the program asks before it registers anything: the settings refuse the key."""
    foreign = "arn:aws:iam::210987654321:role/app"
    with pytest.raises(SettingsError) as raised:
        render("dev", {"ami-upgrade:instanceRoles": [foreign]})
    assert str(raised.value) == (f"ami-upgrade:instanceRoles: {foreign} not of the "
                                 f"deployment's account {ACCOUNT}")


def test_instance_roles_reach_the_function_as_the_policy_names_them():
    role = f"arn:aws:iam::{ACCOUNT}:role/a"
    stack = render("dev", {"ami-upgrade:instanceRoles": ["/ec2/", role]})
    variables = stack.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert json.loads(variables["INSTANCE_ROLES"]) == ["/ec2/", f"arn:aws:iam::{ACCOUNT}:role/a"]
    (statement,) = granting(statements_of(stack), "iam:PassRole")
    assert statement["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/a",
                                     f"arn:aws:iam::{ACCOUNT}:role/ec2/*"]
