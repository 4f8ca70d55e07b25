"""A run's figures as CloudWatch metrics, in the Embedded Metric Format (EMF).

One JSON document per run, written to the log like every other line: CloudWatch
Logs extracts the metrics from it, so the function needs no ``PutMetricData``
call, no permission and no dependency (stdlib ``json`` only). The figures are
counted from the report (the contract), so they say what the report says.

Dimensions are bounded on purpose: the parameter, and the run's status for
``Runs``; never a group or an instance. The alarms and the dashboard
(``components/monitoring.py``, ``components/dashboard.py``) import these names.

Each failed entry of the report (and a failed run's reason) is also logged as
one ``failure`` line with its ``code`` and ``reason``, so "every failure with its
reason" is one Logs Insights query instead of a walk through the report's arrays.
Counts read the report's actions and codes (``handler/outcomes.py``), never its text.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .log import context, log_document, log_event
from .outcomes import Code
from .run import Action, Status

NAMESPACE = "AmiUpgrade"
PARAMETER_DIMENSION = "Parameter"
STATUS_DIMENSION = "Status"

RUNS = "Runs"
GROUPS_REFRESHED = "GroupsRefreshed"
GROUPS_SKIPPED = "GroupsSkipped"
GROUPS_FAILED = "GroupsFailed"
GROUPS_DEFERRED = "GroupsDeferred"
INSTANCES_REPLACED = "InstancesReplaced"
INSTANCES_ROLLED_BACK = "InstancesRolledBack"
INSTANCES_FAILED = "InstancesFailed"
DURATION = "Duration"

# A run's statuses (the ``Runs`` metric's Status dimension), the report's vocabulary.
STATUSES = tuple(str(status) for status in Status)

COUNTS = (GROUPS_REFRESHED, GROUPS_SKIPPED, GROUPS_FAILED, GROUPS_DEFERRED, INSTANCES_REPLACED,
          INSTANCES_ROLLED_BACK, INSTANCES_FAILED)
# Every metric with its unit and the dimension sets it is published under.
UNITS: Mapping[str, str] = {RUNS: "Count", **dict.fromkeys(COUNTS, "Count"),
                            DURATION: "Seconds"}
DIMENSIONS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    RUNS: ((PARAMETER_DIMENSION,), (PARAMETER_DIMENSION, STATUS_DIMENSION)),
    **{name: ((PARAMETER_DIMENSION,),) for name in (*COUNTS, DURATION)},
}


def figures(report: Mapping[str, Any]) -> dict[str, int]:
    """The counts of ``report`` (a report dict, as returned by the function)."""
    groups = [g.get("action") for g in report.get("asgs") or ()]
    instances = report.get("instances") or ()
    failed = [i for i in instances if i.get("action") == Action.FAILED]
    return {
        RUNS: 1,
        GROUPS_REFRESHED: groups.count(Action.REFRESH_STARTED),
        GROUPS_SKIPPED: groups.count(Action.SKIPPED),
        GROUPS_FAILED: groups.count(Action.FAILED),
        GROUPS_DEFERRED: groups.count(Action.DEFERRED),   # left to a continuation
        INSTANCES_REPLACED: sum(i.get("action") == Action.REPLACED for i in instances),
        INSTANCES_ROLLED_BACK: sum(i.get("code") == Code.ROLLED_BACK for i in failed),
        INSTANCES_FAILED: len(failed),
    }


def document(report: Mapping[str, Any], duration_seconds: float,
             timestamp_ms: int | None = None) -> dict[str, Any]:
    """The EMF document for one run: a pure function of the report and the duration."""
    values: dict[str, Any] = {**figures(report), DURATION: round(duration_seconds, 3)}
    by_dimensions: dict[tuple[str, ...], list[str]] = {}
    for name, sets in DIMENSIONS.items():
        for dimension_set in sets:
            by_dimensions.setdefault(dimension_set, []).append(name)
    directives = [{"Namespace": NAMESPACE, "Dimensions": [list(dimension_set)],
                   "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in names]}
                  for dimension_set, names in by_dimensions.items()]
    return {
        "_aws": {"Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
                 "CloudWatchMetrics": directives},
        PARAMETER_DIMENSION: str(report.get("parameter") or ""),
        STATUS_DIMENSION: str(report.get("status") or ""),
        **values,
    }


def failures(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per failure in ``report``: what failed, and why."""
    found = []
    if report.get("status") == Status.FAILED and report.get("reason"):
        found.append({"kind": "run", "resource": report.get("parameter"),
                      "code": report.get("code"), "reason": report["reason"]})
    found += [{"kind": "asg", "resource": g.get("name"), "code": g.get("code"),
               "reason": g.get("reason", "")}
              for g in report.get("asgs") or () if g.get("action") == Action.FAILED]
    found += [{"kind": "instance", "resource": i.get("id"), "code": i.get("code"),
               "reason": i.get("reason", "")}
              for i in report.get("instances") or () if i.get("action") == Action.FAILED]
    return found


def publish(report: Mapping[str, Any], duration_seconds: float) -> None:
    """Write the run's metrics (EMF) and its failure lines to the log."""
    for failure in failures(report):
        log_event("failure", **failure)
    # With the run's context (request id ...): extra members are plain log fields in EMF.
    log_document({**context(), "event": "metrics", **document(report, duration_seconds)})
