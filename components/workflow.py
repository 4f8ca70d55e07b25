"""AmiUpgradeWorkflow: the whole deployment for one stack, composed of the components."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.configuration import Configuration, ConfigurationArgs
from components.dashboard import Dashboard, DashboardArgs
from components.follow_up import FollowUp, FollowUpArgs
from components.function import Function, FunctionArgs
from components.hub_policy import spoke_bus_statement_id
from components.limits import configuration_tier
from components.monitoring import Monitoring, MonitoringArgs
from components.permissions import Permissions, PermissionsArgs
from components.refresh_events import RefreshEvents, RefreshEventsArgs
from components.schedule import Schedule, ScheduleArgs
from components.stack_settings import StackSettings
from components.tags import standard_tags
from components.trigger import Trigger, TriggerArgs
from handler.triggers import REFRESH_ENDED


@dataclass(frozen=True)
class AmiUpgradeWorkflowArgs:
    settings: StackSettings

    def __post_init__(self) -> None:
        if not isinstance(self.settings, StackSettings):
            raise ValueError("AmiUpgradeWorkflowArgs.settings: expected StackSettings "
                             "(from components.stack_settings.load_stack_settings)")


class AmiUpgradeWorkflow(pulumi.ComponentResource):
    """Permissions -> function (+ alias) -> trigger on the alias, plus monitoring."""

    permissions: Permissions
    configuration: Configuration | None
    function: Function
    trigger: Trigger
    refresh_ended: Trigger | None
    follow_up: FollowUp
    schedule: Schedule | None
    refresh_events: RefreshEvents
    hub_bus_permission: aws.cloudwatch.EventPermission | None
    monitoring: Monitoring
    dashboard: Dashboard
    function_name: pulumi.Output[str]
    alias_arn: pulumi.Output[str]
    rule_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AmiUpgradeWorkflowArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:AmiUpgradeWorkflow", name, None, opts)
        s = args.settings
        tags = standard_tags(s.project, s.stack, s.tags)
        child = pulumi.ResourceOptions(parent=self)

        self.permissions = Permissions(f"{name}-permissions", PermissionsArgs(
            parameter_name=s.parameter_name,
            scope=s.scope,
            function_name=s.function_name,
            log_group_name=s.log_group_name,
            region=s.region,
            exclusions_parameter_name=s.exclusions_parameter_name,
            kms_key_arns=s.kms_key_arns,
            instance_roles=s.instance_roles,
            notification_topic_arn=s.notification_topic_arn,
            hub_event_bus_arn=s.values.get("hubEventBusArn"),
            allowed_ami_owners=tuple(s.values.get("allowedAmiOwners") or ("self",)),
            tags=tags,
        ), child)
        # A configuration too large for Lambda's environment goes into an SSM parameter.
        document = s.configuration_document()
        self.configuration = None if document is None else Configuration(
            f"{name}-configuration", ConfigurationArgs(
                parameter_name=s.configuration_parameter_name, document=document,
                tier=configuration_tier(document), role_id=self.permissions.role.id,
                tags=tags), child)
        configuration_deps = (() if self.configuration is None else
                              (self.configuration.parameter, self.configuration.read))
        self.function = Function(f"{name}-function", FunctionArgs(
            function_name=s.function_name,
            alias_name=s.alias_name,
            role_arn=self.permissions.role_arn,
            environment=s.lambda_environment(),
            log_group_name=s.log_group_name,
            log_retention_days=s.log_retention_days,
            timeout_seconds=s.timeout_seconds,
            memory_size=s.memory_size,
            reserved_concurrency=s.reserved_concurrency,
            on_failure_destination_arn=s.notification_topic_arn,
            tags=tags,
            depends_on=(self.permissions.policy, *configuration_deps),
        ), child)
        self.trigger = Trigger(f"{name}-trigger", TriggerArgs(
            trigger=s.trigger,
            parameter_name=s.parameter_name,
            function_name=self.function.function_name,
            # Outputs, not the plain name: the permission must wait for the alias.
            alias_name=self.function.alias_name,
            alias_arn=self.function.alias_arn,
            tags=tags,
        ), child)
        self.refresh_ended = self._refresh_ended(name, s, tags)
        self.follow_up = FollowUp(f"{name}-follow-up", FollowUpArgs(
            function_name=s.function_name, parameter_name=s.parameter_name,
            alias_name=self.function.alias_name, alias_arn=self.function.alias_arn,
            dry_run=s.dry_run, tags=tags), child)
        self.hub_bus_permission = self._admit_hub(name, s)
        self._observe(name, s, tags)

        self.function_name = self.function.function_name
        self.alias_arn = self.function.alias_arn
        self.rule_arn = self.trigger.rule_arn
        self.role_arn = self.permissions.role_arn
        self.register_outputs({
            "function_name": self.function_name,
            "alias_arn": self.alias_arn,
            "rule_arn": self.rule_arn,
            "role_arn": self.role_arn,
        })

    def _refresh_ended(self, name: str, s: StackSettings, tags: dict[str, str]
                       ) -> Trigger | None:
        """A spoke (``hubEventBusArn``) runs again when an instance refresh of its estate
        ends, so its hub hears when its groups are on the AMI, not only that their
        refreshes started. A stack of no hub keeps its one trigger."""
        if not s.values.get("hubEventBusArn"):
            return None
        return Trigger(f"{name}-refresh-ended", TriggerArgs(
            trigger=REFRESH_ENDED, parameter_name=s.parameter_name,
            function_name=self.function.function_name, alias_name=self.function.alias_name,
            alias_arn=self.function.alias_arn, tags=tags),
            pulumi.ResourceOptions(parent=self))

    def _admit_hub(self, name: str,
                   s: StackSettings) -> aws.cloudwatch.EventPermission | None:
        """A spoke's default bus admits its hub's forwarded wave events (the hub account, or
        the hub's organisation): one statement of its own (``PutPermission``), so the
        bus's other statements are left as they are; its trigger rule listens there."""
        if s.hub_account is None:
            return None
        organization = s.hub_organization_id
        condition = (aws.cloudwatch.EventPermissionConditionArgs(
            key="aws:PrincipalOrgID", type="StringEquals", value=organization)
            if organization else None)
        return aws.cloudwatch.EventPermission(
            f"{name}-hub-bus-permission", event_bus_name="default",
            statement_id=spoke_bus_statement_id(s.function_name),
            action="events:PutEvents", principal="*" if organization else s.hub_account,
            condition=condition, opts=pulumi.ResourceOptions(parent=self))

    def _observe(self, name: str, s: StackSettings, tags: dict[str, str]) -> None:
        """The scheduled reconcile, refresh outcomes, alarms and dashboard."""
        child = pulumi.ResourceOptions(parent=self)
        self.schedule = None
        if s.reconcile_schedule:
            self.schedule = Schedule(f"{name}-schedule", ScheduleArgs(
                schedule_expression=s.reconcile_schedule,
                parameter_name=s.parameter_name,
                dry_run=s.dry_run,
                function_name=self.function.function_name,
                alias_name=self.function.alias_name,
                alias_arn=self.function.alias_arn,
                tags=tags,
            ), child)
        self.refresh_events = RefreshEvents(f"{name}-refresh-events", RefreshEventsArgs(
            stack=s.stack,
            parameter_name=s.parameter_name,
            scope=s.scope,
            excluded_asgs=s.excluded_asgs,
            notification_topic_arn=s.notification_topic_arn,
            tags=tags,
        ), child)
        rule_names = {"trigger": self.trigger.rule.name,
                      **({"schedule": self.schedule.rule.name} if self.schedule else {}),
                      **({REFRESH_ENDED: self.refresh_ended.rule.name}
                         if self.refresh_ended else {})}
        self.monitoring = Monitoring(f"{name}-monitoring", MonitoringArgs(
            function_name=self.function.function_name,
            alias_name=self.function.alias_name,
            parameter_name=s.parameter_name,
            rule_names=rule_names,
            notification_topic_arn=s.notification_topic_arn,
            tags=tags,
        ), child)
        self.dashboard = Dashboard(f"{name}-dashboard", DashboardArgs(
            dashboard_name=s.function_name,
            region=s.region,
            parameter_name=s.parameter_name,
            function_name=self.function.function_name,
            log_group_name=s.log_group_name,
            refresh_rule_name=self.refresh_events.rule.name,
            rule_names=rule_names,
        ), child)
