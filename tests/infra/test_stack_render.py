"""Each stack, rendered from its own Pulumi.<stack>.yaml by the real program under mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.event_pattern import event_pattern
from components.stack_settings import ENVIRONMENT_VARIABLES
from infra.harness import REPO, Rendered, is_taggable, render, rendered_stack

STACKS = ["dev", "prod"]
FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ASYNC = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
QUERY = "aws:cloudwatch/queryDefinition:QueryDefinition"
TRIGGER = "ami-upgrade-trigger-"      # the trigger's resources (other rules: test_observability)


@pytest.fixture(params=STACKS)
def stack(request) -> Rendered:
    return rendered_stack(request.param)


def cfg(stack: Rendered, key: str, default=None):
    return stack.config.get(f"ami-upgrade:{key}", default)


def test_project_runs_python_from_the_repositorys_virtualenv():
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert (project["name"], project["runtime"]) == ("ami-upgrade", {
        "name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}})


def test_program_reads_the_config_the_cli_passes_in_its_environment():
    from_environment, from_runtime = render("prod", via_environment=True), rendered_stack("prod")
    for type_ in (FUNCTION, RULE, POLICY, LOG_GROUP):
        under = TRIGGER if type_ == RULE else ""
        assert ({k: v for k, v in from_environment.one(type_, under).inputs.items()
                 if k != "code"}
                == {k: v for k, v in from_runtime.one(type_, under).inputs.items()
                    if k != "code"})


def test_each_stack_creates_exactly_the_expected_resources(stack):
    assert sorted(r.type for r in stack.custom) == sorted([
        ROLE, POLICY, LOG_GROUP, FUNCTION, ALIAS, ASYNC, RULE, PERMISSION, TARGET,
        # issue 11: the reconcile schedule, the refresh-events rule, alarms, dashboard, queries
        RULE, PERMISSION, TARGET, RULE, *[ALARM] * 8, DASHBOARD, QUERY, QUERY,
        # issue 13: the follow-up rule
        RULE, PERMISSION, TARGET])


def test_exports_what_an_operator_looks_for_and_the_tag_guard(stack):
    name = f"ami-upgrade-{stack.stack}"
    assert {k: v for k, v in stack.exports.items() if k != "engine_tag_guard_policy"} == {
        "function_name": name,
        "alias_arn": stack.one(ALIAS).outputs["arn"],
        "rule_arn": stack.one(RULE, TRIGGER).outputs["arn"],
        "role_arn": stack.one(ROLE).outputs["arn"],
        "log_group_name": f"/aws/lambda/{name}",
        "dashboard_url": "https://us-east-1.console.aws.amazon.com/cloudwatch/home"
                         f"?region=us-east-1#dashboards/dashboard/{name}",
        "notification_topic_arn": None,
        "follow_up_rule_arn": stack.one(RULE, "ami-upgrade-follow-up-").outputs["arn"],
        "schedule_rule_arn": stack.one(RULE, "ami-upgrade-schedule-").outputs["arn"],
        "refresh_events_rule_arn": stack.one(RULE, "ami-upgrade-refresh-events-").outputs["arn"],
    }
    assert "engine_tag_guard_policy" in stack.exports   # tests/security checks its content


def test_rule_target_is_the_alias_not_the_function(stack):
    target = stack.one(TARGET, TRIGGER)
    assert target.inputs["arn"] == stack.one(ALIAS).outputs["arn"]
    assert target.inputs["arn"].endswith(f":function:ami-upgrade-{stack.stack}:{stack.stack}")
    assert target.inputs["rule"] == stack.one(RULE, TRIGGER).outputs["name"]


def test_permission_lets_only_this_rule_invoke_only_the_alias(stack):
    permission = stack.one(PERMISSION, TRIGGER).inputs
    assert (permission["action"], permission["principal"], permission["function"],
            permission["qualifier"], permission["sourceArn"]) == (
        "lambda:InvokeFunction", "events.amazonaws.com", f"ami-upgrade-{stack.stack}",
        cfg(stack, "aliasName"), stack.one(RULE, TRIGGER).outputs["arn"])


def test_target_waits_for_the_permission(stack):
    assert stack.one(PERMISSION, TRIGGER).urn in stack.one(TARGET, TRIGGER).dependencies


def test_permission_waits_for_the_alias(stack):
    assert stack.one(ALIAS).urn in stack.one(PERMISSION, TRIGGER).dependencies


def test_rule_pattern_is_the_stacks_trigger_on_its_parameter(stack):
    assert json.loads(stack.one(RULE, TRIGGER).inputs["eventPattern"]) == event_pattern(
        cfg(stack, "trigger"), cfg(stack, "parameterName"))


def test_dev_uses_the_native_trigger_and_prod_cloudtrail():
    assert (cfg(rendered_stack("dev"), "trigger"), cfg(rendered_stack("prod"), "trigger")) == (
        "parameter-store-change", "cloudtrail")


def test_function_runs_the_handler_entrypoint_on_a_current_python(stack):
    function = stack.one(FUNCTION).inputs
    assert (function["handler"], function["runtime"], function["publish"],
            function["architectures"]) == (
        "handler.main.lambda_handler", "python3.13", True, ["arm64"])


def test_function_is_sized_for_the_work(stack):
    function = stack.one(FUNCTION).inputs
    assert (function["timeout"], function["memorySize"], function["reservedConcurrentExecutions"]
            ) == (900, 512, 1)


def test_function_environment_is_exactly_the_contract(stack):
    variables = stack.one(FUNCTION).inputs["environment"]["variables"]
    assert sorted(variables) == sorted(ENVIRONMENT_VARIABLES)
    assert variables["AMI_PARAMETER_NAME"] == cfg(stack, "parameterName")
    assert json.loads(variables["EXCLUDED_INSTANCES"]) == sorted(cfg(stack, "excludedInstances"))
    assert json.loads(variables["EXCLUDED_ASGS"]) == sorted(cfg(stack, "excludedAsgs"))
    assert json.loads(variables["ASG_CONFIGURATIONS"]) == cfg(stack, "asgConfigurations")
    assert variables["SCOPE"] == cfg(stack, "scope")
    assert variables["DRY_RUN"] == str(cfg(stack, "dryRun")).lower()
    assert variables["EXCLUSIONS_PARAMETER_NAME"] == cfg(stack, "exclusionsParameterName", "")
    assert json.loads(variables["STANDALONE_CONFIGURATION"]) == cfg(
        stack, "standaloneConfiguration")
    assert variables["NOTIFICATION_TOPIC_ARN"] == ""


def test_alias_points_at_the_published_version(stack):
    alias, function = stack.one(ALIAS).inputs, stack.one(FUNCTION)
    assert (alias["name"], alias["functionName"], alias["functionVersion"]) == (
        cfg(stack, "aliasName"), function.outputs["name"], function.outputs["version"])


def test_log_group_is_the_functions_with_the_stacks_retention(stack):
    log_group = stack.one(LOG_GROUP).inputs
    assert (log_group["name"], log_group["retentionInDays"]) == (
        f"/aws/lambda/ami-upgrade-{stack.stack}", cfg(stack, "logRetentionDays"))
    assert stack.one(FUNCTION).inputs["loggingConfig"]["logGroup"] == log_group["name"]


def test_function_is_created_after_its_log_group_and_its_policy(stack):
    dependencies = stack.one(FUNCTION).dependencies
    assert stack.one(LOG_GROUP).urn in dependencies
    assert stack.one(POLICY).urn in dependencies


def test_async_invocations_of_the_alias_retry_and_expire(stack):
    config = stack.one(ASYNC).inputs
    assert (config["functionName"], config["qualifier"], config["maximumRetryAttempts"],
            config["maximumEventAgeInSeconds"]) == (
        f"ami-upgrade-{stack.stack}", cfg(stack, "aliasName"), 2, 3600)


def test_zip_holds_the_handler_package_and_nothing_else(stack):
    assets = stack.one(FUNCTION).inputs["code"].assets
    assert Path(assets["handler/main.py"].path) == REPO / "handler" / "main.py"
    assert all(key.startswith("handler/") for key in assets)
    assert not [key for key in assets if "__pycache__" in key or key.endswith(".pyc")]
    assert sorted(assets) == sorted(
        f"handler/{p.relative_to(REPO / 'handler').as_posix()}"
        for p in (REPO / "handler").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def test_every_taggable_resource_carries_the_standard_and_configured_tags(stack):
    expected = {"project": "ami-upgrade", "environment": stack.stack, "managed-by": "pulumi",
                **cfg(stack, "tags", {})}
    taggable = [r for r in stack.custom if is_taggable(r.type)]
    assert {r.type for r in taggable} == {ROLE, LOG_GROUP, FUNCTION, RULE, ALARM}
    assert {r.name: r.inputs.get("tags") for r in taggable} == {
        r.name: expected for r in taggable}


def test_untaggable_types_are_detected_as_such():
    assert not any(is_taggable(t) for t in (POLICY, ALIAS, PERMISSION, TARGET, ASYNC))


def test_every_resource_is_a_named_child_of_its_component(stack):
    workflow = stack.one("ami-upgrade:components:AmiUpgradeWorkflow")
    assert stack.ancestors(workflow) == ["pulumi:pulumi:Stack"]
    for resource in stack.resources:
        if resource is workflow:
            continue
        parent = stack.by_urn(resource.parent)
        assert parent is not None and parent.type.startswith("ami-upgrade:components:")
        assert stack.ancestors(resource)[-2:] == [
            "ami-upgrade:components:AmiUpgradeWorkflow", "pulumi:pulumi:Stack"]
        assert resource.name.startswith(f"{parent.name}-"), (resource.name, parent.name)


def test_role_can_be_assumed_by_lambda_only(stack):
    trust = json.loads(stack.one(ROLE).inputs["assumeRolePolicy"])
    assert trust["Statement"] == [{"Effect": "Allow",
                                   "Principal": {"Service": "lambda.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]


def test_function_uses_the_role(stack):
    assert stack.one(FUNCTION).inputs["role"] == stack.one(ROLE).outputs["arn"]
    # The mocks give each resource the id "<name>-id".
    assert stack.one(POLICY).inputs["role"] == f"{stack.one(ROLE).outputs['name']}-id"


def test_lambda_alarms_watch_the_function_and_its_alias(stack):
    alarms = {a.inputs["metricName"]: a.inputs for a in stack.of_type(ALARM)
              if a.inputs["namespace"] == "AWS/Lambda"}
    assert sorted(alarms) == ["AsyncEventsDropped", "DestinationDeliveryFailures", "Errors"]
    function = f"ami-upgrade-{stack.stack}"
    for name, alarm in alarms.items():
        assert (alarm["dimensions"], alarm["threshold"], alarm["comparisonOperator"]) == (
            {"FunctionName": function,
             **({"Resource": f"{function}:{cfg(stack, 'aliasName')}"}
                if name == "DestinationDeliveryFailures" else {})},
            0, "GreaterThanThreshold")


def test_alarms_have_no_actions_without_a_topic(stack):
    assert all(a.inputs.get("alarmActions", []) == [] for a in stack.of_type(ALARM))
