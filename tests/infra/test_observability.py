"""Issue 11 in each stack: the reconcile schedule, the refresh-events rule, alarms on what the
function really emits, the dashboard and the saved queries."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest

from components.dashboard import FAILURES_QUERY, LAST_REPORT_QUERY
from components.reconcile import parse_reconcile_schedule
from components.refresh_events import DETAIL_TYPES
from handler import metrics
from handler.events import DIRECT, parse_event
from handler.settings import SettingsError
from infra.harness import Registration, Rendered, render, rendered_stack

STACKS = ["dev", "prod"]
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
ALIAS = "aws:lambda/alias:Alias"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
QUERY = "aws:cloudwatch/queryDefinition:QueryDefinition"
SCHEDULE, REFRESH, TRIGGER = ("ami-upgrade-schedule-", "ami-upgrade-refresh-events-",
                              "ami-upgrade-trigger-")
TOPIC = "arn:aws:sns:us-east-1:123456789012:ami-upgrade-ops"


@pytest.fixture(params=STACKS)
def stack(request) -> Rendered:
    return rendered_stack(request.param)


@cache
def with_topic() -> Rendered:
    return render("dev", {"ami-upgrade:notificationTopicArn": TOPIC})


def parameter(stack: Rendered) -> str:
    return stack.config["ami-upgrade:parameterName"]


# ------------------------------------------------------------------ the reconcile


def test_a_daily_rule_invokes_the_alias_with_a_direct_event_the_handler_accepts(stack):
    rule, target = stack.one(RULE, SCHEDULE), stack.one(TARGET, SCHEDULE)
    assert rule.inputs["scheduleExpression"] == "rate(1 day)"
    assert "eventPattern" not in rule.inputs
    assert (target.inputs["rule"], target.inputs["arn"]) == (
        rule.outputs["name"], stack.one(ALIAS).outputs["arn"])
    event = json.loads(target.inputs["input"])
    assert event == {"parameter_name": parameter(stack), "dry_run": False}
    request = parse_event(event, parameter(stack))
    assert (request.kind, request.parameter_name, request.dry_run, request.ignored_reason,
            request.failure_reason) == (DIRECT, parameter(stack), False, None, None)


def test_only_the_schedule_rule_may_invoke_the_alias_for_the_reconcile(stack):
    permission = stack.one(PERMISSION, SCHEDULE)
    assert (permission.inputs["principal"], permission.inputs["qualifier"],
            permission.inputs["sourceArn"]) == (
        "events.amazonaws.com", stack.config["ami-upgrade:aliasName"],
        stack.one(RULE, SCHEDULE).outputs["arn"])
    assert permission.urn in stack.one(TARGET, SCHEDULE).dependencies


def test_a_dry_run_stack_reconciles_as_a_dry_run():
    rendered = render("dev", {"ami-upgrade:dryRun": True})
    assert json.loads(rendered.one(TARGET, SCHEDULE).inputs["input"])["dry_run"] is True


def test_the_schedule_follows_its_key_and_can_be_turned_off():
    hourly = render("dev", {"ami-upgrade:reconcileSchedule": "rate(6 hours)"})
    assert hourly.one(RULE, SCHEDULE).inputs["scheduleExpression"] == "rate(6 hours)"
    off = render("dev", {"ami-upgrade:reconcileSchedule": "off"})
    assert not [r for r in off.resources if r.name.startswith(SCHEDULE)]
    assert len(off.of_type(ALARM)) == 7      # no FailedInvocations alarm for a rule not there


@pytest.mark.parametrize(("value", "expected"), [
    (None, "rate(1 day)"), ("", "rate(1 day)"), ("off", None), ("false", None), (False, None),
    ("rate(30 minutes)", "rate(30 minutes)"), ("cron(0 3 * * ? *)", "cron(0 3 * * ? *)")])
def test_schedule_values(value, expected):
    assert parse_reconcile_schedule(value, "ami-upgrade:reconcileSchedule") == expected


@pytest.mark.parametrize(("value", "message"), [
    ("rate(1 days)", "EventBridge wants 'rate(1 day)', got 'rate(1 days)'"),
    ("rate(2 hour)", "EventBridge wants 'rate(2 hours)', got 'rate(2 hour)'"),
    ("daily", "expected 'rate(<n> <minute(s)|hour(s)|day(s)>)', 'cron(<6 fields>)' or 'off'"),
    ("cron(0 3 * * ?)", "got 'cron(0 3 * * ?)'"), (7, "expected a schedule expression")])
def test_a_bad_schedule_fails_the_preview_naming_the_key(value, message):
    with pytest.raises(SettingsError, match=re.escape("ami-upgrade:reconcileSchedule: ")):
        render("dev", {"ami-upgrade:reconcileSchedule": value})
    with pytest.raises(SettingsError, match=re.escape(message)):
        parse_reconcile_schedule(value, "ami-upgrade:reconcileSchedule")


# ------------------------------------------------------------- refresh outcomes


def test_the_refresh_events_rule_matches_the_documented_outcomes(stack):
    pattern = json.loads(stack.one(RULE, REFRESH).inputs["eventPattern"])
    assert pattern == {"source": ["aws.autoscaling"], "detail-type": [
        "EC2 Auto Scaling Instance Refresh Failed",
        "EC2 Auto Scaling Instance Refresh Cancelled",
        "EC2 Auto Scaling Instance Refresh Rollback Started",
        "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
        "EC2 Auto Scaling Instance Refresh Rollback Failed"]}
    assert tuple(pattern["detail-type"]) == DETAIL_TYPES
    # No topic in either stack's file: nothing to send to (the dashboard counts matches).
    assert not [t for t in stack.of_type(TARGET) if t.name.startswith(REFRESH)]


def test_excluded_groups_are_left_out_of_the_refresh_events():
    rendered = render("dev", {"ami-upgrade:excludedAsgs": ["legacy-web", "batch"]})
    pattern = json.loads(rendered.one(RULE, REFRESH).inputs["eventPattern"])
    assert pattern["detail"] == {"AutoScalingGroupName": [{"anything-but": ["batch",
                                                                            "legacy-web"]}]}


def test_with_a_topic_the_refresh_outcomes_reach_it_naming_the_group():
    target = with_topic().one(TARGET, REFRESH)
    transformer = target.inputs["inputTransformer"]
    assert target.inputs["arn"] == TOPIC
    assert transformer["inputPaths"]["group"] == "$.detail.AutoScalingGroupName"
    assert transformer["inputPaths"]["type"] == "$.detail-type"
    message = json.loads(transformer["inputTemplate"])
    assert message.startswith("ami-upgrade dev: <type> for Auto Scaling group <group> ")
    assert "ami-upgrade:parameter=/ami/linux/test" in message


# --------------------------------------------------------------------- alarms


def _emits(alarm: Registration) -> bool:
    """Whether the function's EMF document of a run carries the alarm's metric as watched."""
    dims = alarm.inputs["dimensions"]
    status = dims.get(metrics.STATUS_DIMENSION, "succeeded")
    report = {"parameter": dims.get(metrics.PARAMETER_DIMENSION), "status": status,
              "asgs": [], "instances": []}
    document = metrics.document(report, 1.0)
    return any(
        directive["Namespace"] == alarm.inputs["namespace"]
        and sorted(dims) in [sorted(d) for d in directive["Dimensions"]]
        and alarm.inputs["metricName"] in [m["Name"] for m in directive["Metrics"]]
        and all(document[key] == value for key, value in dims.items())
        for directive in document["_aws"]["CloudWatchMetrics"])


def test_run_alarms_watch_metrics_the_function_really_emits(stack):
    runs = {a.name: a for a in stack.of_type(ALARM)
            if a.inputs["namespace"] == metrics.NAMESPACE}
    assert {name: (a.inputs["metricName"], a.inputs["dimensions"]) for name, a in runs.items()
            } == {
        "ami-upgrade-monitoring-failed-runs": (metrics.RUNS, {
            "Parameter": parameter(stack), "Status": "failed"}),
        "ami-upgrade-monitoring-partial-runs": (metrics.RUNS, {
            "Parameter": parameter(stack), "Status": "partial"}),
        "ami-upgrade-monitoring-rollbacks": (metrics.INSTANCES_ROLLED_BACK, {
            "Parameter": parameter(stack)}),
    }
    for alarm in runs.values():
        assert _emits(alarm), alarm.name
        assert (alarm.inputs["statistic"], alarm.inputs["threshold"],
                alarm.inputs["comparisonOperator"], alarm.inputs["treatMissingData"]) == (
            "Sum", 0, "GreaterThanThreshold", "notBreaching")


def test_an_alarm_on_a_metric_the_function_does_not_write_would_be_caught(stack):
    alarm = next(a for a in stack.of_type(ALARM) if a.name.endswith("-rollbacks"))
    wrong = Registration(alarm.type, alarm.name, alarm.urn, {
        **alarm.inputs, "dimensions": {**alarm.inputs["dimensions"], "Group": "web"}},
        alarm.outputs, alarm.dependencies, alarm.parent)
    assert _emits(alarm) and not _emits(wrong)


def test_rule_alarms_watch_failed_invocations_of_the_trigger_and_the_schedule(stack):
    watched = {a.inputs["dimensions"]["RuleName"] for a in stack.of_type(ALARM)
               if (a.inputs["namespace"], a.inputs["metricName"]) == (
                   "AWS/Events", "FailedInvocations")}
    assert watched == {stack.one(RULE, TRIGGER).outputs["name"],
                       stack.one(RULE, SCHEDULE).outputs["name"]}


def test_every_alarm_notifies_the_topic_when_set():
    alarms = with_topic().of_type(ALARM)
    assert len(alarms) == 8
    assert all((a.inputs["alarmActions"], a.inputs["okActions"]) == ([TOPIC], [TOPIC])
               for a in alarms)


# ---------------------------------------------------------- dashboard, queries


def test_the_dashboard_shows_runs_outcomes_refreshes_and_errors(stack):
    dashboard = stack.one(DASHBOARD)
    assert dashboard.inputs["dashboardName"] == f"ami-upgrade-{stack.stack}"
    body = json.loads(dashboard.inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [f"Runs by status ({parameter(stack)})", "Auto Scaling groups",
                      "Standalone instances", "Errors", "Run duration (seconds)",
                      "Failures and their reasons"]
    rows = [row for w in body["widgets"] for row in w["properties"].get("metrics", [])]
    ours = [row for row in rows if row[0] == metrics.NAMESPACE]
    for row in ours:   # every run metric shown is one the function writes, as it writes it
        name, dims = row[1], {k: v for k, v in zip(row[2::2], row[3::2], strict=False)
                              if isinstance(k, str)}
        assert tuple(dims) in metrics.DIMENSIONS[name], row
        assert dims["Parameter"] == parameter(stack)
    assert {row[1] for row in ours} == set(metrics.DIMENSIONS)
    assert {(row[0], row[1]) for row in rows if row[0] != metrics.NAMESPACE} >= {
        ("AWS/Lambda", "Errors"), ("AWS/Lambda", "AsyncEventsDropped"),
        ("AWS/Events", "FailedInvocations"), ("AWS/Events", "MatchedEvents")}
    assert all(w["properties"]["region"] == "us-east-1" for w in body["widgets"])


def test_saved_queries_find_the_last_report_and_every_failure(stack):
    queries = {q.inputs["name"]: q.inputs for q in stack.of_type(QUERY)}
    folder = f"ami-upgrade-{stack.stack}"
    assert sorted(queries) == [f"{folder}/every failure with its reason",
                               f"{folder}/last run's report"]
    for query in queries.values():
        assert query["logGroupNames"] == [f"/aws/lambda/ami-upgrade-{stack.stack}"]
    assert queries[f"{folder}/last run's report"]["queryString"] == LAST_REPORT_QUERY
    assert 'filter event = "report"' in LAST_REPORT_QUERY and "limit 1" in LAST_REPORT_QUERY
    assert queries[f"{folder}/every failure with its reason"]["queryString"] == FAILURES_QUERY
    assert '"failure"' in FAILURES_QUERY and "parameter_behind_event" in FAILURES_QUERY
