"""Alarms that fire on what matters, each notifying the stack's topic when one is set.

- the function: ``Errors`` (exceptions, timeouts, a parameter read behind its event),
  ``AsyncEventsDropped`` (events Lambda gave up on), ``DestinationDeliveryFailures``
  on the alias (a failed event that could not even reach the topic);
- the runs, from the metrics the function writes (``handler/metrics.py``, EMF):
  failed runs, partial runs, standalone replacements rolled back;
- the rules: ``FailedInvocations`` of the trigger and of the reconcile schedule
  (EventBridge could not invoke the alias).

Every metric name, namespace and dimension of the run alarms comes from
``handler.metrics``, so an alarm always watches a metric the function writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from handler import metrics

LAMBDA, EVENTS = "AWS/Lambda", "AWS/Events"


@dataclass(frozen=True)
class MonitoringArgs:
    function_name: pulumi.Input[str]
    alias_name: pulumi.Input[str]
    parameter_name: str
    # Rule role ("trigger", "schedule") -> the rule's name, for its FailedInvocations.
    rule_names: Mapping[str, pulumi.Input[str]] = field(
        default_factory=lambda: MappingProxyType({}))
    notification_topic_arn: str | None = None
    period_seconds: int = 300
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.period_seconds < 60 or self.period_seconds % 60:
            raise ValueError(f"MonitoringArgs.period_seconds: a multiple of 60, got "
                             f"{self.period_seconds}")
        if not self.parameter_name:
            raise ValueError("MonitoringArgs.parameter_name: required")


class Monitoring(pulumi.ComponentResource):
    """``<name>-<role>`` alarms (roles in the module docstring), all ``Sum > 0``."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        actions = [args.notification_topic_arn] if args.notification_topic_arn else []
        function = {"FunctionName": args.function_name}
        parameter = {metrics.PARAMETER_DIMENSION: args.parameter_name}

        def alarm(role: str, namespace: str, metric: str, dimensions: Mapping,
                  description: str) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{role}",
                alarm_description=f"ami-upgrade: {description}",
                namespace=namespace,
                metric_name=metric,
                dimensions=dict(dimensions),
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

        self.alarms = {
            "errors": alarm("errors", LAMBDA, "Errors", function,
                            "the function failed (exception or timeout); Lambda retries it"),
            "dropped-events": alarm(
                "dropped-events", LAMBDA, "AsyncEventsDropped", function,
                "events dropped after retries or maximum age; run it by hand"),
            "delivery-failures": alarm(
                "delivery-failures", LAMBDA, "DestinationDeliveryFailures",
                {**function, "Resource": pulumi.Output.concat(args.function_name, ":",
                                                              args.alias_name)},
                "a failed event could not be sent to the on-failure destination"),
            "failed-runs": alarm(
                "failed-runs", metrics.NAMESPACE, metrics.RUNS,
                {**parameter, metrics.STATUS_DIMENSION: "failed"},
                f"a run for {args.parameter_name} failed: see the report"),
            "partial-runs": alarm(
                "partial-runs", metrics.NAMESPACE, metrics.RUNS,
                {**parameter, metrics.STATUS_DIMENSION: "partial"},
                f"a run for {args.parameter_name} left some resources behind"),
            "rollbacks": alarm(
                "rollbacks", metrics.NAMESPACE, metrics.INSTANCES_ROLLED_BACK, parameter,
                f"a standalone instance could not move to {args.parameter_name}'s AMI and "
                "was rolled back"),
        }
        for role, rule_name in sorted(args.rule_names.items()):
            self.alarms[f"{role}-failed-invocations"] = alarm(
                f"{role}-failed-invocations", EVENTS, "FailedInvocations",
                {"RuleName": rule_name},
                f"the {role} rule could not invoke the function")
        self.register_outputs({f"{role.replace('-', '_')}_alarm_arn": a.arn
                               for role, a in self.alarms.items()})
