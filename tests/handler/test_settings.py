"""Settings from the environment: formats, known keys, ranges; a bad value raises naming the
variable before any AWS call."""

import json

import pytest

from handler.settings import Settings, SettingsError

BASE = {"AMI_PARAMETER_NAME": "/ami/linux/test"}


def _settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env})


@pytest.mark.parametrize("value", ['["web", "api"]', "web,api", " web , api ,"])
def test_group_lists_are_json_or_comma_separated(value):
    assert _settings(EXCLUDED_ASGS=value).excluded_asgs == {"web", "api"}


def test_instance_lists_are_json_or_comma_separated():
    ids = "i-0123456789abcdef0,i-01234567"

    assert _settings(EXCLUDED_INSTANCES=ids).excluded_instances == set(ids.split(","))
    assert _settings(EXCLUDED_INSTANCES=json.dumps(ids.split(","))).excluded_instances == \
        set(ids.split(","))


@pytest.mark.parametrize(("env", "message"), [
    ({"EXCLUDED_ASGS": '["web"'}, "EXCLUDED_ASGS: not valid JSON"),
    ({"EXCLUDED_ASGS": "[1, 2]"}, "EXCLUDED_ASGS: expected a list of non-empty strings"),
    ({"EXCLUDED_INSTANCES": "i-123,web"}, "EXCLUDED_INSTANCES: malformed value(s) 'i-123', "
                                          "'web'"),
    ({"SCOPE": "everything"}, "SCOPE: expected one of tagged, all, got 'everything'"),
    ({"DRY_RUN": "maybe"}, "DRY_RUN: expected true or false, got 'maybe'"),
    ({"AMI_PARAMETER_NAME": ""}, "AMI_PARAMETER_NAME: required, not set"),
    ({"AMI_PARAMETER_NAME": "/ami//x"}, "AMI_PARAMETER_NAME: not a valid SSM parameter name"),
    ({"EXCLUSIONS_PARAMETER_NAME": "bad name"}, "EXCLUSIONS_PARAMETER_NAME: not a valid SSM"),
    ({"ASG_CONFIGURATIONS": "{"}, "ASG_CONFIGURATIONS: not valid JSON"),
    ({"ASG_CONFIGURATIONS": "[]"}, "ASG_CONFIGURATIONS: expected a JSON object"),
])
def test_a_bad_value_is_refused_naming_the_variable(env, message):
    with pytest.raises(SettingsError) as raised:
        _settings(**env)

    assert str(raised.value).startswith(message)


def test_an_unknown_asg_configuration_key_is_refused_by_name():
    with pytest.raises(SettingsError) as raised:
        _settings(ASG_CONFIGURATIONS=json.dumps({"web": {"MinHealthyPercent": 90}}))

    assert str(raised.value).startswith(
        "ASG_CONFIGURATIONS['web']: unknown key(s) MinHealthyPercent; known keys are "
        "MinHealthyPercentage,")


@pytest.mark.parametrize(("entry", "message"), [
    ({"MinHealthyPercentage": 101}, ".MinHealthyPercentage: expected an integer from 0 to 100"),
    ({"MinHealthyPercentage": "90"}, ".MinHealthyPercentage: expected an integer"),
    ({"MaxHealthyPercentage": 99}, ".MaxHealthyPercentage: expected an integer from 100 to 200"),
    ({"InstanceWarmup": -1}, ".InstanceWarmup: expected an integer of at least 0"),
    ({"CheckpointPercentages": [50, 20]}, ".CheckpointPercentages: expected a strictly"),
    ({"SkipMatching": "yes"}, ".SkipMatching: expected true or false"),
    ({"AlarmSpecification": ["alarm"]}, '.AlarmSpecification: expected {"Alarms"'),
    ({"ScaleInProtectedInstances": "Never"}, ".ScaleInProtectedInstances: expected one of"),
    ({"Strategy": "BlueGreen"}, ".Strategy: expected one of Rolling, ReplaceRootVolume"),
    ({"OnRefreshInProgress": "queue"}, ".OnRefreshInProgress: expected one of "
                                       "cancel-and-restart, wait, skip"),
    ({"MinHealthyPercentage": 50, "MaxHealthyPercentage": 200},
     ": MaxHealthyPercentage - MinHealthyPercentage must be at most 100"),
    ({"CheckpointDelay": 60}, ": CheckpointDelay needs CheckpointPercentages"),
])
def test_asg_configuration_values_are_checked(entry, message):
    with pytest.raises(SettingsError) as raised:
        _settings(ASG_CONFIGURATIONS=json.dumps({"web": entry}))

    assert str(raised.value).startswith("ASG_CONFIGURATIONS['web']")
    assert message in str(raised.value)


def test_a_group_entry_is_merged_over_the_default():
    settings = _settings(ASG_CONFIGURATIONS=json.dumps({
        "default": {"MinHealthyPercentage": 50, "InstanceWarmup": 60,
                    "OnRefreshInProgress": "wait"},
        "web": {"InstanceWarmup": 300, "Strategy": "ReplaceRootVolume"}}))

    web, other = (settings.asg_configurations.for_group(n) for n in ("web", "api"))

    assert web.preferences_dict() == {"MinHealthyPercentage": 50, "InstanceWarmup": 300}
    assert (web.strategy, web.on_refresh_in_progress) == ("ReplaceRootVolume", "wait")
    assert other.preferences_dict() == {"MinHealthyPercentage": 50, "InstanceWarmup": 60}
    assert other.strategy == "Rolling"


def test_the_defaults_are_tagged_scope_and_cancel_and_restart():
    settings = _settings()

    assert (settings.scope, settings.dry_run) == ("tagged", False)
    assert settings.asg_configurations.for_group("web").on_refresh_in_progress == \
        "cancel-and-restart"


@pytest.mark.parametrize(("variable", "value"), [
    ("ASG_CONFIGURATIONS", json.dumps({"default": {"MinHealthyPercent": 90}})),
    ("SCOPE", "region"), ("DRY_RUN", "perhaps"), ("EXCLUDED_ASGS", "[web"),
])
def test_the_function_fails_on_bad_settings_before_any_aws_call(
        estate, function, api_calls, variable, value):
    estate.group("web")

    with pytest.raises(SettingsError, match=f"^{variable}"):
        function(**{variable: value}).invoke({})

    assert api_calls.calls == []
    assert estate.refreshes("web") == []
