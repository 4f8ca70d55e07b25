"""The hub stack (Pulumi.hub.yaml) and a spoke stack, rendered by the real program under mocks."""

from __future__ import annotations

import json
from functools import cache
from unittest import mock

import parliament
import pytest

from components import limits
from components.hub_policy import promoter_policy, report_bus_policy, spoke_bus_policy
from components.stack_settings import load_stack_settings
from handler.schema import SettingsError
from handler.triggers import REFRESH_ENDED, REGISTRY
from hub.settings import load_hub_settings
from infra import harness
from infra.harness import ACCOUNT, REPO, Rendered, render
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


def test_a_wave_naming_organisational_units_shares_with_each_ous_arn_in_each_region():
    waves = json.loads(json.dumps(config_values()["waves"]))
    waves[1]["organizationalUnits"] = ["ou-ab12-cd34ef56"]
    stack = render("hub", {"ami-upgrade-hub:waves": waves,
                           "ami-upgrade-hub:organizationId": "o-abcdefghij",
                           "ami-upgrade-hub:organizationManagementAccount": "999999999999"})
    ou_arn = "arn:aws:organizations::999999999999:ou/o-abcdefghij/ou-ab12-cd34ef56"
    shared = {r.name: r.inputs["principal"] for r in stack.of_type(
        "aws:ram/principalAssociation:PrincipalAssociation")}
    assert {name: p for name, p in shared.items() if p == ou_arn} == {
        f"ami-upgrade-hub-fleet-{region}-share-ou-ab12-cd34ef56": ou_arn
        for region in ("eu-west-1", "us-east-1")}
    assert shared["ami-upgrade-hub-fleet-us-east-1-share-444444444444"] == FLEET_B
    assert not any(n.startswith("ami-upgrade-hub-canary-") and p == ou_arn
                   for n, p in shared.items())
    shares = stack.of_type("aws:ram/resourceShare:ResourceShare")
    assert {s.inputs["allowExternalPrincipals"] for s in shares} == {False}


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


def test_the_promoter_reads_gate_alarms_by_arn_in_their_own_region():
    values = config_values()
    waves = json.loads(json.dumps(values["waves"]))
    waves[1]["gateAlarms"] = [f"arn:aws:cloudwatch:us-east-1:{HUB}:alarm:fleet-5xx"]
    hub = load_hub_settings({**values, "waves": waves})
    policy = promoter_policy(
        hub, table_arn=f"arn:aws:dynamodb:eu-west-1:{HUB}:table/ami-upgrade-hub-state",
        scheduler_role_arn=f"arn:aws:iam::{HUB}:role/ami-upgrade-hub-scheduler",
        log_group_arn=f"arn:aws:logs:eu-west-1:{HUB}:log-group:/aws/lambda/ami-upgrade-hub")
    [gates] = [s for s in policy["Statement"] if s["Sid"] == "ReadGates"]
    assert gates["Resource"] == [f"arn:aws:cloudwatch:eu-west-1:{HUB}:alarm:canary-errors",
                                 f"arn:aws:cloudwatch:us-east-1:{HUB}:alarm:fleet-5xx"]
    assert [p for s in policy["Statement"] for p in reference_problems(s)] == []


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


def test_a_spoke_runs_again_when_an_instance_refresh_of_its_own_account_ends():
    stack = spoke_stack()
    rule = stack.one("aws:cloudwatch/eventRule:EventRule", "ami-upgrade-refresh-ended")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern == REGISTRY[REFRESH_ENDED].event_pattern(WAVE_ARN)
    assert (pattern["source"], "account" in pattern, "detail" in pattern) == (
        ["aws.autoscaling"], False, False)
    assert "EC2 Auto Scaling Instance Refresh Succeeded" in pattern["detail-type"]
    target = stack.one("aws:cloudwatch/eventTarget:EventTarget", "ami-upgrade-refresh-ended")
    permission = stack.one("aws:lambda/permission:Permission", "ami-upgrade-refresh-ended")
    assert (target.inputs["arn"], target.inputs.get("input")) == (
        stack.one("aws:lambda/alias:Alias").outputs["arn"], None)
    assert (permission.inputs["principal"], permission.inputs["sourceArn"]) == (
        "events.amazonaws.com", rule.outputs["arn"])


