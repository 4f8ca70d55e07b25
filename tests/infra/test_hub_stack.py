"""The hub stack (Pulumi.hub.yaml) and a spoke stack, rendered by the real program under mocks."""

from __future__ import annotations

import json
from functools import cache

import parliament
import pytest

from components.hub_policy import promoter_policy, report_bus_policy
from handler.schema import SettingsError
from hub.settings import load_hub_settings
from infra.harness import Rendered, render
from infra.test_policy_reference import reference_problems

HUB, CANARY, FLEET_A, FLEET_B = "111111111111", "222222222222", "333333333333", "444444444444"
WAVE_ARN = f"arn:aws:ssm:us-east-1:{HUB}:parameter/ami-upgrade/hub/waves/fleet"
HUB_BUS = f"arn:aws:events:us-east-1:{HUB}:event-bus/ami-upgrade-hub-reports"


@cache
def hub_stack() -> Rendered:
    return render("hub")


def named(stack: Rendered, type_: str, name: str):
    return next(r for r in stack.of_type(type_) if r.name == name)


def test_the_hub_stack_deploys_the_hub_only():
    types = {r.type for r in hub_stack().resources}
    assert "ami-upgrade:components:Hub" in types
    assert "ami-upgrade:components:AmiUpgradeWorkflow" not in types


@pytest.mark.parametrize(("wave", "region", "accounts"), [
    ("canary", "eu-west-1", [CANARY]),
    ("fleet", "eu-west-1", [FLEET_A]),
    ("fleet", "us-east-1", [FLEET_A, FLEET_B]),
])
def test_each_waves_parameter_is_advanced_and_shared_with_its_accounts_in_its_region(
        wave, region, accounts):
    stack, base = hub_stack(), f"ami-upgrade-hub-{wave}-{region}"
    parameter = named(stack, "aws:ssm/parameter:Parameter", f"{base}-parameter")
    assert parameter.inputs["tier"] == "Advanced"
    assert parameter.inputs["name"] == f"/ami-upgrade/hub/waves/{wave}"
    association = named(stack, "aws:ram/resourceAssociation:ResourceAssociation",
                        f"{base}-share-parameter")
    assert association.inputs["resourceArn"] == parameter.outputs["arn"]
    principals = sorted(r.inputs["principal"] for r in stack.of_type(
        "aws:ram/principalAssociation:PrincipalAssociation") if r.name.startswith(base))
    assert principals == accounts


def test_a_waves_rule_matches_its_parameter_and_targets_its_spokes_buses_through_a_role():
    stack, base = hub_stack(), "ami-upgrade-hub-fleet-us-east-1"
    rule = named(stack, "aws:cloudwatch/eventRule:EventRule", f"{base}-rule")
    assert json.loads(rule.inputs["eventPattern"])["detail"]["name"] == [
        "/ami-upgrade/hub/waves/fleet"]
    targets = [r for r in stack.of_type("aws:cloudwatch/eventTarget:EventTarget")
               if r.name.startswith(f"{base}-to-")]
    assert sorted(t.inputs["arn"] for t in targets) == [
        f"arn:aws:events:us-east-1:{a}:event-bus/default" for a in (FLEET_A, FLEET_B)]
    role = named(stack, "aws:iam/role:Role", "ami-upgrade-hub-forward-role")
    assert {t.inputs["roleArn"] for t in targets} == {role.outputs["arn"]}


def test_the_report_bus_admits_only_the_spokes_of_its_region_and_only_reports():
    policy = json.loads(named(hub_stack(), "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
                              "ami-upgrade-hub-reports-us-east-1-policy").inputs["policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{FLEET_A}:root",
                                              f"arn:aws:iam::{FLEET_B}:root"]}
    assert statement["Condition"] == {"StringEquals": {"events:source": "ami-upgrade.spoke"}}


def test_with_an_organisation_the_report_bus_admits_its_accounts():
    hub = load_hub_settings({**config_values(), "organizationId": "o-abcdefghij"})
    [statement] = report_bus_policy(hub, "us-east-1", HUB_BUS)["Statement"]
    assert statement["Principal"] == "*"
    assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == "o-abcdefghij"


def test_the_bake_wait_is_a_scheduler_one_shot_invoking_only_the_promoter():
    stack = hub_stack()
    function = named(stack, "aws:lambda/function:Function", "ami-upgrade-hub-promoter")
    role = named(stack, "aws:iam/role:Role", "ami-upgrade-hub-scheduler-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"}
    invoke = json.loads(named(stack, "aws:iam/rolePolicy:RolePolicy",
                              "ami-upgrade-hub-scheduler-policy").inputs["policy"])
    assert invoke["Statement"][0]["Resource"] == [
        f"arn:aws:lambda:eu-west-1:{HUB}:function:ami-upgrade-hub"]
    variables = function.inputs["environment"]["variables"]
    assert variables["HUB_SCHEDULER_ROLE_ARN"] == role.outputs["arn"]
    assert function.inputs["handler"] == "hub.main.lambda_handler"


