"""The stack's CloudWatch dashboard and its saved Logs Insights queries.

The dashboard shows runs by status, what they did (groups refreshed, instances
replaced or rolled back ...), how long they took, the instance refresh outcomes
EventBridge saw after the runs, and the errors of the function and its rules.
Its run metrics are named by ``handler.metrics`` (the EMF the function writes).

Two saved queries (CloudWatch Logs Insights, folder ``ami-upgrade-<stack>``):
"last run's report" and "every failure with its reason" (the function logs one
``failure`` line per failed entry, see ``handler/metrics.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pulumi
import pulumi_aws as aws

from handler import metrics

LAST_REPORT_QUERY = """\
fields @timestamp, request_id, attempt, status, ami_id, reason, @message
| filter event = "report"
| sort @timestamp desc
| limit 1"""

FAILURES_QUERY = """\
fields @timestamp, request_id, event, kind, resource, code, \
coalesce(reason, error, @message) as why
| filter event in ["failure", "invalid_settings", "parameter_behind_event", \
"notification_failed", "asg_record_failed"] or @message like /Task timed out|\\[ERROR\\]/
| sort @timestamp desc
| limit 1000"""


def _metric(namespace: str, name: str, dimensions: Mapping[str, Any],
            label: str | None = None) -> list[Any]:
    row: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    if label:
        row.append({"label": label})
    return row


def _widget(title: str, rows: list[list[Any]], region: str, x: int, y: int,
            stat: str = "Sum", view: str = "timeSeries", stacked: bool = False) -> dict:
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": {"title": title, "region": region, "stat": stat, "period": 3600,
                           "view": view, "stacked": stacked, "metrics": rows}}


def dashboard_body(*, region: str, parameter_name: str, function_name: pulumi.Input[str],
                   log_group_name: str, rule_names: Mapping[str, pulumi.Input[str]],
                   refresh_rule_name: pulumi.Input[str]) -> dict[str, Any]:
    """The dashboard as a dict (values may be Outputs: ``Output.json_dumps`` renders it)."""
    ns, parameter = metrics.NAMESPACE, {metrics.PARAMETER_DIMENSION: parameter_name}
    function = {"FunctionName": function_name}
    runs = [_metric(ns, metrics.RUNS, {**parameter, metrics.STATUS_DIMENSION: status},
                    label=status) for status in metrics.STATUSES]
    refreshes = [_metric(ns, name, parameter, label=label) for name, label in (
        (metrics.GROUPS_REFRESHED, "groups refreshed"), (metrics.GROUPS_SKIPPED, "skipped"),
        (metrics.GROUPS_FAILED, "failed"), (metrics.GROUPS_DEFERRED, "deferred"))]
    refreshes.append(_metric("AWS/Events", "MatchedEvents", {"RuleName": refresh_rule_name},
                             label="refresh failed / cancelled / rolled back (events)"))
    instances = [_metric(ns, name, parameter, label=label) for name, label in (
        (metrics.INSTANCES_REPLACED, "instances replaced"),
        (metrics.INSTANCES_ROLLED_BACK, "rolled back"), (metrics.INSTANCES_FAILED, "failed"))]
    errors = [_metric("AWS/Lambda", name, function, label=name) for name in (
        "Errors", "AsyncEventsDropped", "DestinationDeliveryFailures", "Throttles")]
    errors += [_metric("AWS/Events", "FailedInvocations", {"RuleName": rule},
                       label=f"{role} rule FailedInvocations")
               for role, rule in sorted(rule_names.items())]
    return {"widgets": [
        _widget(f"Runs by status ({parameter_name})", runs, region, 0, 0, stacked=True),
        _widget("Auto Scaling groups", refreshes, region, 12, 0),
        _widget("Standalone instances", instances, region, 0, 6),
        _widget("Errors", errors, region, 12, 6),
        _widget("Run duration (seconds)", [_metric(ns, metrics.DURATION, parameter)], region,
                0, 12, stat="Maximum"),
        {"type": "log", "x": 12, "y": 12, "width": 12, "height": 6,
         "properties": {"title": "Failures and their reasons", "region": region,
                        "view": "table",
                        "query": f"SOURCE '{log_group_name}' | {FAILURES_QUERY}"}},
    ]}


@dataclass(frozen=True)
class DashboardArgs:
    dashboard_name: str
    region: str
    parameter_name: str
    function_name: pulumi.Input[str]
    log_group_name: str
    refresh_rule_name: pulumi.Input[str]
    rule_names: Mapping[str, pulumi.Input[str]] = field(
        default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.dashboard_name or not self.region or not self.parameter_name:
            raise ValueError("DashboardArgs.dashboard_name, region and parameter_name: required")
        if not self.log_group_name.startswith("/aws/lambda/"):
            raise ValueError(f"DashboardArgs.log_group_name: the function's log group "
                             f"(/aws/lambda/...), got {self.log_group_name!r}")


class Dashboard(pulumi.ComponentResource):
    """``<name>-dashboard``, ``<name>-last-report`` and ``<name>-failures`` (queries)."""

    dashboard: aws.cloudwatch.Dashboard
    last_report: aws.cloudwatch.QueryDefinition
    failures: aws.cloudwatch.QueryDefinition

    def __init__(self, name: str, args: DashboardArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Dashboard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        body = dashboard_body(region=args.region, parameter_name=args.parameter_name,
                              function_name=args.function_name,
                              log_group_name=args.log_group_name,
                              rule_names=args.rule_names,
                              refresh_rule_name=args.refresh_rule_name)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=pulumi.Output.json_dumps(body),
            opts=child,
        )
        queries = {}
        for role, title, query in (("last-report", "last run's report", LAST_REPORT_QUERY),
                                   ("failures", "every failure with its reason",
                                    FAILURES_QUERY)):
            queries[role] = aws.cloudwatch.QueryDefinition(
                f"{name}-{role}",
                name=f"{args.dashboard_name}/{title}",   # a folder per stack in the console
                log_group_names=[args.log_group_name],
                query_string=query,
                opts=child,
            )
        self.last_report, self.failures = queries["last-report"], queries["failures"]
        self.register_outputs({"dashboard_name": self.dashboard.dashboard_name})
