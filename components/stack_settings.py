"""Stack configuration -> typed, validated settings. Pure Python, no Pulumi import.

``__main__.py`` reads the ``ami-upgrade:*`` keys once and calls
:func:`load_stack_settings`; tests call it with a plain dict. Values may be the
strings Pulumi hands a program (structured YAML values arrive as JSON text) or
native Python values.

The Lambda function's own parsers (``handler.settings``) validate every value
that ends up in its environment, with the config key as the name, so a value
that would fail in Lambda fails ``pulumi preview`` with the same message naming
the key (for example ``ami-upgrade:asgConfigurations['default']: unknown key(s)
MinHealthyPercent; ...``). Finally the rendered environment is parsed back with
``handler.settings.Settings.from_env``: what the stack deploys is exactly what
the function accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from components.event_pattern import TRIGGERS
from components.reconcile import DEFAULT_SCHEDULE, parse_reconcile_schedule
from components.tags import TagError, check_tags
from handler.settings import (
    ASG_NAME_RE,
    INSTANCE_ID_RE,
    SCOPES,
    TOPIC_ARN_RE,
    Settings,
    SettingsError,
    check_parameter_name,
    parse_asg_configurations,
    parse_bool,
    parse_id_list,
    parse_standalone_configuration,
)

NAMESPACE = "ami-upgrade"

# CloudWatch Logs' accepted retention periods (0 = never expire).
LOG_RETENTION_DAYS = (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ALIAS_NAME_RE = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$")
KMS_KEY_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):\d{12}:key/"
    r"(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")

# Every key of the ``ami-upgrade`` namespace with its default (None: optional, unset).
# ``<stack>`` stands for the stack name. The README's configuration table mirrors this.
DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "parameterName": None,  # required
    "aliasName": "<stack>",
    "functionName": "ami-upgrade-<stack>",
    "trigger": "parameter-store-change",
    "scope": "tagged",
    "excludedInstances": [],
    "excludedAsgs": [],
    "asgConfigurations": {},
    "standaloneConfiguration": {},
    "dryRun": False,
    "exclusionsParameterName": None,
    "notificationTopicArn": None,
    "kmsKeyArns": [],
    "logRetentionDays": 30,
    "tags": {},
    "timeoutSeconds": 900,
    "memorySize": 512,
    "reservedConcurrency": 1,
    "reconcileSchedule": DEFAULT_SCHEDULE,  # "off" turns the scheduled reconcile off
})
KNOWN_KEYS = tuple(DEFAULTS)

# The environment-variable contract (design.md), in its order.
ENVIRONMENT_VARIABLES = (
    "AMI_PARAMETER_NAME",
    "EXCLUDED_INSTANCES",
    "EXCLUDED_ASGS",
    "ASG_CONFIGURATIONS",
    "SCOPE",
    "DRY_RUN",
    "EXCLUSIONS_PARAMETER_NAME",
    "STANDALONE_CONFIGURATION",
    "NOTIFICATION_TOPIC_ARN",
)


def key_name(key: str) -> str:
    """The fully qualified config key used in messages: ``ami-upgrade:<key>``."""
    return f"{NAMESPACE}:{key}"


@dataclass(frozen=True)
class StackSettings:
    """One stack's validated settings; built by :func:`load_stack_settings`."""

    project: str
    stack: str
    region: str
    parameter_name: str
    alias_name: str
    function_name: str
    trigger: str = "parameter-store-change"
    scope: str = "tagged"
    excluded_instances: tuple[str, ...] = ()
    excluded_asgs: tuple[str, ...] = ()
    # The validated ASG_CONFIGURATIONS / STANDALONE_CONFIGURATION objects, as configured.
    asg_configurations: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}))
    standalone_configuration: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}))
    dry_run: bool = False
    exclusions_parameter_name: str | None = None
    notification_topic_arn: str | None = None
    kms_key_arns: tuple[str, ...] = ()
    log_retention_days: int = 30
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_seconds: int = 900
    memory_size: int = 512
    reserved_concurrency: int | None = 1  # None: no reservation
    reconcile_schedule: str | None = DEFAULT_SCHEDULE  # None: no scheduled reconcile

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def environment(self) -> dict[str, str]:
        """The Lambda function's environment: exactly the design's contract variables.

        Lists and objects are JSON; optional values that are unset are empty strings
        (the function treats an empty value as unset).
        """
        return {
            "AMI_PARAMETER_NAME": self.parameter_name,
            "EXCLUDED_INSTANCES": _json(list(self.excluded_instances)),
            "EXCLUDED_ASGS": _json(list(self.excluded_asgs)),
            "ASG_CONFIGURATIONS": _json({k: dict(v) for k, v in self.asg_configurations.items()}),
            "SCOPE": self.scope,
            "DRY_RUN": "true" if self.dry_run else "false",
            "EXCLUSIONS_PARAMETER_NAME": self.exclusions_parameter_name or "",
            "STANDALONE_CONFIGURATION": (_json(dict(self.standalone_configuration))
                                         if self.standalone_configuration else ""),
            "NOTIFICATION_TOPIC_ARN": self.notification_topic_arn or "",
        }


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _json_value(value: Any, key: str) -> Any:
    """Structured config arrives from the Pulumi CLI as JSON text; tests pass objects."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{key_name(key)}: not valid JSON ({exc.msg})") from None
    return value


def _string(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{key_name(key)}: expected a string, got {value!r}")
    return value.strip() or None


def _integer(value: Any, key: str, default: int, allowed: range | tuple[int, ...]) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: Any = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, int) or number not in allowed:
        if isinstance(allowed, range):
            expected = f"an integer from {allowed.start} to {allowed.stop - 1}"
        else:
            expected = f"one of {', '.join(map(str, allowed))}"
        raise SettingsError(f"{key_name(key)}: expected {expected}, got {value!r}")
    return number


def _choice(value: Any, key: str, default: str, choices: tuple[str, ...]) -> str:
    text = _string(value, key) or default
    if text not in choices:
        raise SettingsError(f"{key_name(key)}: expected one of {', '.join(choices)}, got {text!r}")
    return text


def _reserved_concurrency(value: Any) -> int | None:
    key = "reservedConcurrency"
    number = _integer(value, key, 1, range(-1, 1001))
    if number == 0:
        raise SettingsError(f"{key_name(key)}: 0 would stop every invocation; use 1 to "
                            "serialise runs or -1 for no reservation")
    return None if number == -1 else number


def _kms_key_arns(value: Any, region: str) -> tuple[str, ...]:
    key = "kmsKeyArns"
    arns = parse_id_list(value, key_name(key))
    for arn in sorted(arns):
        match = KMS_KEY_ARN_RE.match(arn)
        if not match:
            raise SettingsError(f"{key_name(key)}: not a KMS key ARN (arn:...:kms:<region>:"
                                f"<account>:key/<key-id>; aliases do not work in IAM): {arn!r}")
        if match["region"] != region:
            raise SettingsError(f"{key_name(key)}: key {arn!r} is in {match['region']}, but EBS "
                                f"in {region} can only use keys of {region}")
    return tuple(sorted(arns))


def load_stack_settings(values: Mapping[str, Any], *, stack: str, region: str | None,
                        project: str = "ami-upgrade") -> StackSettings:
    """Validate one stack's ``ami-upgrade:*`` values (keys without the namespace).

    Raises :class:`handler.settings.SettingsError` whose message starts with the
    offending key, e.g. ``ami-upgrade:scope: expected one of tagged, all, got 'some'``.
    """
    unknown = sorted(set(values) - set(KNOWN_KEYS))
    if unknown:
        raise SettingsError(f"{', '.join(map(key_name, unknown))}: unknown configuration "
                            f"key(s); known keys are {', '.join(KNOWN_KEYS)}")
    if not region or not REGION_RE.match(region):
        raise SettingsError(f"aws:region: required, expected a region such as us-east-1, "
                            f"got {region!r}")
    get = values.get

    parameter = _string(get("parameterName"), "parameterName")
    if not parameter:
        raise SettingsError(f"{key_name('parameterName')}: required, not set")
    check_parameter_name(parameter, key_name("parameterName"))

    alias = _string(get("aliasName"), "aliasName") or stack
    if not ALIAS_NAME_RE.match(alias):
        raise SettingsError(f"{key_name('aliasName')}: a Lambda alias name is 1 to 128 letters, "
                            f"digits, - or _ and not only digits, got {alias!r}")
    function_name = _string(get("functionName"), "functionName") or f"{project}-{stack}"
    if not FUNCTION_NAME_RE.match(function_name):
        raise SettingsError(f"{key_name('functionName')}: a Lambda function name is 1 to 64 "
                            f"letters, digits, - or _, got {function_name!r}")

    exclusions = _string(get("exclusionsParameterName"), "exclusionsParameterName")
    if exclusions:
        check_parameter_name(exclusions, key_name("exclusionsParameterName"))
        if exclusions == parameter:
            raise SettingsError(f"{key_name('exclusionsParameterName')}: must differ from "
                                f"{key_name('parameterName')} ({parameter!r})")
    topic = _string(get("notificationTopicArn"), "notificationTopicArn")
    if topic and not TOPIC_ARN_RE.match(topic):
        raise SettingsError(f"{key_name('notificationTopicArn')}: not an SNS topic ARN: {topic!r}")

    asg_configurations = parse_asg_configurations(
        _json_value(get("asgConfigurations"), "asgConfigurations"), key_name("asgConfigurations"))
    standalone_raw = _json_value(get("standaloneConfiguration"), "standaloneConfiguration")
    parse_standalone_configuration(standalone_raw, key_name("standaloneConfiguration"))

    try:
        tags = check_tags(_json_value(get("tags"), "tags"), key_name("tags"))
    except TagError as exc:
        raise SettingsError(str(exc)) from None

    settings = StackSettings(
        project=project,
        stack=stack,
        region=region,
        parameter_name=parameter,
        alias_name=alias,
        function_name=function_name,
        trigger=_choice(get("trigger"), "trigger", DEFAULTS["trigger"], TRIGGERS),
        scope=_choice(get("scope"), "scope", DEFAULTS["scope"], SCOPES),
        excluded_instances=tuple(sorted(parse_id_list(
            get("excludedInstances"), key_name("excludedInstances"), INSTANCE_ID_RE))),
        excluded_asgs=tuple(sorted(parse_id_list(
            get("excludedAsgs"), key_name("excludedAsgs"), ASG_NAME_RE))),
        asg_configurations=asg_configurations.entries,
        standalone_configuration=MappingProxyType(dict(standalone_raw or {})),
        dry_run=parse_bool(get("dryRun"), key_name("dryRun")),
        exclusions_parameter_name=exclusions,
        notification_topic_arn=topic,
        kms_key_arns=_kms_key_arns(get("kmsKeyArns"), region),
        log_retention_days=_integer(get("logRetentionDays"), "logRetentionDays",
                                    DEFAULTS["logRetentionDays"], LOG_RETENTION_DAYS),
        tags=tags,
        timeout_seconds=_integer(get("timeoutSeconds"), "timeoutSeconds",
                                 DEFAULTS["timeoutSeconds"], range(60, 901)),
        memory_size=_integer(get("memorySize"), "memorySize", DEFAULTS["memorySize"],
                             range(128, 10241)),
        reserved_concurrency=_reserved_concurrency(get("reservedConcurrency")),
        reconcile_schedule=parse_reconcile_schedule(get("reconcileSchedule"),
                                                    key_name("reconcileSchedule")),
    )
    # What the function will parse at start: it must accept exactly what we deploy.
    Settings.from_env(settings.environment())
    return settings
