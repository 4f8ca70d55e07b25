"""Stack configuration -> validated settings; a bad value names its key."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from components.stack_settings import DEFAULTS, KNOWN_KEYS, load_stack_settings
from handler.settings import SCHEMA, Settings, SettingsError
from infra.harness import REPO, render, stack_config

KEY = "0123abcd-4567-89ab-cdef-0123456789ab"
KMS_KEY_ARN = f"arn:aws:kms:us-east-1:123456789012:key/{KEY}"


def values_of(stack: str) -> dict:
    """The ``ami-upgrade:*`` values of a stack file, keys without the namespace."""
    return {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()
            if k.startswith("ami-upgrade:")}


def load(values: dict, stack: str = "dev", region: str = "us-east-1"):
    return load_stack_settings(values, stack=stack, region=region)


def test_dev_stack_follows_the_test_parameter_through_the_native_trigger():
    settings = load(values_of("dev"))
    assert (settings.parameter_name, settings.alias_name, settings.trigger, settings.scope) == (
        "/ami/linux/test", "dev", "parameter-store-change", "tagged")


def test_prod_stack_follows_the_prod_parameter_through_cloudtrail():
    settings = load(values_of("prod"), stack="prod")
    assert (settings.parameter_name, settings.alias_name, settings.trigger) == (
        "/ami/linux/prod", "prod", "cloudtrail")


def test_prod_refreshes_keep_full_capacity_with_checkpoints_and_rollback():
    default = load(values_of("prod"), stack="prod").asg_configurations["default"]
    assert (default["MinHealthyPercentage"], default["MaxHealthyPercentage"],
            default["CheckpointPercentages"], default["AutoRollback"]) == (100, 200,
                                                                           [10, 50, 100], True)


def test_prod_is_stricter_than_dev():
    dev = load(values_of("dev"))
    prod = load(values_of("prod"), stack="prod")
    dev_default, prod_default = dev.asg_configurations["default"], prod.asg_configurations[
        "default"]
    assert prod_default["MinHealthyPercentage"] > dev_default["MinHealthyPercentage"]
    assert "CheckpointPercentages" in prod_default and "CheckpointPercentages" not in dev_default
    assert prod.standalone_configuration["parallelism"] < dev.standalone_configuration[
        "parallelism"]
    assert prod.standalone_configuration["keep_old_instance"] is True
    assert prod.log_retention_days > dev.log_retention_days


def test_only_the_parameter_name_is_required_and_the_rest_defaults():
    settings = load({"parameterName": "/ami/linux/qa"}, stack="qa", region="eu-west-1")
    assert settings.environment() == {
        "AMI_PARAMETER_NAME": "/ami/linux/qa",
        "EXCLUDED_INSTANCES": "[]",
        "EXCLUDED_ASGS": "[]",
        "ASG_CONFIGURATIONS": "{}",
        "SCOPE": "tagged",
        "DRY_RUN": "false",
        "EXCLUSIONS_PARAMETER_NAME": "",
        "STANDALONE_CONFIGURATION": "",
        "NOTIFICATION_TOPIC_ARN": "",
        "INSTANCE_ROLES": "[]",
        "KMS_KEY_ARNS": "[]",
        "HUB_EVENT_BUS_ARN": "",
        "ALLOWED_AMI_OWNERS": "[\"self\"]",
    }
    assert (settings.alias_name, settings.function_name, settings.trigger,
            settings.log_retention_days, settings.timeout_seconds, settings.memory_size,
            settings.reserved_concurrency, settings.kms_key_arns, dict(settings.tags)) == (
        "qa", "ami-upgrade-qa", "parameter-store-change", 30, 900, 512, 1, (), {})


def test_json_text_from_the_cli_and_yaml_objects_give_the_same_settings():
    values = values_of("prod")
    as_text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    assert load(as_text, stack="prod") == load(values, stack="prod")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_environment_is_accepted_as_is_by_the_functions_own_parser(stack):
    settings = load(values_of(stack), stack=stack)
    parsed = Settings.from_env(settings.environment())
    assert (parsed.parameter_name, parsed.scope, parsed.dry_run,
            dict(parsed.asg_configurations.entries["default"]),
            parsed.exclusions_parameter_name) == (
        settings.parameter_name, settings.scope, settings.dry_run,
        dict(settings.asg_configurations["default"]), settings.exclusions_parameter_name)


def test_excluded_ids_are_serialised_as_a_sorted_json_list():
    settings = load({"parameterName": "/p", "excludedInstances": "i-0bbbbbbbbbbbbbbbb,i-0aaaaaaa",
                     "excludedAsgs": ["web", "batch"]})
    assert (settings.environment()["EXCLUDED_INSTANCES"],
            settings.environment()["EXCLUDED_ASGS"]) == (
        '["i-0aaaaaaa","i-0bbbbbbbbbbbbbbbb"]', '["batch","web"]')


@pytest.mark.parametrize("value", ["-1", -1, 2, "10"])
def test_reserved_concurrency_other_than_one_is_refused_as_runs_would_overlap(value):
    with pytest.raises(SettingsError) as raised:
        load({"parameterName": "/p", "reservedConcurrency": value})
    assert str(raised.value).startswith("ami-upgrade:reservedConcurrency: ")
    assert "would let runs overlap" in str(raised.value)
    assert "use 1" in str(raised.value)


def test_reserved_concurrency_one_serialises_runs():
    assert load({"parameterName": "/p", "reservedConcurrency": "1"}).reserved_concurrency == 1


def test_kms_key_arns_are_kept_sorted():
    other = KMS_KEY_ARN.replace("0123abcd", "00000000")
    settings = load({"parameterName": "/p", "kmsKeyArns": [KMS_KEY_ARN, other]})
    assert settings.kms_key_arns == (other, KMS_KEY_ARN)


BAD_VALUES = [
    # (key, value, what the message says after the key)
    ("asgConfigurations", {"default": {"MinHealthyPercent": 90}},
     "unknown key(s) MinHealthyPercent"),
    ("asgConfigurations", {"web": {"MinHealthyPercentage": 101}}, "from 0 to 100, got 101"),
    ("asgConfigurations", {"default": {"MaxHealthyPercentage": 250}}, "from 100 to 200, got 250"),
    ("asgConfigurations", {"default": {"MinHealthyPercentage": 50, "MaxHealthyPercentage": 200}},
     "MaxHealthyPercentage - MinHealthyPercentage must be at most 100"),
    ("asgConfigurations", {"default": {"CheckpointPercentages": [50, 10]}}, "strictly increasing"),
    ("asgConfigurations", {"default": {"OnRefreshInProgress": "queue"}}, "expected one of"),
    ("asgConfigurations", "{not json", "not valid JSON"),
    ("standaloneConfiguration", {"strategy": "rebuild"}, "expected one of relaunch"),
    ("standaloneConfiguration", {"parallelisme": 2}, "unknown key(s) parallelisme"),
    ("trigger", "cloudwatch", "expected one of cloudtrail, parameter-store-change"),
    ("scope", "some", "expected one of tagged, all"),
    ("excludedInstances", ["i-12345"], "malformed value(s) 'i-12345'"),
    ("excludedInstances", "i-0abcdef1,web-1", "malformed value(s) 'web-1'"),
    ("excludedAsgs", ["bad:name"], "malformed value(s) 'bad:name'"),
    ("dryRun", "maybe", "expected true or false"),
    ("logRetentionDays", 8, "expected one of 0, 1, 3, 5, 7, 14, 30"),
    ("logRetentionDays", "thirty", "expected one of 0, 1, 3"),
    ("timeoutSeconds", 901, "from 60 to 900, got 901"),
    ("memorySize", 64, "from 128 to 10240, got 64"),
    ("reservedConcurrency", 0, "0 would stop every invocation"),
    ("parameterName", "ami linux", "not a valid SSM parameter name"),
    ("parameterName", "", "required, not set"),
    ("exclusionsParameterName", "/ami/linux/test", "must differ from"),
    ("exclusionsParameterName", "/a//b", "not a valid SSM parameter name"),
    ("notificationTopicArn", "arn:aws:sqs:us-east-1:123456789012:q", "not an SNS topic ARN"),
    ("kmsKeyArns", ["alias/ebs"], "not a KMS key ARN"),
    ("kmsKeyArns", [KMS_KEY_ARN.replace("us-east-1", "eu-west-1")], "is in eu-west-1"),
    ("aliasName", "123", "a Lambda alias name"),
    ("functionName", "ami upgrade", "a Lambda function name"),
    ("tags", {"environment": "production"}, "is a standard tag"),
    ("tags", {"aws:owner": "x"}, "the aws: prefix is reserved"),
    ("tags", {"cost-center": 1234}, "quote numbers in YAML"),
]


@pytest.mark.parametrize(("key", "value", "says"), BAD_VALUES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_VALUES)])
def test_a_bad_value_fails_with_a_message_naming_its_key(key, value, says):
    values = {**values_of("dev"), key: value}
    with pytest.raises(SettingsError) as raised:
        load(values)
    message = str(raised.value)
    assert message.startswith(f"ami-upgrade:{key}"), message
    assert says in message


def test_an_unknown_key_fails_naming_it():
    with pytest.raises(SettingsError, match=r"^ami-upgrade:parameterNam: unknown configuration"):
        load({**values_of("dev"), "parameterNam": "/ami/linux/test"})


def test_a_missing_region_fails_naming_aws_region():
    with pytest.raises(SettingsError, match=r"^aws:region: required"):
        load(values_of("dev"), region="")


def test_the_program_fails_preview_with_the_message_naming_the_key():
    with pytest.raises(SettingsError, match=re.escape(
            "ami-upgrade:asgConfigurations['default']: unknown key(s) MinHealthyPercent")):
        render("dev", {"ami-upgrade:asgConfigurations": {"default": {"MinHealthyPercent": 90}}})


def test_the_program_fails_preview_on_a_misspelt_key():
    """The CLI passes the stack's configuration in PULUMI_CONFIG; a typo there is refused."""
    with pytest.raises(SettingsError, match=r"^ami-upgrade:dryrun: unknown configuration key"):
        render("dev", {"ami-upgrade:dryrun": "true"}, via_environment=True)


