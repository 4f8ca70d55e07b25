"""A lost change event: the next scheduled reconcile converges the fleet, the one after that
changes nothing; the function's logs carry the run's context and its metrics (EMF)."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest

import sandbox.demo as demo
from components.reconcile import reconcile_event
from handler import metrics
from sandbox.fleet import IN_SCOPE
from sandbox.stack import StackError, load_stack

from .estate import demo_run, group_members, instance


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request, tmp_path_factory):
    with demo_run(tmp_path_factory.mktemp(request.param), stack=request.param,
                  reconcile=True) as (aws, result):
        yield aws, result


def test_with_the_event_lost_the_scheduled_run_converges_the_fleet(run):
    _aws, result = run
    stack = result.estate.stack
    assert result.exit_code == 0, result.verdict.problems()
    # Nothing but the schedule (and the run's own continuations) invoked the function.
    assert {i.source for i in result.invocations} <= {"schedule", "continuation"}
    assert [i.event for i in result.invocations if i.source == "schedule"] == [
        reconcile_event(stack.parameter_name, False)]
    # A day passed before it ran: the rule fires on its schedule, not on the change.
    assert result.invocations[0].started >= 86400
    for g in result.estate.groups_in(IN_SCOPE):
        images = {instance(i)["ImageId"] for i in group_members(g.name)}
        assert images == {result.estate.new_image}, g.name
    moved = {e["id"] for r in result.reports for e in r["instances"] if e["action"] == "replaced"}
    assert moved == {i.id for i in result.estate.instances_in(IN_SCOPE)}

def test_the_next_reconcile_on_the_converged_fleet_makes_no_mutating_call(run):
    _aws, result = run
    again = result.reconciled_again
    assert again is not None and again.error is None
    assert result.mutating_calls_again == 0
    assert again.report["status"] == "succeeded"
    assert {e["action"] for e in again.report["asgs"] + again.report["instances"]} == {"skipped"}
    assert any(c.resource == "next reconcile" and c.ok for c in result.verdict.checks)


def test_the_scheduled_rule_is_deployed_in_eventbridge_with_the_stacks_expression(run):
    _aws, result = run
    stack = result.estate.stack
    events = boto3.client("events", region_name=stack.region)
    rule = events.describe_rule(Name=f"{stack.function_name}-reconcile")
    assert rule["ScheduleExpression"] == stack.reconcile_schedule == "rate(1 day)"


def test_every_log_line_carries_the_request_id_and_the_metrics_match_the_reports(run):
    _aws, result = run
    lines = [json.loads(line) for line in result.options.log_path().read_text().splitlines()]
    assert lines and all(line.get("request_id") for line in lines)
    documents = [line for line in lines if "_aws" in line]
    reports = [i.report for i in (*result.invocations, result.reconciled_again) if i.report]
    assert len(documents) == len(reports)
    for document, report in zip(documents, reports, strict=True):
        assert {k: document[k] for k in metrics.figures(report)} == metrics.figures(report)
        assert document[metrics.STATUS_DIMENSION] == report["status"]
    first = metrics.figures(reports[0])
    assert first[metrics.GROUPS_REFRESHED] == len(result.estate.groups_in(IN_SCOPE))


def test_reconcile_needs_the_schedule(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "load_stack", lambda name: dataclasses.replace(
        load_stack(name), reconcile_schedule=None))
    with pytest.raises(StackError, match="--reconcile needs ami-upgrade:reconcileSchedule"), \
            demo_run(tmp_path, reconcile=True):
        pass


def test_the_cli_passes_reconcile_on():
    from sandbox.__main__ import parse_args

    assert parse_args(["--reconcile"]).reconcile is True
    assert parse_args([]).reconcile is False
