"""Stack configuration -> typed, validated settings. Pure Python, no Pulumi import.

``__main__.py`` reads the ``ami-upgrade:*`` keys once and calls
:func:`load_stack_settings`; tests call it with a plain dict. Values may be the
strings Pulumi hands a program (structured YAML values arrive as JSON text) or
native Python values.

Every key is parsed by its entry in the settings schema (``handler.settings.SCHEMA``),
the very parsers the Lambda function uses, with the config key as the name: a value
that would fail in Lambda fails ``pulumi preview`` with a message naming the key
(for example ``ami-upgrade:asgConfigurations['default']: unknown key(s)
MinHealthyPercent; ...``). Only the checks that involve several keys or the stack
(region, defaults named after the stack, tags) live here. Finally the rendered
environment is parsed back with ``handler.settings.Settings.from_env``: what the
stack deploys is exactly what the function accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from components import limits
from components.tags import TagError, check_tags
from handler.schema import compact_json
from handler.settings import (
    CONFIGURATION_PARAMETER_VARIABLE,
    DEFAULT_SCHEDULE,
    ENVIRONMENT,
    ENVIRONMENT_VARIABLES,
    KMS_KEY_ARN_RE,
    LOG_RETENTION_DAYS,
    ROLE_ARN_RE,
    SCHEMA,
    Settings,
    SettingsError,
    settings_from_document,
)
from handler.triggers import trigger
from hub.settings import NAMESPACE as HUB_NAMESPACE
from hub.settings import HubSettings, HubSettingsError, load_hub_settings

NAMESPACE = "ami-upgrade"
KNOWN_KEYS = tuple(s.key for s in SCHEMA)
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
REPOSITORY = Path(__file__).resolve().parent.parent   # where the Pulumi.<stack>.yaml files are

__all__ = ["ENVIRONMENT_VARIABLES", "KNOWN_KEYS", "LOG_RETENTION_DAYS", "NAMESPACE",
           "StackSettings", "check_role_accounts", "key_name", "load_stack_settings"]


def read_policy(parameter_arn: str) -> dict[str, Any]:
    """The inline policy letting the function read its configuration parameter."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadOwnConfiguration", "Effect": "Allow", "Action": ["ssm:GetParameter"],
        "Resource": [parameter_arn]}]}


def key_name(key: str) -> str:
    """The fully qualified config key used in messages: ``ami-upgrade:<key>``."""
    return f"{NAMESPACE}:{key}"


@dataclass(frozen=True)
class StackSettings:
    """One stack's validated settings; built by :func:`load_stack_settings`.

    ``values`` holds every schema key's canonical value; the typed fields (those the
    components read) take precedence, so ``dataclasses.replace`` changes what is rendered.
    """

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
    instance_roles: tuple[str, ...] = ()
    log_retention_days: int = 30
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_seconds: int = 900
    memory_size: int = 512
    reserved_concurrency: int | None = 1  # None: no reservation
    reconcile_schedule: str | None = DEFAULT_SCHEDULE  # None: no scheduled reconcile
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    account: str | None = None                 # the deployment's, when the program knows it
    hub_organization_id: str | None = None     # the hub's organisation (hubStack), if any

    @property
    def hub_account(self) -> str | None:
        """A spoke's hub: the account owning the parameter it follows by ARN, when that is
        another account than the deployment's (its change events come from there)."""
        if not self.parameter_name.startswith("arn:"):
            return None
        owner = self.parameter_name.split(":")[4]
        return None if owner == self.account else owner

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def environment(self) -> dict[str, str]:
        """The Lambda function's environment: exactly the contract's variables, in order.

        Lists and objects are JSON; optional values that are unset are empty strings
        (the function treats an empty value as unset).
        """
        return {s.env: s.to_env(getattr(self, s.stack_attr) if s.stack_attr in _FIELDS
                                else self.values.get(s.key))
                for s in ENVIRONMENT if s.env}

    @property
    def configuration_parameter_name(self) -> str:
        """Where a configuration too large for the environment goes (the stack writes it)."""
        return f"/ami-upgrade/{self.function_name}/configuration"

    def configuration_document(self) -> str | None:
        """The contract's variables as JSON when they exceed Lambda's 4 KB, else None."""
        env = self.environment()
        if limits.environment_size(env) <= limits.LAMBDA_ENVIRONMENT_LIMIT:
            return None
        # JSON values embedded as JSON (not as escaped text): the function re-renders them.
        return compact_json({k: json.loads(v) if v[:1] in ("[", "{") else v
                             for k, v in env.items()})

    def lambda_environment(self) -> dict[str, str]:
        """The function's environment: the contract, or the name of the parameter holding it."""
        if self.configuration_document() is None:
            return self.environment()
        return {CONFIGURATION_PARAMETER_VARIABLE: self.configuration_parameter_name}

    def role_description(self) -> str:
        """The role's description (components/permissions.py renders the same text)."""
        return f"ami-upgrade: follows {self.parameter_name} ({self.scope} scope)"

    def role_policies(self) -> list[dict[str, Any]]:
        """The role's inline policies as rendered (placeholder account: same size)."""
        policies = [limits.role_policy(
            region=self.region, parameter_name=self.parameter_name, scope=self.scope,
            function_name=self.function_name, log_group_name=self.log_group_name,
            exclusions_parameter_name=self.exclusions_parameter_name,
            kms_key_arns=self.kms_key_arns, notification_topic_arn=self.notification_topic_arn,
            instance_roles=self.instance_roles,
            hub_event_bus_arn=self.values.get("hubEventBusArn"),
            allowed_ami_owners=tuple(self.values.get("allowedAmiOwners") or ("self",)))]
        if self.configuration_document() is not None:
            policies.append(read_policy(
                f"arn:{limits.partition_of(self.region)}:ssm:{self.region}:"
                f"{limits.PLACEHOLDER_ACCOUNT}:parameter{self.configuration_parameter_name}"))
        return policies