def test_a_spokes_refresh_ended_rule_has_its_failed_invocations_alarm():
    stack = spoke_stack()
    alarm = stack.one("aws:cloudwatch/metricAlarm:MetricAlarm",
                      "ami-upgrade-monitoring-refresh-ended-failed-invocations")
    rule = stack.one("aws:cloudwatch/eventRule:EventRule", "ami-upgrade-refresh-ended")
    assert (alarm.inputs["metricName"], alarm.inputs["dimensions"]) == (
        "FailedInvocations", {"RuleName": rule.outputs["name"]})


def test_a_single_account_stack_has_no_refresh_ended_rule():
    rules = [r.name for r in render("dev").of_type("aws:cloudwatch/eventRule:EventRule")]
    assert rules and not any(name.startswith("ami-upgrade-refresh-ended") for name in rules)


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


SPOKE_BUS_POLICY = "aws:cloudwatch/eventPermission:EventPermission"


def test_a_spoke_adds_one_statement_of_its_own_to_its_default_bus_admitting_the_hub():
    [resource] = spoke_stack().of_type(SPOKE_BUS_POLICY)
    assert {k: resource.inputs.get(k) for k in (
        "eventBusName", "action", "principal", "statementId", "condition")} == {
        "eventBusName": "default", "action": "events:PutEvents", "principal": HUB,
        "statementId": "amiupgradedevHubWaves", "condition": None}


def test_a_spoke_never_owns_its_default_buss_whole_policy():
    """A landing zone's or another tool's statements on the default bus stay: the spoke
    writes one statement (PutPermission), never the bus's policy (PutEventBusPolicy)."""
    assert spoke_stack().of_type("aws:cloudwatch/eventBusPolicy:EventBusPolicy") == []


def test_the_statement_a_spoke_adds_is_parliament_clean():
    policy = spoke_bus_policy(HUB, f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default",
                              statement_id="amiupgradedevHubWaves")
    assert parliament.analyze_policy_string(json.dumps(policy),
                                            include_community_auditors=True).findings == []


def test_a_single_account_stack_touches_no_bus_policy():
    assert render("dev").of_type(SPOKE_BUS_POLICY) == []
    own = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/ami/linux/test"
    assert render("dev", {"ami-upgrade:parameterName": own}).of_type(SPOKE_BUS_POLICY) == []


def test_a_spoke_of_an_organisations_hub_admits_the_organisation(tmp_path):
    hub_file = tmp_path / "Pulumi.hub.yaml"
    hub_file.write_text((REPO / "Pulumi.hub.yaml").read_text()
                        + "  ami-upgrade-hub:organizationId: o-abcdefghij\n")
    settings = load_stack_settings(
        {"parameterName": WAVE_ARN, "hubEventBusArn": HUB_BUS, "hubStack": "hub"},
        stack="spoke", region="us-east-1", account=FLEET_B, root=tmp_path)
    assert (settings.hub_account, settings.hub_organization_id) == (HUB, "o-abcdefghij")
    [statement] = spoke_bus_policy(settings.hub_account, "arn:bus",
                                   settings.hub_organization_id)["Statement"]
    assert (statement["Principal"], statement["Condition"]) == (
        "*", {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}})


# ------------------------------------------------------------- a spoke of the hub stack

def spoke_of_hub(account: str, **overrides: str) -> Rendered:
    """A spoke rendered with ``hubStack: hub``, deployed in ``account`` (the mocks' caller)."""
    values = {"parameterName": WAVE_ARN, "hubEventBusArn": HUB_BUS, "hubStack": "hub",
              **overrides}
    with mock.patch.object(harness, "ACCOUNT", account):
        return render("dev", {f"ami-upgrade:{k}": v for k, v in values.items()})


