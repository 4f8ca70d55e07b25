"""What an operator sees of a run: its context on every log line, its metrics (EMF)."""

from __future__ import annotations

import json
import logging

import pytest
from standalone_estate import build_estate, function, set_parameter

from handler import metrics
from handler.main import lambda_handler
from sandbox.core import environment

CONTEXT_FIELDS = ("request_id", "attempt", "parameter")


def _parsed(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def test_every_line_of_a_run_carries_the_request_id_attempt_parameter_and_ami(
        aws, estate, log_lines):
    estate.launch("app")
    ours = function(aws)
    context = ours.context()

    with environment(ours.environment):
        report = lambda_handler({}, context)

    assert report["status"] == "succeeded"
    lines = _parsed(log_lines)
    assert len(lines) > 5
    assert {line["request_id"] for line in lines} == {context.aws_request_id}
    assert all((line["attempt"], line["parameter"]) == (0, "/ami/linux/test") for line in lines)
    # The AMI is bound once validated: from then on, every line carries it.
    first = next(n for n, line in enumerate(lines) if "ami" in line)
    assert {line.get("ami") for line in lines[first:]} == {estate.new_ami}
    assert lines[first - 1]["event"] == "parameter_read"
    assert [line["event"] for line in lines[-2:]] == ["report", "metrics"]


def test_the_context_ends_with_the_invocation(aws, estate, log_lines):
    ours = function(aws)
    first, second = ours.context(), ours.context()
    with environment(ours.environment):
        lambda_handler({}, first)
        count = len(log_lines)
        lambda_handler({"parameter_name": "/ami/other"}, second)

    later = _parsed(log_lines[count:])
    assert {line["request_id"] for line in later} == {second.aws_request_id}
    assert not any("ami" in line for line in later)   # an ignored run never knew one


def test_an_invalid_event_is_logged_and_counted_with_the_request_id(aws, log_lines):
    ours = function(aws)
    context = ours.context()
    with environment(ours.environment):
        report = lambda_handler({"bogus": 1}, context)

    lines = _parsed(log_lines)
    assert report["status"] == "failed"
    assert {line["request_id"] for line in lines} == {context.aws_request_id}
    emf = next(line for line in lines if "_aws" in line)
    assert (emf["Status"], emf[metrics.RUNS]) == ("failed", 1)
    failure = next(line for line in lines if line["event"] == "failure")
    assert (failure["kind"], failure["reason"]) == ("run", report["reason"])


def _counts(report: dict) -> dict[str, int]:
    """The report's own counts, by the metric that carries each."""
    groups = [g["action"] for g in report["asgs"]]
    instances = report["instances"]
    return {
        metrics.RUNS: 1,
        metrics.GROUPS_REFRESHED: groups.count("refresh_started"),
        metrics.GROUPS_SKIPPED: groups.count("skipped"),
        metrics.GROUPS_FAILED: groups.count("failed"),
        metrics.INSTANCES_REPLACED: [i["action"] for i in instances].count("replaced"),
        metrics.INSTANCES_ROLLED_BACK: sum(i["action"] == "failed"
                                           and i.get("code") == "rolled_back"
                                           for i in instances),
        metrics.INSTANCES_FAILED: [i["action"] for i in instances].count("failed"),
    }


def test_the_emf_document_of_a_run_carries_the_reports_counts(aws, estate, log_lines):
    replaced, rolled_back = estate.launch("app"), estate.launch("db")
    estate.launch("other", in_scope=False)
    aws.faults.fail("RunInstances", "Unsupported", "not supported", times=None,
                    when=lambda p: p.get("ClientToken", "").startswith(
                        f"ami-upgrade-{rolled_back}-"))

    report = function(aws).invoke({})

    assert report["status"] == "partial"
    assert {i["id"]: i["action"] for i in report["instances"]} == {
        replaced: "replaced", rolled_back: "failed"}
    documents = [line for line in _parsed(log_lines) if "_aws" in line]
    assert len(documents) == 1
    emf = documents[0]
    assert {name: emf[name] for name in _counts(report)} == _counts(report) == {
        metrics.RUNS: 1, metrics.GROUPS_REFRESHED: 0, metrics.GROUPS_SKIPPED: 0,
        metrics.GROUPS_FAILED: 0, metrics.INSTANCES_REPLACED: 1,
        metrics.INSTANCES_ROLLED_BACK: 1, metrics.INSTANCES_FAILED: 1}
    assert (emf[metrics.PARAMETER_DIMENSION], emf[metrics.STATUS_DIMENSION]) == (
        "/ami/linux/test", "partial")
    assert emf[metrics.DURATION] >= 0         # seconds, by the invocation's (emulated) clock
    failures = [line for line in _parsed(log_lines) if line["event"] == "failure"]
    assert [(f["kind"], f["resource"], f["reason"]) for f in failures] == [
        ("instance", rolled_back, next(i["reason"] for i in report["instances"]
                                       if i["id"] == rolled_back))]


def test_the_emf_document_is_valid_emf_with_bounded_dimensions():
    report = {"parameter": "/ami/linux/prod", "status": "partial", "ami_id": "ami-1",
              "asgs": [{"name": "web", "action": "refresh_started"},
                       {"name": "api", "action": "refresh_started"},
                       {"name": "old", "action": "skipped"},
                       {"name": "bad", "action": "failed", "reason": "no template tag",
                        "code": "misconfigured_template_untagged"}],
              "instances": [{"id": "i-1", "action": "replaced"},
                            {"id": "i-2", "action": "failed", "reason": "rolled back: x",
                             "code": "rolled_back"},
                            {"id": "i-3", "action": "failed", "reason": "stopped at attach",
                             "code": "progress_tags_kept"},
                            {"id": "i-4", "action": "in_progress"}]}

    doc = metrics.document(report, 12.5, timestamp_ms=1_700_000_000_000)

    assert doc["_aws"] == {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [
        {"Namespace": "AmiUpgrade", "Dimensions": [["Parameter"]], "Metrics": [
            {"Name": name, "Unit": "Seconds" if name == "Duration" else "Count"}
            for name in ("Runs", "GroupsRefreshed", "GroupsSkipped", "GroupsFailed",
                         "GroupsDeferred", "InstancesReplaced", "InstancesRolledBack",
                         "InstancesFailed", "Duration")]},
        {"Namespace": "AmiUpgrade", "Dimensions": [["Parameter", "Status"]],
         "Metrics": [{"Name": "Runs", "Unit": "Count"}]}]}
    assert {k: v for k, v in doc.items() if k != "_aws"} == {
        "Parameter": "/ami/linux/prod", "Status": "partial", "Runs": 1, "GroupsRefreshed": 2,
        "GroupsSkipped": 1, "GroupsFailed": 1, "GroupsDeferred": 0, "InstancesReplaced": 1,
        "InstancesRolledBack": 1, "InstancesFailed": 2, "Duration": 12.5}
    # EMF: every dimension and metric named by a directive is a member of the document.
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        assert all(key in doc for dims in directive["Dimensions"] for key in dims)
        assert all(isinstance(doc[m["Name"]], int | float) for m in directive["Metrics"])
    assert metrics.failures(report) == [
        {"kind": "asg", "resource": "bad", "code": "misconfigured_template_untagged",
         "reason": "no template tag"},
        {"kind": "instance", "resource": "i-2", "code": "rolled_back", "reason": "rolled back: x"},
        {"kind": "instance", "resource": "i-3", "code": "progress_tags_kept",
         "reason": "stopped at attach"}]


def test_in_lambda_the_lines_and_the_emf_document_go_to_stdout_as_json(
        aws, estate, capsys, monkeypatch):
    # As in Lambda: no handler yet, so the function's own stdout handler is installed.
    logger = logging.getLogger("ami-upgrade")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    estate.launch("app")
    ours = function(aws)
    context = ours.context()

    with environment(ours.environment):
        report = lambda_handler({}, context)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and {line["request_id"] for line in lines} == {context.aws_request_id}
    (emf,) = [line for line in lines if "_aws" in line]
    assert emf[metrics.INSTANCES_REPLACED] == 1 == len(report["instances"])


def test_a_scope_outside_an_invocation_ends_with_its_block():
    from handler import log

    with log.scope(parameter="/p", attempt=2):
        log.bind(ami="ami-1")
        assert log.context() == {"parameter": "/p", "attempt": 2, "ami": "ami-1"}
    assert log.context() == {}
    with log.invocation(request_id="r-1"):
        with log.scope(parameter="/p"):
            pass
        # Inside an invocation the run's fields stay for the lines written after the run.
        assert log.context() == {"request_id": "r-1", "parameter": "/p"}
    assert log.context() == {}