_FIELDS = frozenset(f.name for f in fields(StackSettings))
DEFAULTS: Mapping[str, Any] = MappingProxyType({
    s.key: s.parse(None, key_name(s.key)) if s.key != "parameterName" else None
    for s in SCHEMA})


def check_spoke(parameter: str, hub_bus: str | None, trigger_name: str, region: str) -> None:
    """A parameter followed by ARN (a hub's wave parameter) and the hub's bus: RAM shares
    and same-region PutEvents hold in one region, the stack's; the bus is the hub's."""
    if parameter.startswith("arn:"):
        arn_region, owner = parameter.split(":")[3:5]
        if arn_region != region:
            raise SettingsError(f"{key_name('parameterName')}: {parameter!r} is in "
                                f"{arn_region}; a shared parameter is read in its own region, "
                                f"so a spoke in {region} follows the hub's copy in {region}")
        if trigger_name != "parameter-store-change":
            raise SettingsError(f"{key_name('trigger')}: a parameter of another account "
                                "changes there; only parameter-store-change events are "
                                "forwarded by the hub")
        if hub_bus and hub_bus.split(":")[4] != owner:
            raise SettingsError(f"{key_name('hubEventBusArn')}: {hub_bus!r} is not in the "
                                f"account {owner} that owns {key_name('parameterName')}")
    if hub_bus and hub_bus.split(":")[3] != region:
        raise SettingsError(f"{key_name('hubEventBusArn')}: {hub_bus!r} is not in {region}: "
                            f"a spoke reports to the hub's bus in its own region")


def load_hub_stack(stack: str, root: Path = REPOSITORY, key: str = "hubStack") -> HubSettings:
    """The hub's waves from ``Pulumi.<stack>.yaml`` in ``root``, through the hub's parser;
    a SettingsError naming ``key`` (and the hub's key) when the file is not a valid hub."""
    path = root / f"Pulumi.{stack}.yaml"
    try:
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise SettingsError(f"{key_name(key)}: {path.name} cannot be read: {exc}") from None
    prefix = f"{HUB_NAMESPACE}:"
    values = {k[len(prefix):]: v for k, v in config.items()
              if isinstance(k, str) and k.startswith(prefix)}
    if not values:
        raise SettingsError(f"{key_name(key)}: {path.name} is not a hub stack (it sets no "
                            f"{prefix}* key)")
    try:
        return load_hub_settings({"region": config.get("aws:region"), **values})
    except HubSettingsError as exc:
        raise SettingsError(f"{key_name(key)}: {path.name}: {exc}") from None


def check_hub_spoke(hub: HubSettings, parsed: Mapping[str, Any], region: str,
                    account: str | None) -> None:
    """A spoke of ``hub``: in one of its waves (by the deployment's account and region),
    following that wave's parameter and reporting to the hub's bus in its region."""
    bus = parsed.get("hubEventBusArn")
    if not bus:
        raise SettingsError(f"{key_name('hubEventBusArn')}: required for a spoke of the hub "
                            f"stack {parsed['hubStack']!r}; expected "
                            f"{hub.report_bus_arn(region)!r}")
    if account is None:   # the wave is known from the account: only the hub's names checked
        owner = parsed["parameterName"].split(":")[4] if ":" in parsed["parameterName"] else ""
        if owner != hub.account:
            raise SettingsError(f"{key_name('parameterName')}: a spoke of the hub stack "
                                f"{parsed['hubStack']!r} follows a parameter of the hub "
                                f"account {hub.account} by ARN")
        return
    try:
        hub.check_spoke(account, region, parsed["parameterName"], bus,
                        key=key_name("parameterName"), bus_key=key_name("hubEventBusArn"))
    except HubSettingsError as exc:
        raise SettingsError(str(exc)) from None


def check_role_accounts(roles: tuple[str, ...], account: str) -> tuple[str, ...]:
    """``roles``, once every role ARN among them is of ``account`` (the deployment's):
    EC2 cannot launch with another account's role, and passing one is never the intent."""
    foreign = [r for r in roles if (m := ROLE_ARN_RE.match(r)) and m["account"] != account]
    if foreign:
        raise SettingsError(f"{key_name('instanceRoles')}: {', '.join(foreign)} not of the "
                            f"deployment's account {account}")
    return roles


