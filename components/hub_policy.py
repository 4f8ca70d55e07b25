"""The hub's IAM policies as pure functions (checked like the spoke's role policy)."""

from __future__ import annotations

from typing import Any

from hub.settings import HubSettings

SCHEDULE_PREFIX = "ami-upgrade-hub-"


def _statement(sid: str, actions: list[str], resources: list[str],
               condition: dict[str, Any] | None = None) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
                            "Resource": resources}
    if condition:
        stmt["Condition"] = condition
    return stmt


def promoter_policy(hub: HubSettings, *, table_arn: str, scheduler_role_arn: str,
                    log_group_arn: str, partition: str = "aws") -> dict[str, Any]:
    """What the promoter calls, on exactly the resources it calls it on."""
    account, region = hub.account, hub.region
    source = (f"arn:{partition}:ssm:{region}:{account}:parameter/"
              f"{hub.source_parameter_name.lstrip('/')}")
    waves = sorted(hub.wave_parameter_arn(w, r).replace("arn:aws:", f"arn:{partition}:", 1)
                   for w in hub.waves for r in w.regions)
    alarms = sorted({hub.alarm_arn(a, partition) for w in hub.waves for a in w.gate_alarms})
    statements = [
        _statement("ReadSource", ["ssm:GetParameter"], [source]),
        _statement("WriteWaves", ["ssm:GetParameter", "ssm:PutParameter"], waves),
        _statement("RolloutState", ["dynamodb:GetItem", "dynamodb:PutItem"], [table_arn]),
        _statement("ScheduleBakeChecks", ["scheduler:CreateSchedule"],
                   [f"arn:{partition}:scheduler:{region}:{account}:schedule/default/"
                    f"{SCHEDULE_PREFIX}*"]),
        _statement("PassSchedulerRole", ["iam:PassRole"], [scheduler_role_arn],
                   {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}),
        _statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                   [f"{log_group_arn}:log-stream:*"]),
    ]
    if alarms:
        statements.insert(3, _statement("ReadGates", ["cloudwatch:DescribeAlarms"], alarms))
    return {"Version": "2012-10-17", "Statement": statements}


def forward_policy(bus_arns: list[str]) -> dict[str, Any]:
    """The role EventBridge assumes to put events on other buses (spokes', the hub's)."""
    return {"Version": "2012-10-17", "Statement": [
        _statement("Forward", ["events:PutEvents"], sorted(set(bus_arns)))]}


def invoke_policy(function_arn: str) -> dict[str, Any]:
    """The role EventBridge Scheduler assumes to invoke the promoter at a bake's end."""
    return {"Version": "2012-10-17", "Statement": [
        _statement("InvokePromoter", ["lambda:InvokeFunction"], [function_arn])]}


def report_bus_policy(hub: HubSettings, region: str, bus_arn: str) -> dict[str, Any]:
    """Who may send reports to the hub's bus in ``region``: the spokes of that region
    (or the organisation), and only reports (``events:source``)."""
    condition: dict[str, Any] = {"StringEquals": {"events:source": "ami-upgrade.spoke"}}
    if hub.organization_id:
        principal: Any = "*"
        condition["StringEquals"]["aws:PrincipalOrgID"] = hub.organization_id
    else:
        accounts = sorted({t.account for w in hub.waves for t in w.targets
                           if t.region == region})
        principal = {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]}
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "SpokeReports", "Effect": "Allow", "Principal": principal,
        "Action": "events:PutEvents", "Resource": bus_arn, "Condition": condition}]}


def spoke_bus_statement_id(function_name: str) -> str:
    """The id of the statement a spoke adds to its default bus's policy: its own, so the
    bus's other statements (a landing zone's, another tool's) stay as they are. Letters and
    digits only, as IAM wants of a ``Sid`` (EventBridge would take ``-`` and ``_`` too)."""
    return ("".join(c for c in function_name if c.isalnum()) + "HubWaves")[-64:]


def spoke_bus_policy(hub_account: str, bus_arn: str, organization_id: str | None = None,
                     statement_id: str = "HubWaveEvents") -> dict[str, Any]:
    """The statement a spoke adds to its default bus (``events:PutPermission``, as
    ``aws.cloudwatch.EventPermission`` writes it): ``PutEvents`` from the hub account, or
    from any account of the hub's organisation. The spoke's rule matches only the hub
    account's change of its wave parameter, so other events admitted trigger nothing."""
    statement: dict[str, Any] = {"Sid": statement_id, "Effect": "Allow",
                                 "Action": "events:PutEvents", "Resource": bus_arn}
    if organization_id:
        statement["Principal"] = "*"
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
    else:
        statement["Principal"] = {"AWS": f"arn:aws:iam::{hub_account}:root"}
    return {"Version": "2012-10-17", "Statement": [statement]}
