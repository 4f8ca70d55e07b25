"""Alarms on the function: unhandled errors and async events dropped after retries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class MonitoringArgs:
    function_name: pulumi.Input[str]
    notification_topic_arn: str | None = None
    period_seconds: int = 300
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.period_seconds < 60 or self.period_seconds % 60:
            raise ValueError(f"MonitoringArgs.period_seconds: a multiple of 60, got "
                             f"{self.period_seconds}")


class Monitoring(pulumi.ComponentResource):
    """``<name>-errors`` and ``<name>-dropped-events``, notifying the topic when set.

    A run that ends with status ``failed`` or ``partial`` is reported in the
    summary notification, not here: these alarms catch what the report cannot
    (crashes, timeouts, events Lambda gave up on).
    """

    errors: aws.cloudwatch.MetricAlarm
    dropped_events: aws.cloudwatch.MetricAlarm

    def __init__(self, name: str, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        actions = [args.notification_topic_arn] if args.notification_topic_arn else []

        def alarm(role: str, metric: str, description: str) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{role}",
                alarm_description=description,
                namespace="AWS/Lambda",
                metric_name=metric,
                dimensions={"FunctionName": args.function_name},
                statistic="Sum",
                period=args.period_seconds,
                evaluation_periods=1,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                tags=dict(args.tags),
                opts=child,
            )

        self.errors = alarm("errors", "Errors",
                            "ami-upgrade: the function failed (exception or timeout)")
        self.dropped_events = alarm(
            "dropped-events", "AsyncEventsDropped",
            "ami-upgrade: events dropped after retries or maximum age; run it by hand")
        self.register_outputs({"errors_alarm_arn": self.errors.arn,
                               "dropped_events_alarm_arn": self.dropped_events.arn})
