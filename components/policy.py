"""The Lambda role's least-privilege policy as a pure function (no Pulumi import).

:func:`lambda_policy_document` returns the IAM policy document for one
deployment; the permissions component renders it once the account and partition
are known, and tests inspect it directly for both scopes.

Rules it keeps:

* No wildcard action (``*``, ``ec2:*``, ``kms:ReEncrypt*``): every action is named.
* ``Resource: "*"`` only for the read-only ``Describe*`` calls that support no
  resource-level permissions (those that do, :data:`SCOPED_READS`, get their own
  statement; ``tests/infra/test_policy_reference.py`` checks against the IAM reference).
* Every mutating EC2 / Auto Scaling statement names its resource types; in
  ``tagged`` scope it also requires the resource's tag ``ami-upgrade:parameter`` to
  equal the parameter (``aws:ResourceTag``), and new instances must carry it
  (``aws:RequestTag``) unless they are launched from a launch template, which
  then must carry it. So in ``tagged`` scope, tag the launch templates of the
  groups as well as the groups.
* Volumes are not required to carry the scope tag (data volumes rarely do): attaching,
  detaching and changing block devices need the instance *and* the volume to carry the
  engine's own in-flight tag for this parameter (``ami-upgrade:in-flight``, written on
  the old instance with the intent, on the new one at launch, on each volume with its
  home before it is detached, removed once the work is done); the engine writes it only
  on instances in scope. An Elastic IP moves only while it and the instance it goes onto
  carry that tag (the relaunch writes it on the old instance's addresses with the
  intent). Tag writes on existing instances, volumes, Elastic IPs and groups are limited
  to the engine's own ``ami-upgrade:`` progress keys and can never set or remove the tags
  users steer it with (``ami-upgrade:parameter``, ``ami-upgrade:exclude``,
  ``ami-upgrade:strategy``).
* ``iam:PassRole`` only to ``ec2.amazonaws.com`` and only for the roles configured
  in ``ami-upgrade:instanceRoles`` (ARNs, or paths such as ``/ec2/``); none configured,
  no PassRole at all. Relaunching an instance with a profile passes its role, and so
  does starting a group's refresh whose launch template names a profile (Auto Scaling
  checks the caller may launch from the template). KMS only
  through EC2 (``kms:ViaService``) on the configured keys, grants only for AWS
  resources; and ``kms:DescribeKey`` of the AWS-managed EBS key, asked for by its alias
  (``kms:RequestAlias``), to tell it from a customer key the role may not use.

What each standalone strategy needs is declared in its own module
(``STRATEGY.permissions``, plain data) and rendered here from the registry: its
Describe calls, its actions on instances and volumes, what it tags at creation, and
its own statements. A new strategy brings its IAM with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handler import tags as vocabulary
from handler.follow_up import rule_name as follow_up_rule_name
from handler.settings import SCOPES, Scope
from handler.standalone.iam import Grant
from handler.standalone.preflight import AWS_MANAGED_EBS_ALIAS
from handler.standalone.registry import STRATEGIES

SCOPE_TAG = vocabulary.PARAMETER
# The tags users set to steer the engine: the engine may read them, never write them.
USER_TAGS = (vocabulary.EXCLUDE, vocabulary.PARAMETER, vocabulary.STRATEGY)
ENGINE_TAG_PATTERN = f"{vocabulary.PREFIX}*"
IN_FLIGHT_TAG = vocabulary.IN_FLIGHT

# What every run reads (the planners', the observation's); strategies add their own.
DESCRIBE_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeInstanceRefreshes",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeVolumes",
    # Standalone preflight (handler/standalone/preflight.py): what a relaunch needs and
    # what reaches the instance, read before anything is stopped.
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeKeyPairs",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)
# Reads that support resource-level permissions: on these resource types only (in
# tagged scope, only tagged ones) rather than on "*".
SCOPED_READS = {"ec2:DescribeInstanceAttribute": "instance/*",
                "ec2:GetLaunchTemplateData": "instance/*"}
REFRESH_ACTIONS = (
    "autoscaling:CancelInstanceRefresh",
    "autoscaling:StartInstanceRefresh",
)
KMS_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


def parameter_arn(partition: str, region: str, account: str, name: str) -> str:
    """The parameter's ARN; a parameter followed by ARN (shared by another account) is it."""
    if name.startswith("arn:"):
        return name
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def lambda_policy_document(
    *,
    partition: str,
    dns_suffix: str,
    region: str,
    account: str,
    parameter_name: str,
    scope: str,
    function_name: str,
    log_group_name: str,
    exclusions_parameter_name: str | None = None,
    kms_key_arns: Sequence[str] = (),
    notification_topic_arn: str | None = None,
    instance_roles: Sequence[str] = (),
    hub_event_bus_arn: str | None = None,
    allowed_ami_owners: Sequence[str] = ("self",),
) -> dict[str, Any]:
    """The role policy document for one deployment (see the module docstring)."""
    if scope not in SCOPES:
        raise ValueError(f"scope: expected tagged or all, got {scope!r}")
    tagged = scope == Scope.TAGGED

    def ec2(resource: str, *, account_scoped: bool = True) -> str:
        return f"arn:{partition}:ec2:{region}:{account if account_scoped else ''}:{resource}"

    def when_tagged(condition: dict[str, Any] | None = None) -> dict[str, Any]:
        """``condition`` plus, in tagged scope, the resource's scope tag."""
        merged = dict(condition or {})
        if tagged:
            merged.setdefault("StringEquals", {})[f"aws:ResourceTag/{SCOPE_TAG}"] = parameter_name
        return merged

    engine_tag_keys_only = {
        "Null": {"aws:TagKeys": "false"},
        "ForAllValues:StringLike": {"aws:TagKeys": [ENGINE_TAG_PATTERN]},
        "ForAllValues:StringNotEquals": {"aws:TagKeys": list(USER_TAGS)},
    }
    in_flight = {"StringEquals": {f"aws:ResourceTag/{IN_FLIGHT_TAG}": parameter_name}}
    strategies = [s.permissions for s in STRATEGIES.values()]
    names = {"parameter": parameter_name, "scope_tag": SCOPE_TAG, "in_flight_tag": IN_FLIGHT_TAG,
             "partition": partition, "account": account}

    # ec2:Owner holds an account ID or an alias (amazon, aws-marketplace), never "self".
    owners = sorted({account if o == "self" else o for o in allowed_ami_owners})

    def fill(value: Any) -> Any:
        """A Grant's condition or resource with this deployment's names filled in."""
        if value == "{ami_owners}":
            return owners
        if isinstance(value, str):
            return value.format(**names)
        if isinstance(value, dict):
            return {fill(k): fill(v) for k, v in value.items()}
        return [fill(v) for v in value] if isinstance(value, list | tuple) else value

    def resource(pattern: str) -> str:
        if pattern.startswith("arn:"):
            return str(fill(pattern))
        return ec2(pattern, account_scoped=pattern.split("/")[0] not in ("image", "snapshot"))

    def grant(g: Grant) -> dict[str, Any]:
        return _statement(g.sid, g.actions, [resource(r) for r in g.resources],
                         fill(dict(g.condition)) if g.condition else None)

    def union(field: str) -> list[str]:
        return sorted({a for p in strategies for a in getattr(p, field)})

    reads = sorted({*DESCRIBE_ACTIONS, *union("describe")})
    scoped_reads = {t: [a for a in reads if SCOPED_READS.get(a) == t]
                    for t in sorted(set(SCOPED_READS.values()))}

    created: dict[str, set[str]] = {}
    for p in strategies:
        for action, types in p.tag_on_create.items():
            created.setdefault(action, set()).update(types)
    own_statements = [grant(g) for p in strategies for g in p.statements
                      if g.scope in (None, scope)]

    parameters = [parameter_arn(partition, region, account, parameter_name)]
    if exclusions_parameter_name:
        parameters.append(parameter_arn(partition, region, account, exclusions_parameter_name))

    groups = [f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*"
              ":autoScalingGroupName/*"]

    statements = [
        _statement("ReadParameters", ["ssm:GetParameter"], parameters),
        _statement("Describe", [a for a in reads if a not in SCOPED_READS], "*"),
        *(_statement("ReadInstances", actions, [ec2(t)], when_tagged())
          for t, actions in scoped_reads.items() if actions),
        _statement("InstanceRefresh", REFRESH_ACTIONS, groups, when_tagged()),
        _statement("EngineTagsOnGroups",
                  ["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"],
                  groups, when_tagged(engine_tag_keys_only)),
        # The groups' templates; never the engine's own shape templates (marked in flight),
        # which it launches from by their data, never by name.
        _statement(
            "LaunchTemplates", ["ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"],
            [ec2("launch-template/*")],
            when_tagged({"Null": {f"aws:ResourceTag/{IN_FLIGHT_TAG}": "true"}})),
        # The strategies': what each adds to the shared statements, then its own.
        _statement("TagOnCreate", ["ec2:CreateTags"],
                  [ec2(t) for t in sorted(set().union(*created.values()))],
                  {"StringEquals": {"ec2:CreateAction": sorted(created)}}),
        _statement("ManageInstances", union("on_instances"), [ec2("instance/*")], when_tagged()),
        _statement("VolumesOfManagedInstances", union("on_volumes"), [ec2("volume/*")]),
        _statement("InFlight", union("while_in_flight"),
                  [ec2("instance/*"), ec2("volume/*")], in_flight),
        *own_statements,
        _statement("EngineTagsOnInstances", ["ec2:CreateTags", "ec2:DeleteTags"],
                  [ec2("instance/*")], when_tagged(engine_tag_keys_only)),
        _statement("EngineTagsOnVolumes", ["ec2:CreateTags", "ec2:DeleteTags"],
                  [ec2("volume/*")], engine_tag_keys_only),
    ]
    tagged_by_strategies = union("progress_tags_on")
    if tagged_by_strategies:
        statements.append(_statement(
            "EngineTagsOnStrategyResources", ["ec2:CreateTags", "ec2:DeleteTags"],
            [ec2(t) for t in tagged_by_strategies], engine_tag_keys_only))
    if instance_roles:
        statements += pass_role_statements(partition, account, instance_roles)
    statements += _beyond_ec2(
        partition=partition, dns_suffix=dns_suffix, region=region, account=account,
        function_name=function_name, log_group_name=log_group_name,
        kms_key_arns=kms_key_arns, notification_topic_arn=notification_topic_arn,
        hub_event_bus_arn=hub_event_bus_arn)
    return {"Version": "2012-10-17", "Statement": statements}


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str] | str,
               condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Allow statement; actions sorted, so the rendered policy is stable."""
    stmt: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resources if isinstance(resources, str) else list(resources),
    }
    if condition:
        stmt["Condition"] = condition
    return stmt


def _beyond_ec2(*, partition: str, dns_suffix: str, region: str, account: str,
                function_name: str, log_group_name: str, kms_key_arns: Sequence[str],
                notification_topic_arn: str | None, hub_event_bus_arn: str | None
                ) -> list[dict[str, Any]]:
    """The statements outside EC2 and Auto Scaling: KMS through EC2, the function's own
    continuation, follow-up rule and logs, and where configured its topic and hub bus."""
    function_arn = f"arn:{partition}:lambda:{region}:{account}:function:{function_name}"
    log_group_arn = f"arn:{partition}:logs:{region}:{account}:log-group:{log_group_name}"
    statements: list[dict[str, Any]] = []
    if kms_key_arns:
        via_ec2 = {"kms:ViaService": f"ec2.{region}.{dns_suffix}"}
        statements += [
            _statement("KmsGrantsForEc2", ["kms:CreateGrant"], list(kms_key_arns),
                      {"StringEquals": via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}}),
            _statement("KmsUseThroughEc2", KMS_ACTIONS, list(kms_key_arns),
                      {"StringEquals": via_ec2}),
        ]
    # Planning tells the AWS-managed EBS key (no grant needed) from a customer key not in
    # kmsKeyArns (handler/standalone/preflight.py: read_facts): DescribeKey of that key only,
    # asked for by its alias, never of any other key.
    statements.append(_statement(
        "ReadAwsManagedEbsKey", ["kms:DescribeKey"],
        [f"arn:{partition}:kms:{region}:{account}:key/*"],
        {"StringEquals": {"kms:RequestAlias": AWS_MANAGED_EBS_ALIAS}}))
    statements += [
        _statement("InvokeSelfForContinuations", ["lambda:InvokeFunction"],
                  [function_arn, f"{function_arn}:*"]),
        # The follow-up rule (components/follow_up.py), and only it.
        _statement("SwitchFollowUpRule",
                  ["events:DescribeRule", "events:DisableRule", "events:EnableRule"],
                  [f"arn:{partition}:events:{region}:{account}:rule/"
                   f"{follow_up_rule_name(function_name)}"]),
        # Both act on log streams (IAM reference), not on the group itself.
        _statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                  [f"{log_group_arn}:log-stream:*"]),
    ]
    if notification_topic_arn:
        statements.append(_statement("PublishSummary", ["sns:Publish"], [notification_topic_arn]))
    if hub_event_bus_arn:   # a spoke: its report goes to the hub's bus
        statements.append(_statement("ReportToHub", ["events:PutEvents"], [hub_event_bus_arn]))
    return statements


def role_resource(partition: str, account: str, role: str) -> str:
    """A configured role (its ARN, kept) or role path (every role under it) as a resource."""
    return role if role.startswith("arn:") else f"arn:{partition}:iam::{account}:role{role}*"


def pass_role_statements(partition: str, account: str, roles: Sequence[str]
                         ) -> list[dict[str, Any]]:
    """PassRole for the configured instance roles, and the profile reads that let the
    function check, before it stops anything, that an instance's role is one of them."""
    return [
        {"Sid": "PassInstanceRoles", "Effect": "Allow", "Action": ["iam:PassRole"],
         "Resource": sorted({role_resource(partition, account, r) for r in roles}),
         "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
        {"Sid": "ReadInstanceProfiles", "Effect": "Allow", "Action": ["iam:GetInstanceProfile"],
         "Resource": [f"arn:{partition}:iam::{account}:instance-profile/*"]},
    ]


def lambda_trust_policy() -> dict[str, Any]:
    """Who may assume the role: the Lambda service only."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    }


# ------------------------------------------------------- the engine's tags, guarded
# Shipped for customers to attach: the engine decides from its progress tags, so whoever
# may write them may try to steer it. Only the function's role should.

TAG_ACTIONS = ("autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags", "ec2:CreateTags",
               "ec2:DeleteTags")
# Every key the engine writes (progress on instances, volumes, templates; refreshes on
# groups); the user tags that steer it (scope, exclude, strategy) stay writable.
ENGINE_TAG_KEYS = tuple(sorted({*vocabulary.PROGRESS_TAGS, vocabulary.REFRESH_ID,
                                vocabulary.REFRESH_AMI} - set(USER_TAGS)))


def engine_tag_guard(role_arns: Sequence[str]) -> dict[str, Any]:
    """The policy denying every principal but ``role_arns`` (the functions' roles) to write
    or delete the engine's tag keys, at creation too (``RunInstances``, ``CreateVolume``
    ... with tags need ``ec2:CreateTags``). A ``DeleteTags`` naming no key deletes every
    tag, engine keys included: denied as well. Attach it as an IAM policy (to users,
    groups, roles, or as a permissions boundary) or, unchanged, as an Organizations SCP."""
    not_the_engine = {"ArnNotEquals": {"aws:PrincipalArn": sorted(role_arns)}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "EngineTagsAreTheEnginesAlone", "Effect": "Deny", "Action": list(TAG_ACTIONS),
         "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": list(ENGINE_TAG_KEYS)},
                       **not_the_engine}},
        {"Sid": "NoDeletingEveryTag", "Effect": "Deny",
         "Action": ["autoscaling:DeleteTags", "ec2:DeleteTags"], "Resource": "*",
         "Condition": {"Null": {"aws:TagKeys": "true"}, **not_the_engine}},
    ]}
