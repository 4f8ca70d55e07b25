"""The hub: wave parameters shared through RAM, events forwarded to spokes, the promoter.

Deployed in the hub (publishing) account. Per region a wave covers: the wave's
advanced-tier parameter, its RAM share with the wave's accounts, and a rule sending
the parameter's change events to the spokes' default buses (cross-account target,
through a role); a report bus admitting the spokes of that region, forwarding to the
hub region's bus. In the hub region: the promoter function (its own package,
``hub/``), its state table, the rule on the source parameter, the rule on spoke
reports, and the Scheduler role its one-shot bake checks use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.function import RUNTIME, handler_archive
from components.hub_policy import (
    forward_policy,
    invoke_policy,
    promoter_policy,
    report_bus_policy,
)
from hub.settings import REPORT_BUS, HubSettings, Wave

HUB_DIR = Path(__file__).resolve().parent.parent / "hub"
PROMOTER_HANDLER = "hub.main.lambda_handler"
REPORT_SOURCE = "ami-upgrade.spoke"
PLACEHOLDER_VALUE = "unset"   # a wave parameter's value until the first promotion


@dataclass(frozen=True)
class HubArgs:
    settings: HubSettings
    function_name: str = "ami-upgrade-hub"
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.settings, HubSettings):
            raise ValueError("HubArgs.settings: expected HubSettings "
                             "(from hub.settings.load_hub_settings)")
        if not self.function_name:
            raise ValueError("HubArgs.function_name: required")


def _assume(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def _bus(region: str, account: str, name: str = "default") -> str:
    return f"arn:aws:events:{region}:{account}:event-bus/{name}"


class Hub(pulumi.ComponentResource):
    """``<name>-<wave>-<region>-{parameter,share,...}``, ``<name>-reports-<region>``,
    ``<name>-promoter``, ``<name>-state`` ... (see the module docstring)."""

    providers: dict[str, aws.Provider]
    parameters: dict[tuple[str, str], aws.ssm.Parameter]
    function: aws.lambda_.Function
    table: aws.dynamodb.Table
    report_buses: dict[str, aws.cloudwatch.EventBus]

    def __init__(self, name: str, args: HubArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Hub", name, None, opts)
        hub, tags = args.settings, dict(args.tags)
        self._name, self._hub, self._tags = name, hub, tags
        self.providers = {region: aws.Provider(f"{name}-provider-{region}", region=region,
                                               opts=pulumi.ResourceOptions(parent=self))
                          for region in sorted({hub.region, *hub.regions})}
        self.forward_role = self._role("forward", "events.amazonaws.com", forward_policy(
            [_bus(t.region, t.account) for w in hub.waves for t in w.targets]
            + [_bus(hub.region, hub.account, REPORT_BUS)]))
        self.parameters = {}
        for wave in hub.waves:
            for region in wave.regions:
                self._wave(wave, region)
        self.table = aws.dynamodb.Table(
            f"{name}-state", name=f"{args.function_name}-state",   # the CLI reads it by name
            billing_mode="PAY_PER_REQUEST", hash_key="pk",
            attributes=[{"name": "pk", "type": "S"}],
            point_in_time_recovery={"enabled": True}, tags=tags, opts=self._in(hub.region))
        self._promoter(args.function_name)
        self.report_buses = {region: self._report_bus(region) for region in self.providers}
        self.register_outputs({
            "function_arn": self.function.arn, "table_name": self.table.name,
            "wave_parameter_arns": self.wave_parameter_arns,
            "report_bus_arns": {r: b.arn for r, b in self.report_buses.items()}})

    @property
    def wave_parameter_arns(self) -> dict[str, str]:
        """``<wave>/<region>`` -> the ARN a spoke there configures as its ``parameterName``."""
        return {f"{w.name}/{r}": self._hub.wave_parameter_arn(w, r)
                for w in self._hub.waves for r in w.regions}

    def _in(self, region: str, depends_on: list[pulumi.Resource] | None = None,
            ignore_changes: list[str] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.providers[region],
                                      depends_on=depends_on, ignore_changes=ignore_changes)

    def _role(self, role: str, service: str, policy: dict) -> aws.iam.Role:
        created = aws.iam.Role(f"{self._name}-{role}-role", assume_role_policy=_assume(service),
                               tags=self._tags, opts=self._in(self._hub.region))
        aws.iam.RolePolicy(f"{self._name}-{role}-policy", role=created.id,
                           policy=json.dumps(policy), opts=self._in(self._hub.region))
        return created

    def _wave(self, wave: Wave, region: str) -> None:
        """The wave's parameter in ``region``, shared with the wave's accounts there, and the
        rule forwarding its changes to those spokes' default buses."""
        base, hub = f"{self._name}-{wave.name}-{region}", self._hub
        parameter = aws.ssm.Parameter(
            f"{base}-parameter", name=hub.wave_parameter_name(wave), type="String",
            tier=wave.tier, value=PLACEHOLDER_VALUE, tags=self._tags,
            opts=self._in(region, ignore_changes=["value"]))   # the promoter writes it
        self.parameters[(wave.name, region)] = parameter
        share = aws.ram.ResourceShare(f"{base}-share", name=base,
                                      allow_external_principals=hub.organization_id is None,
                                      tags=self._tags, opts=self._in(region))
        aws.ram.ResourceAssociation(f"{base}-share-parameter", resource_arn=parameter.arn,
                                    resource_share_arn=share.arn, opts=self._in(region))
        accounts = sorted({t.account for t in wave.targets if t.region == region})
        for account in accounts:
            aws.ram.PrincipalAssociation(f"{base}-share-{account}", principal=account,
                                         resource_share_arn=share.arn, opts=self._in(region))
        for unit in wave.organizational_units:   # every account of the OU may read it
            aws.ram.PrincipalAssociation(f"{base}-share-{unit}", principal=hub.ou_arn(unit),
                                         resource_share_arn=share.arn, opts=self._in(region))
        rule = aws.cloudwatch.EventRule(
            f"{base}-rule", description=f"ami-upgrade hub: wave {wave.name} to its spokes",
            event_pattern=json.dumps({
                "source": ["aws.ssm"], "detail-type": ["Parameter Store Change"],
                "detail": {"name": [hub.wave_parameter_name(wave)],
                           "operation": ["Create", "Update"]}}),
            tags=self._tags, opts=self._in(region))
        for account in accounts:
            aws.cloudwatch.EventTarget(
                f"{base}-to-{account}", rule=rule.name, arn=_bus(region, account),
                role_arn=self.forward_role.arn, opts=self._in(region))

    def _promoter(self, function_name: str) -> None:
        hub, region = self._hub, self._hub.region
        log_group = aws.cloudwatch.LogGroup(f"{self._name}-promoter-logs",
                                            name=f"/aws/lambda/{function_name}",
                                            retention_in_days=30, tags=self._tags,
                                            opts=self._in(region))
        role = aws.iam.Role(f"{self._name}-promoter-role",
                            assume_role_policy=_assume("lambda.amazonaws.com"),
                            tags=self._tags, opts=self._in(region))
        function_arn = f"arn:aws:lambda:{region}:{hub.account}:function:{function_name}"
        self.scheduler_role = self._role("scheduler", "scheduler.amazonaws.com",
                                         invoke_policy(function_arn))
        policy = aws.iam.RolePolicy(
            f"{self._name}-promoter-policy", role=role.id,
            policy=pulumi.Output.all(self.table.arn, self.scheduler_role.arn,
                                     log_group.arn).apply(
                lambda v: json.dumps(promoter_policy(hub, table_arn=v[0],
                                                     scheduler_role_arn=v[1],
                                                     log_group_arn=v[2]))),
            opts=self._in(region))
        self.function = aws.lambda_.Function(
            f"{self._name}-promoter", name=function_name, role=role.arn,
            runtime=RUNTIME, handler=PROMOTER_HANDLER, code=handler_archive(HUB_DIR),
            timeout=60, memory_size=256, reserved_concurrent_executions=1,
            environment={"variables": {
                "HUB_SETTINGS": hub.to_document(), "HUB_STATE_TABLE": self.table.name,
                "HUB_FUNCTION_ARN": function_arn,
                "HUB_SCHEDULER_ROLE_ARN": self.scheduler_role.arn}},
            tags=self._tags, opts=self._in(region, depends_on=[policy, log_group]))
        self._invoke_on(f"{self._name}-source", {
            "source": ["aws.ssm"], "detail-type": ["Parameter Store Change"],
            "detail": {"name": [hub.source_parameter_name], "operation": ["Create", "Update"]}})

    def _invoke_on(self, base: str, pattern: dict, bus_name: pulumi.Input[str] | None = None
                   ) -> None:
        region = self._hub.region
        rule = aws.cloudwatch.EventRule(f"{base}-rule", event_pattern=json.dumps(pattern),
                                        event_bus_name=bus_name, tags=self._tags,
                                        opts=self._in(region))
        permission = aws.lambda_.Permission(
            f"{base}-permission", action="lambda:InvokeFunction", function=self.function.name,
            principal="events.amazonaws.com", source_arn=rule.arn, opts=self._in(region))
        aws.cloudwatch.EventTarget(f"{base}-target", rule=rule.name, arn=self.function.arn,
                                   event_bus_name=bus_name,
                                   opts=self._in(region, depends_on=[permission]))

    def _report_bus(self, region: str) -> aws.cloudwatch.EventBus:
        """Spokes of ``region`` put their reports here; reports reach the promoter."""
        hub, base = self._hub, f"{self._name}-reports-{region}"
        bus = aws.cloudwatch.EventBus(base, name=REPORT_BUS, tags=self._tags,
                                      opts=self._in(region))
        aws.cloudwatch.EventBusPolicy(
            f"{base}-policy", event_bus_name=bus.name,
            policy=bus.arn.apply(lambda arn: json.dumps(report_bus_policy(hub, region, arn))),
            opts=self._in(region))
        pattern = {"source": [REPORT_SOURCE], "detail-type": ["ami-upgrade report"]}
        if region == hub.region:
            self._invoke_on(base, pattern, bus.name)
            return bus
        rule = aws.cloudwatch.EventRule(f"{base}-rule", event_bus_name=bus.name,
                                        event_pattern=json.dumps(pattern), tags=self._tags,
                                        opts=self._in(region))
        aws.cloudwatch.EventTarget(f"{base}-to-hub", rule=rule.name, event_bus_name=bus.name,
                                   arn=_bus(hub.region, hub.account, REPORT_BUS),
                                   role_arn=self.forward_role.arn, opts=self._in(region))
        return bus
