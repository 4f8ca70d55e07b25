"""The Lambda function's IAM role and its least-privilege inline policy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.policy import lambda_policy_document, lambda_trust_policy
from components.stack_settings import check_role_accounts
from handler.settings import SCOPES


@dataclass(frozen=True)
class PermissionsArgs:
    parameter_name: str
    scope: str
    function_name: str
    log_group_name: str
    region: str
    exclusions_parameter_name: str | None = None
    kms_key_arns: tuple[str, ...] = ()
    notification_topic_arn: str | None = None
    instance_roles: tuple[str, ...] = ()   # role ARNs and role paths (iam:PassRole)
    hub_event_bus_arn: str | None = None   # a spoke: events:PutEvents on the hub's bus
    allowed_ami_owners: tuple[str, ...] = ("self",)   # ec2:Owner of launched images
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for name in ("parameter_name", "function_name", "log_group_name", "region"):
            if not getattr(self, name):
                raise ValueError(f"PermissionsArgs.{name}: required")
        if self.scope not in SCOPES:
            raise ValueError(f"PermissionsArgs.scope: expected tagged or all, got {self.scope!r}")
        if not isinstance(self.kms_key_arns, tuple):
            raise ValueError("PermissionsArgs.kms_key_arns: expected a tuple")
        if not isinstance(self.instance_roles, tuple):
            raise ValueError("PermissionsArgs.instance_roles: expected a tuple")


class Permissions(pulumi.ComponentResource):
    """``<name>-role`` (assumable by Lambda only) and ``<name>-policy`` (inline)."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: PermissionsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Permissions", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.role = aws.iam.Role(
            f"{name}-role",
            description=f"ami-upgrade: follows {args.parameter_name} ({args.scope} scope)",
            assume_role_policy=json.dumps(lambda_trust_policy()),
            tags=dict(args.tags),
            opts=child,
        )
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke_opts)
        partition = aws.get_partition_output(opts=invoke_opts)
        document = pulumi.Output.all(
            identity.account_id, partition.partition, partition.dns_suffix,
        ).apply(lambda values: json.dumps(lambda_policy_document(
            account=values[0],
            partition=values[1],
            dns_suffix=values[2],
            region=args.region,
            parameter_name=args.parameter_name,
            scope=args.scope,
            function_name=args.function_name,
            log_group_name=args.log_group_name,
            exclusions_parameter_name=args.exclusions_parameter_name,
            kms_key_arns=args.kms_key_arns,
            notification_topic_arn=args.notification_topic_arn,
            instance_roles=check_role_accounts(args.instance_roles, values[0]),
            hub_event_bus_arn=args.hub_event_bus_arn,
            allowed_ami_owners=args.allowed_ami_owners,
        ), indent=1))
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id, policy=document, opts=child)

        self.role_arn = self.role.arn
        self.register_outputs({"role_arn": self.role.arn, "role_name": self.role.name})
