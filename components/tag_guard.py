"""The engine's tag guard as an IAM managed policy (``ami-upgrade:engineTagGuard``).

The document is :func:`components.policy.engine_tag_guard` for the function's role: it
denies every other principal writing or deleting the engine's tag keys. The stack only
creates the policy; attaching it (to the groups, roles and users that may tag EC2
resources, or as their permissions boundary) is the operator's decision, as it reaches
beyond this stack's own resources (docs/security.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.policy import engine_tag_guard


@dataclass(frozen=True)
class EngineTagGuardArgs:
    role_arn: pulumi.Input[str]   # the function's role: the one principal allowed
    function_name: str            # names the policy (<function>-tag-guard)
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.function_name:
            raise ValueError("EngineTagGuardArgs.function_name: required")


class EngineTagGuard(pulumi.ComponentResource):
    """``<name>-policy``: the managed policy ``<function>-tag-guard``, attached to nothing."""

    policy: aws.iam.Policy

    def __init__(self, name: str, args: EngineTagGuardArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:EngineTagGuard", name, None, opts)
        self.policy = aws.iam.Policy(
            f"{name}-policy",
            name=f"{args.function_name}-tag-guard",
            description="ami-upgrade: only the function's role writes the engine's tags",
            policy=pulumi.Output.from_input(args.role_arn).apply(
                lambda arn: json.dumps(engine_tag_guard([arn]))),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"policy_arn": self.policy.arn})
