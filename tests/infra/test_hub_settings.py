"""The hub's configuration refuses, naming the key, what AWS or the design would refuse."""

from __future__ import annotations

import json

import pytest

from hub.settings import HubSettingsError, Target, load_hub_settings

HUB = "111111111111"
CANARY = {"account": "222222222222", "region": "eu-west-1"}
FLEET = [{"account": "333333333333", "region": "eu-west-1"},
         {"account": "333333333333", "region": "us-east-1"}]


def config(**changes: object) -> dict:
    waves = [{"name": "canary", "targets": [CANARY], "bakeMinutes": 60,
              "gateAlarms": ["canary-5xx"], "rollbackOnGate": True},
             {"name": "fleet", "targets": FLEET, "bakeMinutes": 0}]
    return {"account": HUB, "region": "eu-west-1", "sourceParameterName": "/golden/al2023",
            "waves": waves, **changes}


def refused(values: dict) -> str:
    with pytest.raises(HubSettingsError) as raised:
        load_hub_settings(values)
    return str(raised.value)


def with_wave(index: int, **changes: object) -> dict:
    values = config()
    values["waves"][index] = {**values["waves"][index], **changes}
    return values


def test_waves_parse_in_order_into_typed_values():
    hub = load_hub_settings(config())
    assert [w.name for w in hub.waves] == ["canary", "fleet"]
    assert hub.waves[0].targets == (Target("222222222222", "eu-west-1"),)
    assert hub.waves[0].bake_seconds == 3600 and hub.waves[0].rollback_on_gate
    assert hub.waves[0].gate_alarms == ("canary-5xx",)
    assert hub.regions == ("eu-west-1", "us-east-1")


def test_structured_values_arrive_as_json_text_like_the_cli_passes_them():
    values = config()
    values["waves"] = json.dumps(values["waves"])
    assert load_hub_settings(values) == load_hub_settings(config())


def test_the_document_parses_back_to_the_same_settings():
    hub = load_hub_settings(config())
    assert load_hub_settings(json.loads(hub.to_document())) == hub


@pytest.mark.parametrize(("values", "starts"), [
    (with_wave(0, targets=[{"account": "12345", "region": "eu-west-1"}]),
     "ami-upgrade-hub:waves[0].targets[0].account: '12345' is not an AWS account ID"),
    (with_wave(1, targets=[{"account": "333333333333", "region": "Europe"}]),
     "ami-upgrade-hub:waves[1].targets[0].region: 'Europe' is not an AWS region"),
    (config(account="hub"), "ami-upgrade-hub:account: 'hub' is not an AWS account ID"),
])
def test_an_invalid_account_or_region_is_refused_naming_the_key(values, starts):
    assert refused(values).startswith(starts)


def test_a_spoke_in_two_waves_is_refused_naming_the_second():
    message = refused(with_wave(1, targets=[FLEET[0], CANARY]))
    assert message.startswith("ami-upgrade-hub:waves[1].targets[1]: spoke "
                              "222222222222/eu-west-1 is already in wave 'canary'")


def test_an_empty_wave_is_refused():
    assert refused(with_wave(1, targets=[])).startswith(
        "ami-upgrade-hub:waves[1].targets: a wave needs at least one target")


def test_no_waves_is_refused():
    assert refused(config(waves=[])).startswith("ami-upgrade-hub:waves: the hub needs")


def test_a_standard_tier_wave_parameter_is_refused_because_ram_cannot_share_it():
    message = refused(with_wave(0, tier="Standard"))
    assert message.startswith("ami-upgrade-hub:waves[0].tier: 'Standard': AWS RAM shares only "
                              "advanced parameters")


@pytest.mark.parametrize("minutes", [-1, 7 * 24 * 60 + 1, 1.5, True])
def test_a_bake_time_out_of_range_is_refused(minutes):
    assert refused(with_wave(0, bakeMinutes=minutes)).startswith(
        "ami-upgrade-hub:waves[0].bakeMinutes: ")


def test_a_wave_name_used_twice_is_refused():
    assert refused(with_wave(1, name="canary")).startswith(
        "ami-upgrade-hub:waves[1].name: 'canary' names two waves")


def test_an_unknown_wave_key_is_refused_naming_it():
    assert "unknown key(s) bake" in refused(with_wave(0, bake=5))


def test_a_spoke_naming_its_waves_parameter_in_its_region_passes():
    hub = load_hub_settings(config())
    hub.check_spoke("333333333333", "us-east-1",
                    "arn:aws:ssm:us-east-1:111111111111:parameter/ami-upgrade/hub/waves/fleet")