def load_stack_settings(values: Mapping[str, Any], *, stack: str, region: str | None,
                        project: str = "ami-upgrade", account: str | None = None,
                        root: Path = REPOSITORY) -> StackSettings:
    """Validate one stack's ``ami-upgrade:*`` values (keys without the namespace).

    ``account`` (the deployment's, when the program knows it): role ARNs in
    ``instanceRoles`` must be of it, and a spoke of ``hubStack`` (read from ``root``)
    must be in one of the hub's waves.

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
    parsed = {s.key: s.parse(values.get(s.key), key_name(s.key)) for s in SCHEMA}

    # Defaults named after the stack, and the checks that involve more than one key.
    parsed["aliasName"] = parsed["aliasName"] or stack
    parsed["functionName"] = parsed["functionName"] or f"{project}-{stack}"
    exclusions = parsed["exclusionsParameterName"]
    if exclusions and exclusions == parsed["parameterName"]:
        raise SettingsError(f"{key_name('exclusionsParameterName')}: must differ from "
                            f"{key_name('parameterName')} ({parsed['parameterName']!r})")
    for arn in parsed["kmsKeyArns"]:
        key_region = KMS_KEY_ARN_RE.match(arn)["region"]  # type: ignore[index]
        if key_region != region:
            raise SettingsError(f"{key_name('kmsKeyArns')}: key {arn!r} is in {key_region}, "
                                f"but EBS in {region} can only use keys of {region}")
    check_spoke(parsed["parameterName"], parsed.get("hubEventBusArn"), parsed["trigger"], region)
    hub = load_hub_stack(parsed["hubStack"], root) if parsed.get("hubStack") else None
    if hub is not None:
        check_hub_spoke(hub, parsed, region, account)
    if account is not None:
        check_role_accounts(parsed["instanceRoles"], account)
    try:
        parsed["tags"] = check_tags(parsed["tags"], key_name("tags"))
    except TagError as exc:
        raise SettingsError(str(exc)) from None

    typed = {s.stack_attr: parsed[s.key] for s in SCHEMA if s.stack_attr in _FIELDS}
    settings = StackSettings(project=project, stack=stack, region=region,
                             values=MappingProxyType(parsed), account=account,
                             hub_organization_id=hub.organization_id if hub else None, **typed)
    # What the function will parse at start: it must accept exactly what we deploy.
    Settings.from_env(settings.environment())
    check_limits(settings)
    return settings


def check_limits(settings: StackSettings) -> None:
    """Refuse, naming the key, what AWS would refuse at ``up`` (see components/limits.py)."""
    s = settings
    for key in ("parameterName", "exclusionsParameterName"):
        name = s.values.get(key)
        if name and limits.parameter_arn_length(s.region, name) > limits.PARAMETER_ARN_LIMIT:
            raise SettingsError(
                f"{key_name(key)}: the parameter's ARN would be "
                f"{limits.parameter_arn_length(s.region, name)} characters; SSM allows "
                f"{limits.PARAMETER_ARN_LIMIT} for the name including its ARN")
    if len(s.role_description()) > limits.ROLE_DESCRIPTION_LIMIT:
        raise SettingsError(f"{key_name('parameterName')}: too long for the role's description "
                            f"({len(s.role_description())} of IAM's "
                            f"{limits.ROLE_DESCRIPTION_LIMIT} characters)")
    if len(trigger(s.trigger).rule_description(s.parameter_name)) > 512:
        raise SettingsError(f"{key_name('parameterName')}: too long for the rule's description "
                            "(EventBridge allows 512 characters)")

    document = s.configuration_document()
    if document is not None:
        env = s.environment()
        sizes = {var: len(var) + len(value.encode()) for var, value in env.items()}
        keys = {setting.env: setting.key for setting in ENVIRONMENT}
        try:
            limits.configuration_tier(document)
        except SettingsError:
            named = ", ".join(key_name(keys[v]) for v in limits.largest(sizes))
            raise SettingsError(
                f"{named}: the configuration is {len(document.encode())} bytes: more than "
                f"Lambda's environment ({limits.LAMBDA_ENVIRONMENT_LIMIT} bytes) and than the "
                f"SSM parameter that carries larger ones "
                f"({limits.PARAMETER_VALUE_LIMITS['Advanced']} bytes); move long exclusion "
                f"lists to {key_name('exclusionsParameterName')} and share settings through "
                f"the 'default' entry") from None
        # The function reads the parameter with the very parser it uses at run time.
        settings_from_document(document, s.configuration_parameter_name)

    size = limits.policy_size(*s.role_policies())
    if size > limits.INLINE_POLICY_LIMIT:
        culprit = ("kmsKeyArns" if s.kms_key_arns else
                   "instanceRoles" if len(s.instance_roles) > 10 else "parameterName")
        raise SettingsError(
            f"{key_name(culprit)}: the role's inline policy would be {size} characters "
            f"(whitespace excluded); IAM allows {limits.INLINE_POLICY_LIMIT} per role "
            f"({len(s.kms_key_arns)} KMS keys, parameter names of "
            f"{len(s.parameter_name)} and {len(s.exclusions_parameter_name or '')} characters)")
