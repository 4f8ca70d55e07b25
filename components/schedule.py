"""The scheduled reconcile: a rule on a schedule invoking the alias with the direct event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.alias_target import invoke_alias
from components.reconcile import parse_reconcile_schedule, reconcile_event


@dataclass(frozen=True)
class ScheduleArgs:
    schedule_expression: str
    parameter_name: str
    function_name: pulumi.Input[str]
    alias_name: pulumi.Input[str]
    alias_arn: pulumi.Input[str]
    dry_run: bool = False
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if parse_reconcile_schedule(self.schedule_expression,
                                    "ScheduleArgs.schedule_expression") is None:
            raise ValueError("ScheduleArgs.schedule_expression: the reconcile is off; create "
                             "no Schedule instead")
        if not self.parameter_name:
            raise ValueError("ScheduleArgs.parameter_name: required")


class Schedule(pulumi.ComponentResource):
    """``<name>-rule`` (schedule), ``<name>-permission`` (rule -> alias), ``<name>-target``.

    The target's input is :func:`components.reconcile.reconcile_event`: the direct
    event of the contract, with the stack's ``dryRun`` (a dry-run stack stays one).
    """

    rule: aws.cloudwatch.EventRule
    permission: aws.lambda_.Permission
    target: aws.cloudwatch.EventTarget

    def __init__(self, name: str, args: ScheduleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Schedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            description=f"ami-upgrade: reconcile {args.parameter_name} "
                        f"({args.schedule_expression})",
            schedule_expression=args.schedule_expression,
            tags=dict(args.tags),
            opts=child,
        )
        self.permission, self.target = invoke_alias(
            self, name, self.rule, function_name=args.function_name,
            alias_name=args.alias_name, alias_arn=args.alias_arn,
            event=reconcile_event(args.parameter_name, args.dry_run))
        self.register_outputs({"rule_arn": self.rule.arn, "rule_name": self.rule.name})