@pytest.mark.parametrize("arn", [
    "arn:aws:ssm:eu-west-1:111111111111:parameter/ami-upgrade/hub/waves/canary",  # other wave
    "arn:aws:ssm:eu-west-1:111111111111:parameter/ami-upgrade/hub/waves/fleet",   # other region
    "arn:aws:ssm:us-east-1:999999999999:parameter/ami-upgrade/hub/waves/fleet",   # other account
])
def test_a_spoke_whose_parameter_arn_is_not_its_waves_is_refused(arn):
    hub = load_hub_settings(config())
    with pytest.raises(HubSettingsError, match=r"^parameterName: spoke 333333333333/us-east-1 "
                                               r"is in wave 'fleet', whose parameter is"):
        hub.check_spoke("333333333333", "us-east-1", arn)


def test_a_spoke_in_no_wave_is_refused():
    hub = load_hub_settings(config())
    with pytest.raises(HubSettingsError, match="is in no wave"):
        hub.check_spoke("444444444444", "us-east-1", "arn:x")


GATE_ARN = "arn:aws:cloudwatch:us-east-1:111111111111:alarm:fleet-5xx"


def test_a_gate_alarm_may_be_an_arn_of_the_hub_account_in_any_region():
    hub = load_hub_settings(with_wave(1, gateAlarms=[GATE_ARN, "fleet-latency"]))
    assert hub.waves[1].gate_alarms == (GATE_ARN, "fleet-latency")
    assert hub.alarm_location(GATE_ARN) == ("us-east-1", "fleet-5xx")
    assert hub.alarm_location("fleet-latency") == ("eu-west-1", "fleet-latency")
    assert hub.alarm_regions == ("eu-west-1", "us-east-1")
    assert hub.alarm_arn("fleet-latency") == (
        "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:fleet-latency")


def test_a_gate_alarm_of_another_account_is_refused_naming_the_key():
    message = refused(with_wave(1, gateAlarms=["ok", GATE_ARN.replace("1111", "3333", 1)]))
    assert message.startswith("ami-upgrade-hub:waves[1].gateAlarms[1]: "
                              "'arn:aws:cloudwatch:us-east-1:333311111111:alarm:fleet-5xx' is "
                              "an alarm of account 333311111111")
    assert "cross-account observability" in message


@pytest.mark.parametrize("arn", [
    "arn:aws:cloudwatch:us-east-1:1111:alarm:x",
    "arn:aws:cloudwatch:Europe:111111111111:alarm:x",
    "arn:aws:sns:us-east-1:111111111111:alarm:x",
])
def test_a_malformed_gate_alarm_arn_is_refused_naming_the_key(arn):
    assert refused(with_wave(0, gateAlarms=[arn])).startswith(
        f"ami-upgrade-hub:waves[0].gateAlarms[0]: {arn!r} is not an alarm ARN")


OU = "ou-ab12-cd34ef56"


def with_units(**changes: object) -> dict:
    values = with_wave(1, organizationalUnits=[OU])
    return {**values, "organizationId": "o-abcdefghij",
            "organizationManagementAccount": "999999999999", **changes}


def test_a_wave_shares_with_organisational_units_named_by_their_arn():
    hub = load_hub_settings(with_units())
    assert hub.waves[1].organizational_units == (OU,)
    assert hub.ou_arn(OU) == f"arn:aws:organizations::999999999999:ou/o-abcdefghij/{OU}"
    assert load_hub_settings(json.loads(hub.to_document())) == hub


@pytest.mark.parametrize("unit", ["ou-ab12", "OU-AB12-CD34EF56", "r-ab12", "ou-ab12-cd34"])
def test_a_malformed_organisational_unit_is_refused_naming_the_key(unit):
    assert refused(with_units(waves=with_wave(1, organizationalUnits=["ou-zz99-abcdefgh", unit])[
        "waves"])).startswith(
        f"ami-upgrade-hub:waves[1].organizationalUnits[1]: {unit!r} is not an organisational "
        "unit ID")


@pytest.mark.parametrize("key", ["organizationId", "organizationManagementAccount"])
def test_organisational_units_need_the_organisation_and_its_management_account(key):
    message = refused(with_units(**{key: None}))
    assert message.startswith(f"ami-upgrade-hub:{key}: required when a wave shares with "
                              "organisational units (ami-upgrade-hub:waves[1]."
                              "organizationalUnits)")


def test_an_invalid_management_account_is_refused_naming_the_key():
    assert refused(with_units(organizationManagementAccount="mgmt")).startswith(
        "ami-upgrade-hub:organizationManagementAccount: 'mgmt' is not an AWS account ID")