def test_the_promoter_ships_the_hub_package_only_and_the_spoke_package_no_hub():
    function = named(hub_stack(), "aws:lambda/function:Function", "ami-upgrade-hub-promoter")
    from components.function import HANDLER_DIR, handler_files
    from components.hub import HUB_DIR
    assert all(key.startswith("hub/") for key in handler_files(HUB_DIR))
    assert not any(key.startswith("hub/") for key in handler_files(HANDLER_DIR))
    assert function.inputs["code"] is not None


def config_values() -> dict:
    from infra.harness import stack_config
    config = stack_config("hub")
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("ami-upgrade-hub:")
            } | {"region": config["aws:region"]}


def promoter() -> dict:
    hub = load_hub_settings(config_values())
    return promoter_policy(
        hub, table_arn=f"arn:aws:dynamodb:eu-west-1:{HUB}:table/ami-upgrade-hub-state",
        scheduler_role_arn=f"arn:aws:iam::{HUB}:role/ami-upgrade-hub-scheduler",
        log_group_arn=f"arn:aws:logs:eu-west-1:{HUB}:log-group:/aws/lambda/ami-upgrade-hub")


def test_the_promoter_policy_is_in_the_iam_reference():
    assert [p for s in promoter()["Statement"] for p in reference_problems(s)] == []


def pass_role_bounded(policy: dict) -> bool:
    """The one management action: PassRole on the Scheduler role only, only to Scheduler."""
    [passing] = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    return (passing["Resource"] == [f"arn:aws:iam::{HUB}:role/ami-upgrade-hub-scheduler"]
            and passing["Condition"] == {
                "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}})


def test_parliament_finds_nothing_in_the_promoter_policy_but_the_bounded_pass_role():
    policy = promoter()
    analysed = parliament.analyze_policy_string(json.dumps(policy),
                                                include_community_auditors=True)
    findings = [(f.issue, f.location.get("actions") if isinstance(f.location, dict) else None)
                for f in analysed.findings]
    assert findings == [("PERMISSIONS_MANAGEMENT_ACTIONS", ["iam:passrole"])]
    assert pass_role_bounded(policy)


def test_the_promoter_writes_only_the_wave_parameters_not_the_source():
    [write] = [s for s in promoter()["Statement"] if s["Sid"] == "WriteWaves"]
    assert all("/ami-upgrade/hub/waves/" in r for r in write["Resource"])


# ------------------------------------------------------------------------- the spoke

@cache
def spoke_stack() -> Rendered:
    return render("dev", {"ami-upgrade:parameterName": WAVE_ARN,
                          "ami-upgrade:hubEventBusArn": HUB_BUS})


def test_a_spokes_rule_matches_only_the_hubs_change_of_its_wave_parameter():
    rule = spoke_stack().one("aws:cloudwatch/eventRule:EventRule", "ami-upgrade-trigger")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["account"] == [HUB]
    assert pattern["detail"]["name"] == ["/ami-upgrade/hub/waves/fleet"]


def test_a_spoke_may_read_its_wave_parameter_by_arn_and_report_to_the_hub_bus_only():
    policy = json.loads(spoke_stack().one("aws:iam/rolePolicy:RolePolicy",
                                          "ami-upgrade-permissions").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert WAVE_ARN in by_sid["ReadParameters"]["Resource"]
    assert by_sid["ReportToHub"]["Resource"] == [HUB_BUS]
    variables = spoke_stack().one("aws:lambda/function:Function").inputs["environment"][
        "variables"]
    assert (variables["AMI_PARAMETER_NAME"], variables["HUB_EVENT_BUS_ARN"]) == (
        WAVE_ARN, HUB_BUS)


@pytest.mark.parametrize(("overrides", "starts"), [
    ({"parameterName": WAVE_ARN.replace("us-east-1", "eu-west-1")},
     "ami-upgrade:parameterName: 'arn:aws:ssm:eu-west-1:111111111111:parameter/ami-upgrade/"
     "hub/waves/fleet' is in eu-west-1; a shared parameter is read in its own region"),
    ({"hubEventBusArn": HUB_BUS.replace(HUB, "999999999999")},
     "ami-upgrade:hubEventBusArn: 'arn:aws:events:us-east-1:999999999999:event-bus/"
     "ami-upgrade-hub-reports' is not in the account 111111111111"),
    ({"hubEventBusArn": HUB_BUS.replace("us-east-1", "eu-west-1")},
     "ami-upgrade:hubEventBusArn: 'arn:aws:events:eu-west-1"),
    ({"parameterName": "arn:aws:ssm:us-east-1:1111:parameter/x"},
     "ami-upgrade:parameterName: not an SSM parameter ARN"),
])
def test_a_spoke_configuration_aws_would_refuse_fails_the_preview_naming_the_key(
        overrides, starts):
    values = {"ami-upgrade:parameterName": WAVE_ARN, "ami-upgrade:hubEventBusArn": HUB_BUS}
    values.update({f"ami-upgrade:{k}": v for k, v in overrides.items()})
    with pytest.raises(SettingsError) as refused:
        render("dev", values)
    assert str(refused.value).startswith(starts)
