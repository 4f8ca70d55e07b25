"""Instance refresh outcomes after the run: EC2 Auto Scaling's events to the topic.

A run starts instance refreshes and may end long before they do; a refresh that
fails, is cancelled or rolls back an hour later would be seen by nobody. This
rule forwards those events (EventBridge, ``source: aws.autoscaling``) to the
stack's topic with a readable message naming the group.

Scope: an EventBridge pattern cannot test a group's tags, so in ``tagged``
scope the rule cannot select the groups tagged for the parameter. It matches
every group of the account and region except the excluded ones, and the
message names the group and the tag that makes it ours; filtering on group
names would need the names at deploy time, which ``tagged`` scope does not
have (groups join by being tagged, without a deploy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pulumi
import pulumi_aws as aws

SOURCE = "aws.autoscaling"
# The detail-types AWS documents for instance refresh outcomes that need a person
# (Amazon EventBridge events reference, "Amazon EC2 Auto Scaling events").
DETAIL_TYPES = (
    "EC2 Auto Scaling Instance Refresh Failed",
    "EC2 Auto Scaling Instance Refresh Cancelled",
    "EC2 Auto Scaling Instance Refresh Rollback Started",
    "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
    "EC2 Auto Scaling Instance Refresh Rollback Failed",
)
INPUT_PATHS: Mapping[str, str] = MappingProxyType({
    "type": "$.detail-type", "group": "$.detail.AutoScalingGroupName",
    "refresh": "$.detail.InstanceRefreshId", "time": "$.time", "region": "$.region"})


def refresh_event_pattern(excluded_asgs: Sequence[str] = ()) -> dict[str, Any]:
    """Refresh outcomes of every group but the excluded ones (pure)."""
    pattern: dict[str, Any] = {"source": [SOURCE], "detail-type": list(DETAIL_TYPES)}
    if excluded_asgs:
        pattern["detail"] = {"AutoScalingGroupName": [{"anything-but": sorted(excluded_asgs)}]}
    return pattern


def message_template(stack: str, parameter_name: str, scope: str = "tagged") -> str:
    """The SNS message (an input template: ``<type>`` ... are filled from the event)."""
    managed = (f"the groups tagged ami-upgrade:parameter={parameter_name}" if scope == "tagged"
               else "every group of the region but those excluded or tagged for another "
                    "parameter")
    text = (f"ami-upgrade {stack}: <type> for Auto Scaling group <group> (instance refresh "
            f"<refresh>, <time>, <region>). The stack following {parameter_name} manages "
            f"{managed}; its next run (or the scheduled reconcile) starts a new refresh "
            "toward the parameter's AMI.")
    return json.dumps(text)


@dataclass(frozen=True)
class RefreshEventsArgs:
    stack: str
    parameter_name: str
    scope: str = "tagged"
    excluded_asgs: Sequence[str] = ()
    notification_topic_arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.stack or not self.parameter_name:
            raise ValueError("RefreshEventsArgs.stack and parameter_name: required")


class RefreshEvents(pulumi.ComponentResource):
    """``<name>-rule`` and, when the stack has a topic, ``<name>-target`` (the topic).

    Without a topic the rule still counts its matches (``AWS/Events``
    ``MatchedEvents``), which the stack's dashboard shows. The topic's access policy
    must let ``events.amazonaws.com`` publish (the topic is not the stack's to edit).
    """

    rule: aws.cloudwatch.EventRule
    target: aws.cloudwatch.EventTarget | None

    def __init__(self, name: str, args: RefreshEventsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:RefreshEvents", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            description=f"ami-upgrade {args.stack}: instance refreshes that failed, were "
                        "cancelled or rolled back",
            event_pattern=json.dumps(refresh_event_pattern(args.excluded_asgs)),
            tags=dict(args.tags),
            opts=child,
        )
        self.target = None
        if args.notification_topic_arn:
            self.target = aws.cloudwatch.EventTarget(
                f"{name}-target",
                rule=self.rule.name,
                arn=args.notification_topic_arn,
                input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                    input_paths=dict(INPUT_PATHS),
                    input_template=message_template(args.stack, args.parameter_name,
                                                    args.scope)),
                opts=child,
            )
        self.register_outputs({"rule_arn": self.rule.arn, "rule_name": self.rule.name})