def test_a_spoke_of_the_hub_stack_in_its_wave_renders():
    rendered = spoke_of_hub(FLEET_B)
    [permission] = rendered.of_type(SPOKE_BUS_POLICY)
    assert (permission.inputs["eventBusName"], permission.inputs["principal"]) == ("default", HUB)


@pytest.mark.parametrize(("account", "overrides", "starts"), [
    (CANARY, {}, "ami-upgrade:parameterName: spoke 222222222222/us-east-1 is in no wave"),
    (FLEET_B, {"parameterName": WAVE_ARN.replace("fleet", "canary")},
     "ami-upgrade:parameterName: spoke 444444444444/us-east-1 is in wave 'fleet', whose "
     f"parameter is '{WAVE_ARN}'"),
    (FLEET_B, {"parameterName": WAVE_ARN.replace(HUB, "999999999999"),
               "hubEventBusArn": HUB_BUS.replace(HUB, "999999999999")},
     "ami-upgrade:parameterName: spoke 444444444444/us-east-1 is in wave 'fleet'"),
    (FLEET_B, {"hubEventBusArn": HUB_BUS.replace("hub-reports", "other")},
     f"ami-upgrade:hubEventBusArn: spoke 444444444444/us-east-1 reports to the hub's bus "
     f"'{HUB_BUS}'"),
    (FLEET_B, {"hubEventBusArn": ""}, "ami-upgrade:hubEventBusArn: required for a spoke of "
                                      "the hub stack 'hub'"),
    (FLEET_B, {"hubStack": "dev"}, "ami-upgrade:hubStack: Pulumi.dev.yaml is not a hub stack"),
    (FLEET_B, {"hubStack": "nowhere"}, "ami-upgrade:hubStack: Pulumi.nowhere.yaml cannot be "
                                       "read"),
])
def test_a_spoke_not_matching_its_hub_stack_is_refused_at_preview_naming_the_key(
        account, overrides, starts):
    with pytest.raises(SettingsError) as refused:
        spoke_of_hub(account, **overrides)
    assert str(refused.value).startswith(starts)


# ------------------------------------------------------------- the spoke's policy size

def spoke_values(name_length: int, bus: str | None) -> dict:
    return {"parameterName": "/" + "p" * (name_length - 1),
            **({"hubEventBusArn": bus} if bus else {})}


def test_the_spokes_policy_size_counts_the_report_statement_it_deploys():
    rendered = spoke_stack()
    settings = load_stack_settings(
        {k.split(":", 1)[1]: v for k, v in rendered.config.items()
         if k.startswith("ami-upgrade:")}, stack="dev", region="us-east-1")
    deployed = [json.loads(p.inputs["policy"])
                for p in rendered.of_type("aws:iam/rolePolicy:RolePolicy")]
    assert limits.policy_size(*deployed) == limits.policy_size(*settings.role_policies())


def test_a_spoke_whose_report_statement_tips_the_policy_over_iams_limit_is_refused():
    def fits(length: int, bus: str | None) -> bool:
        try:
            load_stack_settings(spoke_values(length, bus), stack="dev", region="us-east-1")
        except SettingsError as exc:
            assert "inline policy" in str(exc), exc
            return False
        return True
    longest = max(n for n in range(100, 300) if fits(n, None))
    assert not fits(longest, HUB_BUS)
    with pytest.raises(SettingsError, match=r"^ami-upgrade:parameterName: the role's inline "
                                            r"policy would be \d+ characters"):
        load_stack_settings(spoke_values(longest, HUB_BUS), stack="dev", region="us-east-1")


def test_without_the_account_a_spoke_of_the_hub_stack_must_follow_a_hub_parameter():
    values = {"parameterName": WAVE_ARN, "hubEventBusArn": HUB_BUS, "hubStack": "hub"}
    assert load_stack_settings(values, stack="s", region="us-east-1").hub_account == HUB
    with pytest.raises(SettingsError, match=r"^ami-upgrade:parameterName: a spoke of the "
                                            r"hub stack 'hub' follows a parameter of the hub"):
        load_stack_settings({**values, "parameterName": "/ami/linux/test"}, stack="s",
                            region="us-east-1")
