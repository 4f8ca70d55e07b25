"""What the operator asks about: refreshes, standalone replacements, the last report.

Read-only except ``cancel_refresh``. Scope follows the engine's rules closely enough
to choose what to show (the stack's ``scope``, exclusion list and exclude tag); what
may be *cancelled* is decided by the engine's own record, the group's
``ami-upgrade:refresh-id`` tag, never by scope alone.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from components.stack_settings import StackSettings
from handler import tags as t

ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
CANCELLABLE = frozenset({"Pending", "InProgress", "Baking"})
FAILED = frozenset({"Failed", "RollbackFailed", "RollbackSuccessful"})
RECENT = dt.timedelta(hours=24)
LOG_STREAMS_SEARCHED = 10


@dataclass(frozen=True)
class Refresh:
    group: str
    refresh_id: str
    status: str
    percentage: int | None
    instances_to_update: int | None
    checkpoint: str
    status_reason: str
    started: str | None
    ended: str | None
    ours: bool               # the refresh the engine started (the group's refresh-id tag)
    target_ami: str | None   # the group's refresh-ami tag, for our refresh

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Replacement:
    instance: str
    state: str
    phase: str               # replacing | rolling-back | new-instance | root-volume | failed | kept
    target_ami: str | None
    detail: str

    @property
    def failed(self) -> bool:
        return self.phase == "failed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _follows(stack: StackSettings, tags: dict[str, str]) -> bool:
    """The stack's scope rule on a resource's tags (exclusion by tag included)."""
    if t.excluded_by_tag(tags) is not False:   # excluded, or a value the engine leaves alone
        return False
    follows = tags.get(t.PARAMETER, "")
    return follows == stack.parameter_name or (stack.scope == "all" and not follows)


def groups_in_scope(autoscaling: Any, stack: StackSettings) -> list[dict]:
    groups = _pages(autoscaling, "describe_auto_scaling_groups", "AutoScalingGroups")
    return [g for g in groups
            if g["AutoScalingGroupName"] not in stack.excluded_asgs
            and _follows(stack, t.tag_map(g.get("Tags")))]


def group_members(autoscaling: Any) -> dict[str, str]:
    """Every Auto Scaling group's instances: instance ID -> group name (as AWS lists them)."""
    groups = _pages(autoscaling, "describe_auto_scaling_groups", "AutoScalingGroups")
    return {i["InstanceId"]: g["AutoScalingGroupName"]
            for g in groups for i in g.get("Instances", [])}


def _checkpoint(refresh: dict) -> str:
    points = refresh.get("Preferences", {}).get("CheckpointPercentages") or []
    if not points:
        return ""
    done = refresh.get("PercentageComplete") or 0
    upcoming = [p for p in points if p > done]
    listed = ",".join(str(p) for p in points)
    if not upcoming:
        return f"all passed ({listed}%)"
    return f"next {upcoming[0]}% of {listed}%"


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def refreshes(autoscaling: Any, stack: StackSettings, now: dt.datetime) -> list[Refresh]:
    """Each in-scope group's latest refresh, when it is active or ended within RECENT."""
    found = []
    for group in groups_in_scope(autoscaling, stack):
        name = group["AutoScalingGroupName"]
        tags = t.tag_map(group.get("Tags"))
        latest = autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=name, MaxRecords=1).get("InstanceRefreshes", [])
        if not latest:
            continue
        refresh = latest[0]
        ended = refresh.get("EndTime")
        if refresh["Status"] not in ACTIVE and ended and now - ended > RECENT:
            continue
        ours = tags.get(t.REFRESH_ID) == refresh["InstanceRefreshId"]
        found.append(Refresh(
            group=name, refresh_id=refresh["InstanceRefreshId"], status=refresh["Status"],
            percentage=refresh.get("PercentageComplete"),
            instances_to_update=refresh.get("InstancesToUpdate"),
            checkpoint=_checkpoint(refresh), status_reason=refresh.get("StatusReason", ""),
            started=_iso(refresh.get("StartTime")), ended=_iso(ended), ours=ours,
            target_ami=tags.get(t.REFRESH_AMI) if ours else None))
    return found


