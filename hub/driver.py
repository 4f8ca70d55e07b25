"""The promoter's I/O: events in, the decision of :mod:`hub.promoter` carried out on AWS.

One invocation: parse the event (a bad one is reported as ignored, never raised),
load the rollout (one DynamoDB item), read the wave's gate alarms when a bake check
is due, decide, carry out the actions (each idempotent), save the rollout with a
condition on the version it was read at. A crash before the save leaves the old
state; the event's redelivery (Lambda's async retries, the spoke's next report, the
schedule's retry) decides the same and carries it out again. A save that loses the
race to a concurrent invocation raises, so the event is redelivered and decided on
the newer state.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from hub.promoter import (
    OPERATOR_COMMANDS,
    Action,
    BakeElapsed,
    Event,
    Notify,
    Operator,
    Phase,
    Rollout,
    ScheduleCheck,
    SourceChanged,
    SpokeReported,
    WriteWave,
    decide,
    region_ami,
)
from hub.settings import ACCOUNT_RE, REGION_RE, HubSettings, Target

STATE_KEY = "rollout"
SPOKE_SOURCE = "ami-upgrade.spoke"
SPOKE_DETAIL_TYPE = "ami-upgrade report"
BAKE_KIND = "bake-elapsed"
# A spoke's report says how far its estate is (handler.engine.hub_counts): groups still
# refreshing toward the AMI, groups whose refresh rolled back, resources with work left.
REPORT_COUNTS = ("refreshing", "rolled_back", "pending")


class StaleState(RuntimeError):
    """Another invocation saved the rollout first: redeliver and decide again."""


@dataclass(frozen=True)
class HubClients:
    """The hub account's clients: SSM per region the waves cover, CloudWatch per region of
    the gate alarms, the rest in the hub region."""

    ssm: Mapping[str, Any]
    dynamodb: Any
    scheduler: Any
    cloudwatch: Mapping[str, Any]


@dataclass(frozen=True)
class Deployment:
    """What the stack deployed for the promoter (its environment)."""

    table_name: str
    function_arn: str
    scheduler_role_arn: str
    schedule_group: str = "default"


def rollout_to_item(state: Rollout) -> dict[str, Any]:
    body = {"ami": state.ami, "previous_ami": state.previous_ami, "wave": state.wave,
            "phase": str(state.phase), "converged": sorted(state.converged),
            "reports": [list(r) for r in state.reports],
            "wave_started_at": state.wave_started_at, "bake_until": state.bake_until,
            "held": state.held, "reason": state.reason,
            "history": [list(h) for h in state.history]}
    return {"pk": {"S": STATE_KEY}, "version": {"N": str(state.version)},
            "state": {"S": json.dumps(body, sort_keys=True)}}


def rollout_from_item(item: Mapping[str, Any] | None) -> Rollout:
    if not item:
        return Rollout()
    body = json.loads(item["state"]["S"])
    return Rollout(
        ami=body["ami"], previous_ami=body["previous_ami"], wave=body["wave"],
        phase=Phase(body["phase"]), converged=frozenset(body["converged"]),
        reports=tuple(tuple(r) for r in body["reports"]),
        wave_started_at=body["wave_started_at"], bake_until=body["bake_until"],
        held=body["held"], reason=body["reason"],
        history=tuple(tuple(h) for h in body["history"]),
        version=int(item["version"]["N"]))


class Promoter:
    """The hub's promoter: takes its clients and settings; no client at module level."""

    def __init__(self, hub: HubSettings, clients: HubClients, deployment: Deployment,
                 now: Callable[[], dt.datetime]) -> None:
        self.hub = hub
        self.clients = clients
        self.deployment = deployment
        self.now = now

    # -- state ------------------------------------------------------------------------
    def load(self) -> Rollout:
        response = self.clients.dynamodb.get_item(
            TableName=self.deployment.table_name, Key={"pk": {"S": STATE_KEY}},
            ConsistentRead=True)
        return rollout_from_item(response.get("Item"))

    def save(self, state: Rollout, read_version: int) -> Rollout:
        saved = Rollout(**{**state.__dict__, "version": read_version + 1})
        try:
            self.clients.dynamodb.put_item(
                TableName=self.deployment.table_name, Item=rollout_to_item(saved),
                ConditionExpression="attribute_not_exists(pk) OR version = :v",
                ExpressionAttributeValues={":v": {"N": str(read_version)}})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StaleState("the rollout was saved by another invocation") from None
            raise
        return saved

    # -- events -----------------------------------------------------------------------
    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One event end to end; the result says what was decided (or why it was ignored)."""
        state = self.load()
        parsed = self.parse(event, state)
        if isinstance(parsed, str):
            return {"status": "ignored", "reason": parsed}
        next_state, actions = decide(self.hub, state, parsed)
        for action in actions:
            self.carry_out(action)
        if next_state != state:
            next_state = self.save(next_state, state.version)
        return {"status": "decided", "phase": str(next_state.phase), "wave": next_state.wave,
                "ami": next_state.ami,
                "notifications": [a.kind for a in actions if isinstance(a, Notify)]}

    def parse(self, event: Mapping[str, Any], state: Rollout) -> Event | str:
        """The event as a promoter event, or the reason it is ignored."""
        if not isinstance(event, Mapping):
            return "the event is not an object"
        if event.get("kind") == BAKE_KIND:
            return self._bake_event(event)
        if event.get("kind") == "operator":
            command = event.get("command")
            if command not in OPERATOR_COMMANDS:
                return f"unknown operator command {command!r}"
            return Operator(str(command), self.now())
        if event.get("source") == "aws.ssm":
            return self._source_event(event)
        if event.get("source") == SPOKE_SOURCE and event.get("detail-type") == SPOKE_DETAIL_TYPE:
            return self._spoke_event(event)
        return "not an event the promoter handles"

    def _source_event(self, event: Mapping[str, Any]) -> Event | str:
        detail = event.get("detail") or {}
        if detail.get("name") != self.hub.source_parameter_name:
            return "a change of another parameter"
        try:
            value = self.clients.ssm[self.hub.region].get_parameter(
                Name=self.hub.source_parameter_name)["Parameter"]["Value"]
        except ClientError as exc:
            return f"the source parameter cannot be read ({exc.response['Error']['Code']})"
        missing = [r for r in self.hub.regions if region_ami(value, r) is None]
        if missing:
            return (f"the source parameter names no AMI for {', '.join(missing)} "
                    f"({str(value)[:60]!r})")
        return SourceChanged(value, self.now())

    def _spoke_event(self, event: Mapping[str, Any]) -> Event | str:
        # The envelope's account is set by EventBridge: the sender cannot choose it.
        account = event.get("account")
        detail = event.get("detail") or {}
        region = detail.get("region")
        if not isinstance(account, str) or not ACCOUNT_RE.match(account):
            return "a report without a sending account"
        if not isinstance(region, str) or not REGION_RE.match(region):
            return "a report without the spoke's region"
        target = Target(account, region)
        if self.hub.wave_of(target) is None:
            return f"a report from {target.key}, a spoke of no wave"
        ami = detail.get("ami_id")
        status = detail.get("status")
        if (ami is not None and not isinstance(ami, str)) or not isinstance(status, str):
            return "a report without ami_id and status"
        counts = {key: n for key in REPORT_COUNTS if isinstance(n := detail.get(key), int)
                  and not isinstance(n, bool) and n >= 0}
        if len(counts) < len(REPORT_COUNTS):
            return f"a report without its counts ({', '.join(REPORT_COUNTS)})"
        if detail.get("dry_run") is not False:
            status = "dry-run"   # a dry run changes nothing: never convergence
        return SpokeReported(target, ami, status, self.now(), **counts)

    def _bake_event(self, event: Mapping[str, Any]) -> Event | str:
        wave, ami = event.get("wave"), event.get("ami")
        if not isinstance(wave, int) or not 0 <= wave < len(self.hub.waves) \
                or not isinstance(ami, str):
            return "a bake check without its wave and AMI"
        return BakeElapsed(wave, ami, self.alarms_in_alarm(wave), self.now())

    def alarms_in_alarm(self, wave: int) -> tuple[str, ...]:
        """The wave's gate alarms in ALARM, as configured (names or ARNs), read in each
        alarm's region; one that does not exist counts as in ALARM."""
        alarms = self.hub.waves[wave].gate_alarms
        by_region: dict[str, list[str]] = {}
        for alarm in alarms:
            region, name = self.hub.alarm_location(alarm)
            by_region.setdefault(region, []).append(name)
        states: dict[tuple[str, str], str] = {}
        for region, names in sorted(by_region.items()):
            found = self.clients.cloudwatch[region].describe_alarms(
                AlarmNames=sorted(set(names)), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
            states.update({(region, a["AlarmName"]): a["StateValue"]
                           for kind in ("MetricAlarms", "CompositeAlarms")
                           for a in found.get(kind, [])})
        located = [(alarm, self.hub.alarm_location(alarm)) for alarm in alarms]
        return tuple(alarm if at in states else f"{alarm} (missing)" for alarm, at in located
                     if states.get(at, "ALARM") == "ALARM")

    # -- actions ----------------------------------------------------------------------
    def carry_out(self, action: Action) -> None:
        if isinstance(action, WriteWave):
            self._write_wave(action)
        elif isinstance(action, ScheduleCheck):
            self._schedule(action)
        else:
            print(json.dumps({"notification": action.kind, **action.detail}))

    def _write_wave(self, action: WriteWave) -> None:
        wave = self.hub.waves[action.wave]
        name = self.hub.wave_parameter_name(wave)
        for region in wave.regions:
            ssm = self.clients.ssm[region]
            ami = region_ami(action.ami, region)
            try:
                if ssm.get_parameter(Name=name)["Parameter"]["Value"] == ami:
                    continue   # written before a crash: a second write would re-trigger spokes
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ParameterNotFound":
                    raise
            ssm.put_parameter(Name=name, Value=ami, Type="String", Overwrite=True,
                              Tier=wave.tier)

    def _schedule(self, action: ScheduleCheck) -> None:
        at = action.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        try:
            self.clients.scheduler.create_schedule(
                Name=action.name, GroupName=self.deployment.schedule_group,
                ScheduleExpression=f"at({at})", ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
                Target={"Arn": self.deployment.function_arn,
                        "RoleArn": self.deployment.scheduler_role_arn,
                        "Input": json.dumps({"kind": BAKE_KIND, "wave": action.wave,
                                             "ami": action.ami})})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConflictException":
                raise   # an existing schedule of that name is this very check
