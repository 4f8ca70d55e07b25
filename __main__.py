"""The ami-upgrade Pulumi program: read the stack's configuration once, build the workflow."""

import json

import pulumi
import pulumi_aws as aws

from components.hub import Hub, HubArgs
from components.policy import engine_tag_guard
from components.stack_settings import KNOWN_KEYS, NAMESPACE, load_stack_settings
from components.tag_guard import EngineTagGuard, EngineTagGuardArgs
from components.tags import standard_tags
from components.workflow import AmiUpgradeWorkflow, AmiUpgradeWorkflowArgs
from hub.settings import HUB_KEYS, load_hub_settings
from hub.settings import NAMESPACE as HUB_NAMESPACE


def configured_values() -> dict[str, str | None]:
    """Every ``ami-upgrade:*`` key the stack sets, through public Pulumi API only.

    Known keys are read with ``pulumi.Config``. A misspelt key must fail the preview,
    and ``pulumi.Config`` cannot list keys: the CLI hands the program its whole
    configuration in ``PULUMI_CONFIG`` (``pulumi.runtime.get_config_env``), so the
    keys of our namespace found there that the schema does not know are passed on
    and refused by :func:`load_stack_settings`, naming them.
    """
    config = pulumi.Config(NAMESPACE)
    values = {key: config.get(key) for key in KNOWN_KEYS}
    prefix = f"{NAMESPACE}:"
    for full_key in pulumi.runtime.get_config_env():
        key = full_key.removeprefix(prefix).removeprefix("config:")
        if full_key.startswith(prefix) and key not in values:
            values[key] = ""
    return {key: value for key, value in values.items() if value is not None}


def hub_values() -> dict[str, str]:
    """The ``ami-upgrade-hub:*`` keys a hub stack sets (docs/multi-account.md); none: a spoke."""
    config = pulumi.Config(HUB_NAMESPACE)
    values = {key: config.get(key) for key in HUB_KEYS}
    return {key: value for key, value in values.items() if value is not None}


def dashboard_url(region: str, name: str) -> str:
    """The CloudWatch console's address of a dashboard."""
    return (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards/dashboard/{name}")


if hub_config := hub_values():
    hub = Hub("ami-upgrade-hub", HubArgs(settings=load_hub_settings(
        {"region": pulumi.Config("aws").get("region"), **hub_config})))
    pulumi.export("promoter_arn", hub.function.arn)
    pulumi.export("wave_parameter_arns", hub.wave_parameter_arns)
    pulumi.export("report_bus_arns", {r: b.arn for r, b in hub.report_buses.items()})
else:
    settings = load_stack_settings(
        configured_values(),
        stack=pulumi.get_stack(),
        region=pulumi.Config("aws").get("region"),
        project=pulumi.get_project(),
        # Known before any resource is registered: role ARNs of another account are refused.
        account=aws.get_caller_identity().account_id,
    )
    workflow = AmiUpgradeWorkflow("ami-upgrade", AmiUpgradeWorkflowArgs(settings=settings))

    pulumi.export("function_name", workflow.function_name)
    pulumi.export("alias_arn", workflow.alias_arn)
    pulumi.export("rule_arn", workflow.rule_arn)
    pulumi.export("role_arn", workflow.role_arn)
    pulumi.export("log_group_name", workflow.function.log_group.name)
    pulumi.export("dashboard_url", workflow.dashboard.dashboard.dashboard_name.apply(
        lambda name: dashboard_url(settings.region, name)))
    pulumi.export("notification_topic_arn", settings.notification_topic_arn)
    pulumi.export("follow_up_rule_arn", workflow.follow_up.rule.arn)
    pulumi.export("schedule_rule_arn",
                  workflow.schedule.rule.arn if workflow.schedule else None)
    pulumi.export("refresh_events_rule_arn", workflow.refresh_events.rule.arn)
    # What a customer attaches so that only the function writes its tags (docs/security.md):
    # the same document as an IAM policy (or permissions boundary) and as an SCP.
    pulumi.export("engine_tag_guard_policy",
                  workflow.role_arn.apply(lambda arn: json.dumps(engine_tag_guard([arn]))))
    if settings.values["engineTagGuard"]:
        guard = EngineTagGuard("ami-upgrade-tag-guard", EngineTagGuardArgs(
            role_arn=workflow.role_arn, function_name=settings.function_name,
            tags=standard_tags(settings.project, settings.stack, settings.tags)))
        pulumi.export("engine_tag_guard_policy_arn", guard.policy.arn)