def replacements(ec2: Any, stack: StackSettings) -> list[Replacement]:
    """Standalone instances the engine's progress tags mark in flight, failed or kept."""
    keys = [t.IN_FLIGHT, t.ROLLBACK, t.ROOT_VOLUME_AMI, t.FAILED_AMI, t.REPLACED_BY]
    reservations = _pages(ec2, "describe_instances", "Reservations",
                          Filters=[{"Name": "tag-key", "Values": keys}])
    found = []
    for instance in (i for r in reservations for i in r["Instances"]):
        state = instance["State"]["Name"]
        tags = t.tag_map(instance.get("Tags"))
        in_flight = tags.get(t.IN_FLIGHT) == stack.parameter_name
        if state == "terminated" or not (in_flight or _follows(stack, tags)):
            continue
        found.append(Replacement(instance["InstanceId"], state, *_phase(tags, in_flight)))
    return sorted(found, key=lambda r: r.instance)


def _phase(tags: dict[str, str], in_flight: bool) -> tuple[str, str | None, str]:
    if in_flight and t.ROLLBACK in tags:
        return "rolling-back", tags.get(t.TARGET_AMI), tags[t.ROLLBACK]
    if in_flight and t.REPLACES in tags:
        return "new-instance", None, f"replaces {tags[t.REPLACES]}"
    if in_flight and t.ROOT_VOLUME_AMI in tags:
        return "root-volume", tags[t.ROOT_VOLUME_AMI], "root volume being replaced in place"
    if in_flight:
        return "replacing", tags.get(t.TARGET_AMI), f"attempt {tags.get(t.ATTEMPT, '1')}"
    if t.FAILED_AMI in tags:
        return "failed", tags[t.FAILED_AMI], (tags.get(t.FAILURE_REASON, "")
                                             + f" (not retried until the {t.FAILED_AMI} tag "
                                               "is removed)")
    if t.ROOT_VOLUME_AMI in tags:
        return "root-volume", tags[t.ROOT_VOLUME_AMI], "root volume being replaced in place"
    return "kept", None, f"kept stopped, replaced by {tags.get(t.REPLACED_BY, '?')}"


def last_report(logs: Any, stack: StackSettings) -> tuple[dict | None, str]:
    """The newest ``report`` line in the function's log group, and where it came from."""
    try:
        streams = logs.describe_log_streams(
            logGroupName=stack.log_group_name, orderBy="LastEventTime", descending=True,
            limit=LOG_STREAMS_SEARCHED).get("logStreams", [])
        for stream in streams:
            events = logs.get_log_events(logGroupName=stack.log_group_name,
                                         logStreamName=stream["logStreamName"],
                                         startFromHead=False).get("events", [])
            for event in reversed(events):
                report = _report_line(event.get("message", ""))
                if report is not None:
                    when = dt.datetime.fromtimestamp(event["timestamp"] / 1000, dt.UTC)
                    return report, f"{stack.log_group_name} at {when.isoformat()}"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        return None, f"cannot read {stack.log_group_name}: {code}"
    return None, f"no report in the last {LOG_STREAMS_SEARCHED} streams of {stack.log_group_name}"


def _report_line(message: str) -> dict | None:
    # Lambda may prefix a line with a timestamp and request ID: the JSON starts at "{".
    start = message.find("{")
    if start < 0:
        return None
    try:
        line = json.loads(message[start:])
    except json.JSONDecodeError:
        return None
    if not isinstance(line, dict) or line.get("event") != "report":
        return None
    return {k: v for k, v in line.items() if k != "event"}


def cancellable(autoscaling: Any, stack: StackSettings) -> list[Refresh]:
    """Active refreshes the engine started: the group's active refresh is its refresh-id."""
    now = dt.datetime.now(dt.UTC)
    return [r for r in refreshes(autoscaling, stack, now) if r.ours and r.status in CANCELLABLE]


def cancel_refresh(autoscaling: Any, refresh: Refresh) -> str:
    """Cancel ``refresh`` if it is still the group's active one and ours; the outcome."""
    latest = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName=refresh.group, MaxRecords=1).get("InstanceRefreshes", [])
    if not latest or latest[0]["InstanceRefreshId"] != refresh.refresh_id:
        return "skipped: no longer the group's active refresh"
    if latest[0]["Status"] not in CANCELLABLE:
        return f"skipped: now {latest[0]['Status']}"
    cancelled = autoscaling.cancel_instance_refresh(AutoScalingGroupName=refresh.group)
    if cancelled.get("InstanceRefreshId") not in (None, refresh.refresh_id):
        return f"cancelled {cancelled['InstanceRefreshId']} (not {refresh.refresh_id})"
    return "cancelled"