def test_the_program_reads_every_known_key_through_pulumi_config():
    rendered = render("prod", {"ami-upgrade:memorySize": 1024, "ami-upgrade:dryRun": True})
    function = rendered.one("aws:lambda/function:Function").inputs
    assert (function["memorySize"], function["environment"]["variables"]["DRY_RUN"]) == (
        1024, "true")


def _table(section: str, first: str) -> list[tuple[str, ...]]:
    """The rows (cells stripped) of the configuration reference's table starting ``first``."""
    reference = (REPO / "docs" / "configuration.md").read_text()
    body = reference.split(f"# {section}", 1)[1].split("\n## ", 1)[0]
    lines = body.split(f"| {first} |", 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(tuple(cell.strip() for cell in line.strip().strip("|").split(" | ")))
    return rows


def test_configuration_reference_table_is_the_settings_schema():
    expected = [("`aws:region`", "required",
                 "the region of the stack (and of the fleet it manages)")]
    expected += [(f"`ami-upgrade:{s.key}`", s.default_doc, s.doc) for s in SCHEMA]
    assert _table("Configuration reference", "key") == expected


def test_configuration_reference_environment_table_is_the_schemas():
    assert _table("Lambda environment", "variable") == [
        (f"`{s.env}`", s.env_format, s.env_doc) for s in SCHEMA if s.env]


def test_every_settings_field_comes_from_one_schema_entry_with_a_variable():
    assert sorted(s.attr for s in SCHEMA if s.env) == sorted(
        f.name for f in dataclasses.fields(Settings))


def test_defaults_are_the_parsers_answer_to_an_unset_key():
    assert (DEFAULTS["trigger"], DEFAULTS["scope"], DEFAULTS["logRetentionDays"],
            DEFAULTS["reservedConcurrency"], DEFAULTS["dryRun"]) == (
        "parameter-store-change", "tagged", 30, 1, False)
    assert sorted(DEFAULTS) == sorted(KNOWN_KEYS)
