"""The SSM parameter carrying a configuration too large for Lambda's 4 KB environment.

Created only when the stack's environment does not fit (``StackSettings.
configuration_document``): the function then finds ``CONFIGURATION_PARAMETER_NAME``
in its environment and reads the contract's variables from this parameter
(``handler.settings.load_settings``), validated by the same parsers. The role gets
``ssm:GetParameter`` on this one parameter through its own inline policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.stack_settings import read_policy


@dataclass(frozen=True)
class ConfigurationArgs:
    parameter_name: str
    document: str
    tier: str
    role_id: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.parameter_name.startswith("/"):
            raise ValueError("ConfigurationArgs.parameter_name: expected a path, got "
                             f"{self.parameter_name!r}")
        if self.tier not in ("Standard", "Advanced"):
            raise ValueError(f"ConfigurationArgs.tier: Standard or Advanced, got {self.tier!r}")
        if not isinstance(json.loads(self.document), dict):
            raise ValueError("ConfigurationArgs.document: expected a JSON object")


class Configuration(pulumi.ComponentResource):
    """``<name>-parameter`` (the configuration) and ``<name>-read`` (the role may read it)."""

    parameter: aws.ssm.Parameter
    read: aws.iam.RolePolicy

    def __init__(self, name: str, args: ConfigurationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Configuration", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.parameter = aws.ssm.Parameter(
            f"{name}-parameter",
            name=args.parameter_name,
            type="String",
            tier=args.tier,
            value=args.document,
            description="ami-upgrade: the function's configuration (too large for its "
                        "environment)",
            tags=dict(args.tags),
            opts=child,
        )
        self.read = aws.iam.RolePolicy(
            f"{name}-read", role=args.role_id,
            policy=self.parameter.arn.apply(lambda arn: json.dumps(read_policy(arn))),
            opts=child)
        self.register_outputs({"parameter_name": self.parameter.name})
