"""The EventBridge rule, its target (the function's alias) and the invoke permission.

Any trigger of the registry: the stack's ``trigger`` (a change of the parameter) and, on a
spoke's stack, ``refresh-ended`` (an instance refresh of the estate ended).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.alias_target import invoke_alias
from handler.triggers import REGISTRY, trigger


@dataclass(frozen=True)
class TriggerArgs:
    trigger: str
    parameter_name: str
    function_name: pulumi.Input[str]
    alias_name: pulumi.Input[str]
    alias_arn: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.trigger not in REGISTRY:
            raise ValueError(f"TriggerArgs.trigger: expected one of {', '.join(REGISTRY)}, "
                             f"got {self.trigger!r}")
        if not self.parameter_name:
            raise ValueError("TriggerArgs.parameter_name: required")
        if isinstance(self.alias_name, str) and not self.alias_name:
            raise ValueError("TriggerArgs.alias_name: required")


class Trigger(pulumi.ComponentResource):
    """``<name>-rule``, ``<name>-permission`` (events -> alias) and ``<name>-target``."""

    rule: aws.cloudwatch.EventRule
    permission: aws.lambda_.Permission
    target: aws.cloudwatch.EventTarget
    rule_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TriggerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Trigger", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec = trigger(args.trigger, "TriggerArgs.trigger")

        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            description=spec.rule_description(args.parameter_name),
            event_pattern=json.dumps(spec.event_pattern(args.parameter_name)),
            tags=dict(args.tags),
            opts=child,
        )
        self.permission, self.target = invoke_alias(
            self, name, self.rule, function_name=args.function_name,
            alias_name=args.alias_name, alias_arn=args.alias_arn)

        self.rule_arn = self.rule.arn
        self.register_outputs({"rule_arn": self.rule.arn, "rule_name": self.rule.name})
