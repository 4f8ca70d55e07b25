"""The follow-up rule: a schedule the engine enables while replacements are in flight.

See ``handler/follow_up.py`` for why (a lost continuation must not leave an instance
down) and why a rule rather than one-time schedules. The rule is named after the
function (``handler.follow_up.rule_name``), so the handler finds it without a new
setting; it is created DISABLED, and its state is the engine's from then on
(``ignore_changes``: a deploy while work is in flight must not switch it off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.alias_target import invoke_alias
from components.reconcile import reconcile_event
from handler.follow_up import RATE, rule_name


@dataclass(frozen=True)
class FollowUpArgs:
    function_name: str            # the plain name: the rule's name derives from it
    parameter_name: str
    alias_name: pulumi.Input[str]
    alias_arn: pulumi.Input[str]
    dry_run: bool = False
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.function_name:
            raise ValueError("FollowUpArgs.function_name: required")
        if not self.parameter_name:
            raise ValueError("FollowUpArgs.parameter_name: required")


class FollowUp(pulumi.ComponentResource):
    """``<name>-rule`` (rate(5 minutes), DISABLED), ``<name>-permission``, ``<name>-target``."""

    rule: aws.cloudwatch.EventRule
    permission: aws.lambda_.Permission
    target: aws.cloudwatch.EventTarget

    def __init__(self, name: str, args: FollowUpArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:FollowUp", name, None, opts)
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=rule_name(args.function_name),
            description=f"ami-upgrade: runs {args.parameter_name}'s replacements in flight "
                        "again until they end (enabled by the function)",
            schedule_expression=RATE,
            state="DISABLED",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["state"]),
        )
        self.permission, self.target = invoke_alias(
            self, name, self.rule, function_name=args.function_name,
            alias_name=args.alias_name, alias_arn=args.alias_arn,
            event=reconcile_event(args.parameter_name, args.dry_run))
        self.register_outputs({"rule_arn": self.rule.arn, "rule_name": self.rule.name})
