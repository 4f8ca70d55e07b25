"""Deployment settings: the vocabularies, the settings schema, and the parsed Settings.

Every value is checked before the engine makes any AWS call that changes
anything; a bad value raises :class:`SettingsError` naming the variable. The
schema (:data:`SCHEMA`) lists every ``ami-upgrade:*`` stack key once, with its
environment variable, parser, default and documentation: the stack settings
(``components/stack_settings.py``), the Lambda environment, the contract and the
README tables are derived from it, so a value that would fail in Lambda already
fails ``pulumi preview`` with the same parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from . import refresh_preferences
from .schema import (
    Setting,
    SettingsError,
    check_bool,
    check_int_in,
    check_one_of,
    compact_json,
    load_json,
    parse_bool,
    parse_choice,
    parse_id_list,
    parse_int,
    parse_object,
    parse_string,
    render,
)
from .strategies import DEFAULT as DEFAULT_STANDALONE_STRATEGY
from .strategies import STANDALONE
from .triggers import DEFAULT_TRIGGER, TRIGGERS

__all__ = ["SettingsError", "parse_bool", "parse_id_list"]  # re-exported primitives

INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
# Who may own the AMI a run moves onto: account IDs, or the owner aliases EC2 knows.
AMI_OWNER_ALIASES = ("self", "amazon", "aws-marketplace", "aws-backup-vault")
AMI_OWNER_RE = re.compile(rf"^(?:[0-9]{{12}}|{'|'.join(AMI_OWNER_ALIASES)})$")
DEFAULT_AMI_OWNERS = ("self",)
AMI_ID_RE = re.compile(r"^ami-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
ASG_NAME_RE = re.compile(r"^[^:\s][^:]{0,254}$")
PARAMETER_NAME_RE = re.compile(r"^/?[A-Za-z0-9_.\-/]{1,1011}$")
PARAMETER_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter(/.+)$")
HUB_EVENT_BUS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/"
                                  r"[A-Za-z0-9._\-/]{1,256}$")
STACK_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")   # a Pulumi stack's name
TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")

# An IAM role ARN (no wildcard) or a role path ("/ec2/"): what iam:PassRole may pass.
ROLE_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role(?P<path>/(?:[\x21-\x7e]"
    r"{1,510}/)?)(?P<name>[\w+=,.@-]{1,64})$")
ROLE_PATH_RE = re.compile(r"^/(?:[\x21-\x29\x2b-\x7e]{1,510}/)?$")
FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ALIAS_NAME_RE = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$")
KMS_KEY_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):\d{12}:key/"
    r"(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
# CloudWatch Logs' accepted retention periods (0 = never expire).
LOG_RETENTION_DAYS = (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)


# ------------------------------------------------------------------ vocabularies
# StrEnums compare and serialise as today's strings; the tuples are kept for callers.


class Scope(StrEnum):
    TAGGED = "tagged"
    ALL = "all"


class InProgressPolicy(StrEnum):
    CANCEL_AND_RESTART = "cancel-and-restart"
    WAIT = "wait"
    SKIP = "skip"


class RefreshStrategy(StrEnum):
    ROLLING = "Rolling"
    REPLACE_ROOT_VOLUME = "ReplaceRootVolume"


SCOPES = tuple(Scope)
IN_PROGRESS_POLICIES = tuple(InProgressPolicy)
REFRESH_STRATEGIES = tuple(RefreshStrategy)
# The standalone strategies' names, as handler/strategies.py lists them (read when a
# value is checked, so a strategy registered later is accepted too).
STANDALONE_STRATEGIES = STANDALONE.keys()
DEFAULT_KEY = "default"


# ------------------------------------------------------------- refresh preferences


ENGINE_KEYS = ("Strategy", "OnRefreshInProgress")


def asg_configuration_keys() -> tuple[str, ...]:
    """AWS's RefreshPreferences fields (from botocore's model) plus the engine's own keys."""
    return (*refresh_preferences.fields(), *ENGINE_KEYS)


@dataclass(frozen=True)
class RefreshSettings:
    """How one group is refreshed: AWS preferences plus the engine's own policy."""

    preferences: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    strategy: RefreshStrategy = RefreshStrategy.ROLLING
    on_refresh_in_progress: InProgressPolicy = InProgressPolicy.CANCEL_AND_RESTART

    def preferences_dict(self) -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(dict(self.preferences)))
        return copied


def _check_entry(entry_name: str, entry: Any, name: str) -> dict[str, Any]:
    where = f"{name}[{entry_name!r}]"
    if not isinstance(entry, Mapping):
        raise SettingsError(f"{where}: expected an object of refresh settings, got {entry!r}")
    known = asg_configuration_keys()
    unknown = sorted(set(entry) - set(known))
    if unknown:
        raise SettingsError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(known)}")
    checked: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "Strategy":
            checked[key] = RefreshStrategy(
                check_one_of(*REFRESH_STRATEGIES)(f"{where}.{key}", value))
        elif key == "OnRefreshInProgress":
            checked[key] = InProgressPolicy(
                check_one_of(*IN_PROGRESS_POLICIES)(f"{where}.{key}", value))
        else:
            checked[key] = refresh_preferences.checks()[key](f"{where}.{key}", value)
    return checked


@dataclass(frozen=True)
class AsgConfigurations:
    """The ``default`` entry plus per-group entries; merged per group on lookup."""

    entries: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))

    def for_group(self, group_name: str) -> RefreshSettings:
        merged = {**self.entries.get(DEFAULT_KEY, {}), **self.entries.get(group_name, {})}
        strategy = RefreshStrategy(merged.pop("Strategy", RefreshStrategy.ROLLING))
        policy = InProgressPolicy(merged.pop("OnRefreshInProgress",
                                             InProgressPolicy.CANCEL_AND_RESTART))
        return RefreshSettings(MappingProxyType(merged), strategy, policy)


def parse_asg_configurations(value: str | Mapping | None,
                             name: str = "ASG_CONFIGURATIONS") -> AsgConfigurations:
    data = load_json(value, name)
    if data is None:
        return AsgConfigurations()
    if not isinstance(data, Mapping):
        raise SettingsError(f"{name}: expected a JSON object of ASG name -> settings")
    entries = {str(k): _check_entry(str(k), v, name) for k, v in data.items()}
    default = entries.get(DEFAULT_KEY, {})
    for entry_name, entry in entries.items():
        merged = {k: v for k, v in {**default, **entry}.items() if k not in ENGINE_KEYS}
        refresh_preferences.check_combination(merged, f"{name}[{entry_name!r}]")
    return AsgConfigurations(MappingProxyType(
        {k: MappingProxyType(v) for k, v in entries.items()}))


# -------------------------------------------------------------- standalone settings


DEFAULT_PARALLELISM = 5
"""Standalone replacements in flight at once by default. A replacement mostly waits for
the new instance's status checks (minutes), polled for every replacement in flight in
one call, so the reads grow with the waves (instances / parallelism): with 300 s checks
and two data volumes, 20 instances cost 3.24x the bound's calls at 2 in flight, 2.05x at
5, 1.65x at 10 (``benchmarks``). 5 is what EC2's RunInstances bucket serves at once
(5, then 2 a second): the wave's launches are not throttled. More in flight means more
instances stopped at the same time; a stack lowers it (``parallelism``) where that
matters more than the calls."""


@dataclass(frozen=True)
class StandaloneSettings:
    """Strategy and limits for standalone instance replacement.

    ``parallelism``: replacements in flight at once; ``max_per_run``: replacements
    started by one invocation (the rest continue in a follow-up invocation);
    ``health_check_timeout_seconds``: how long a new instance may take to pass its
    status checks before the replacement is rolled back; ``keep_old_instance``:
    leave the old instance stopped and tagged instead of terminating it;
    ``preserve_private_ip``: launch the new instance with the old one's primary
    private IP (only possible once the old instance is terminated, so the old one
    cannot be kept for rollback: see the README); ``fallback_to_relaunch``: when
    ``replace-root-volume`` preconditions fail, relaunch instead of skipping.
    """

    strategy: str = DEFAULT_STANDALONE_STRATEGY
    parallelism: int = DEFAULT_PARALLELISM
    max_per_run: int = 20
    health_check_timeout_seconds: int = 600
    keep_old_instance: bool = False
    preserve_private_ip: bool = False
    fallback_to_relaunch: bool = False


_STANDALONE_CHECKS = {
    "strategy": lambda key, v: check_one_of(*STANDALONE_STRATEGIES)(key, v),
    "parallelism": check_int_in(1, 20),
    "max_per_run": check_int_in(1, 500),
    "health_check_timeout_seconds": check_int_in(30, 3_600),
    "keep_old_instance": check_bool,
    "preserve_private_ip": check_bool,
    "fallback_to_relaunch": check_bool,
}


def parse_standalone_configuration(value: str | Mapping | None,
                                   name: str = "STANDALONE_CONFIGURATION") -> StandaloneSettings:
    data = load_json(value, name)
    if data is None:
        return StandaloneSettings()
    if not isinstance(data, Mapping):
        raise SettingsError(f"{name}: expected a JSON object")
    unknown = sorted(set(data) - set(_STANDALONE_CHECKS))
    if unknown:
        raise SettingsError(f"{name}: unknown key(s) {', '.join(unknown)}; known keys are "
                            f"{', '.join(_STANDALONE_CHECKS)}")
    checked = {k: _STANDALONE_CHECKS[k](f"{name}.{k}", v) for k, v in data.items()}
    settings = StandaloneSettings(**checked)
    if settings.preserve_private_ip and settings.keep_old_instance:
        raise SettingsError(f"{name}: preserve_private_ip and keep_old_instance exclude each "
                            "other (the old instance holds the IP while it exists)")
    return settings


# --------------------------------------------------------------------- the whole


@dataclass(frozen=True)
class Settings:
    """What one invocation runs with; ``from_env`` fills each field from its SCHEMA entry."""

    parameter_name: str
    excluded_instances: frozenset[str] = frozenset()
    excluded_asgs: frozenset[str] = frozenset()
    asg_configurations: AsgConfigurations = field(default_factory=AsgConfigurations)
    scope: Scope = Scope.TAGGED
    dry_run: bool = False
    exclusions_parameter_name: str | None = None
    standalone: StandaloneSettings = field(default_factory=StandaloneSettings)
    notification_topic_arn: str | None = None
    instance_roles: tuple[str, ...] = ()
    kms_key_arns: tuple[str, ...] = ()
    hub_event_bus_arn: str | None = None
    allowed_ami_owners: tuple[str, ...] = DEFAULT_AMI_OWNERS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the contract's environment variables; raise SettingsError naming the bad one."""
        return cls(**{s.attr: s.build(s.parse(env.get(s.env), s.env))
                      for s in ENVIRONMENT if s.env})


MAX_PARAMETER_LEVELS = 15


def check_parameter_name(value: str, name: str) -> str:
    """SSM's rules for a parameter name this deployment can follow or read."""
    if not PARAMETER_NAME_RE.match(value) or "//" in value:
        raise SettingsError(f"{name}: not a valid SSM parameter name: {value!r}")
    if value.lstrip("/").lower().startswith(("aws", "ssm")):
        raise SettingsError(
            f"{name}: {value!r} begins with 'aws' or 'ssm', which SSM reserves: AWS's public "
            "parameters (/aws/service/...) live outside your account, have no account-scoped "
            "ARN the role can be granted and emit no change events in your account; copy the "
            "value into a parameter of your own (e.g. from your image pipeline) and follow that")
    if value.strip("/").count("/") + 1 > MAX_PARAMETER_LEVELS:
        raise SettingsError(f"{name}: {value!r} has more than {MAX_PARAMETER_LEVELS} levels "
                            "of hierarchy (SSM's limit)")
    return value


# ----------------------------------------------------- configuration in a parameter
# When the configuration does not fit Lambda's 4 KB environment, the stack writes the
# contract's variables as one JSON object into an SSM parameter it owns and sets only
# CONFIGURATION_PARAMETER_NAME; the function reads it at start, then parses as usual.

CONFIGURATION_PARAMETER_VARIABLE = "CONFIGURATION_PARAMETER_NAME"


def parse_configuration_document(text: str, name: str) -> dict[str, str]:
    """The parameter's value: ``{"AMI_PARAMETER_NAME": "...", "EXCLUDED_ASGS": [...], ...}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name}: the value is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{name}: expected a JSON object of variable -> value")
    unknown = sorted(set(data) - set(ENVIRONMENT_VARIABLES))
    if unknown:
        raise SettingsError(f"{name}: unknown variable(s) {', '.join(unknown)}")
    # Lists and objects are stored as JSON, not as JSON text (no escaped quotes): the
    # variable's text is their compact JSON, exactly what the environment would hold.
    return {k: v if isinstance(v, str) else compact_json(v) for k, v in data.items()}


def load_settings(env: Mapping[str, str], ssm: Any = None) -> Settings:
    """The invocation's settings: from ``env``, or from the parameter it names (``ssm``)."""
    parameter = (env.get(CONFIGURATION_PARAMETER_VARIABLE) or "").strip()
    if not parameter:
        return Settings.from_env(env)
    where = f"{CONFIGURATION_PARAMETER_VARIABLE} ({parameter})"
    try:
        text = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except Exception as exc:  # botocore's ClientError: denied, missing, throttled
        raise SettingsError(f"{where}: cannot read the configuration: {exc}") from None
    return settings_from_document(text, where)


def settings_from_document(text: str, where: str) -> Settings:
    """What :func:`load_settings` makes of the parameter's value (preview checks the same)."""
    return Settings.from_env(parse_configuration_document(text, where))


@dataclass(frozen=True)
class Exclusions:
    """Static exclusion lists merged with the dynamic ones from the exclusions parameter."""

    instances: frozenset[str] = frozenset()
    asgs: frozenset[str] = frozenset()


def parse_exclusions_document(text: str, name: str) -> Exclusions:
    """The exclusions parameter's value: ``{"instances": [...], "asgs": [...]}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name}: the value is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or set(data) - {"instances", "asgs"}:
        raise SettingsError(f'{name}: expected {{"instances": [...], "asgs": [...]}}, got '
                            f"{text[:200]!r}")
    return Exclusions(
        instances=parse_id_list(data.get("instances") or [], f"{name}.instances", INSTANCE_ID_RE),
        asgs=parse_id_list(data.get("asgs") or [], f"{name}.asgs", ASG_NAME_RE),
    )


# ------------------------------------------------------------------------ schema
# Parsers of the keys that need more than a primitive; each names the key it was given.


def _parameter(value: Any, name: str) -> str:
    """The followed parameter: a name in this account, or an ARN (a parameter another
    account shares through AWS RAM, such as a hub's wave parameter)."""
    text = parse_string(value, name)
    if not text:
        raise SettingsError(f"{name}: required, not set")
    if text.startswith("arn:"):
        match = PARAMETER_ARN_RE.match(text)
        if not match:
            raise SettingsError(f"{name}: not an SSM parameter ARN: {text!r}")
        check_parameter_name(match.group(1), name)
        return text
    return check_parameter_name(text, name)


def _optional_parameter(value: Any, name: str) -> str | None:
    text = parse_string(value, name)
    return check_parameter_name(text, name) if text else None


def _topic(value: Any, name: str) -> str | None:
    text = parse_string(value, name)
    if text and not TOPIC_ARN_RE.match(text):
        raise SettingsError(f"{name}: not an SNS topic ARN: {text!r}")
    return text


def _hub_bus(value: Any, name: str) -> str | None:
    text = parse_string(value, name)
    if text and not HUB_EVENT_BUS_ARN_RE.match(text):
        raise SettingsError(f"{name}: not an EventBridge event bus ARN: {text!r}")
    return text


def _named(pattern: re.Pattern, what: str) -> Callable[[Any, str], str | None]:
    def parse(value: Any, name: str) -> str | None:
        text = parse_string(value, name)
        if text and not pattern.match(text):
            raise SettingsError(f"{name}: {what}, got {text!r}")
        return text
    return parse


def _ids(pattern: re.Pattern | None) -> Callable[[Any, str], tuple[str, ...]]:
    def parse(value: Any, name: str) -> tuple[str, ...]:
        return tuple(sorted(parse_id_list(value, name, pattern)))
    return parse


def _kms_key_arns(value: Any, name: str) -> tuple[str, ...]:
    arns = tuple(sorted(parse_id_list(value, name)))
    for arn in arns:
        if not KMS_KEY_ARN_RE.match(arn):
            raise SettingsError(f"{name}: not a KMS key ARN (arn:...:kms:<region>:"
                                f"<account>:key/<key-id>; aliases do not work in IAM): {arn!r}")
    return arns


def parse_instance_roles(value: Any, name: str) -> tuple[str, ...]:
    """Role ARNs and role paths (``/ec2/``) the function may pass to EC2, sorted.

    An ARN names one role, a path every role under it; wildcards are refused (the
    policy's resource is rendered from these, and ``role/*`` is what this key narrows).
    All ARNs must be of one account (the stack checks it is the deployment's).
    """
    items = tuple(sorted(parse_id_list(value, name)))
    for item in items:
        if "*" in item or "?" in item:
            raise SettingsError(f"{name}: {item!r}: no wildcards; name role ARNs or a role "
                                "path such as '/ec2/'")
        if item.startswith("arn:"):
            if not ROLE_ARN_RE.match(item):
                raise SettingsError(f"{name}: not an IAM role ARN (arn:aws:iam::<account>:"
                                    f"role/<path/>name): {item!r}")
        elif not (item.startswith("/") and item.endswith("/")):
            raise SettingsError(f"{name}: {item!r}: a role path must start and end with '/' "
                                "(e.g. '/ec2/'); a role is named by its ARN")
        elif not ROLE_PATH_RE.match(item) or "//" in item:
            raise SettingsError(f"{name}: not a valid IAM role path: {item!r}")
        elif item == "/":
            raise SettingsError(f"{name}: '/' is the path of every role in the account, so "
                                "the function could pass any of them (and run code with its "
                                "rights); name role ARNs or a narrower path such as '/ec2/'")
    accounts = sorted({m["account"] for m in map(ROLE_ARN_RE.match, items) if m})
    if len(accounts) > 1:
        raise SettingsError(f"{name}: role ARNs of several accounts ({', '.join(accounts)}); "
                            "instances launched here can only use roles of this account")
    return items


def parse_ami_owners(value: Any, name: str) -> tuple[str, ...]:
    """The AMI owners a run may move onto (sorted): 12-digit account IDs or EC2's owner
    aliases; unset or empty means ``self``, the deployment's own account only."""
    owners = tuple(sorted(parse_id_list(value, name, AMI_OWNER_RE)))
    return owners or DEFAULT_AMI_OWNERS


def role_passable(role_arn: str, role_path: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``allowed`` (ARNs and paths, as parsed) names the role, as the policy does."""
    return any(role_arn == a if a.startswith("arn:") else role_path.startswith(a)
               for a in allowed)


def _asg_configurations(value: Any, name: str) -> Mapping[str, Mapping[str, Any]]:
    return parse_asg_configurations(value, name).entries


def _standalone(value: Any, name: str) -> Mapping[str, Any]:
    """The configured object as written (validated), so the environment carries just it."""
    parse_standalone_configuration(value, name)
    return MappingProxyType(parse_object(value, name))


def _reserved_concurrency(value: Any, name: str) -> int | None:
    """Only 1: the engine's replacements are not safe against a second run racing on the
    same instance (no lease), so runs must be serialised by Lambda itself."""
    number = parse_int(value, name, 1, range(-1, 1001))
    if number == 0:
        raise SettingsError(f"{name}: 0 would stop every invocation; use 1 (runs serialised)")
    if number != 1:
        raise SettingsError(
            f"{name}: {number} would let runs overlap, and two runs racing on one "
            "replacement can leave data volumes detached; use 1 (runs serialised; Lambda "
            "needs 101 unreserved concurrent executions in the account: ask for a higher "
            "quota where it has fewer)")
    return number


def _choice(choices: tuple[str, ...], default: str,
            kind: type[StrEnum] | None = None) -> Callable[[Any, str], Any]:
    def parse(value: Any, name: str) -> Any:
        chosen = parse_choice(value, name, default, choices)
        return kind(chosen) if kind else chosen
    return parse


def _int(default: int, allowed: range | tuple[int, ...]) -> Callable[[Any, str], int | None]:
    return lambda value, name: parse_int(value, name, default, allowed)


# The scheduled reconcile (components/schedule.py): an EventBridge schedule expression.
DEFAULT_SCHEDULE = "rate(1 day)"
OFF = "off"

RATE_RE = re.compile(r"^rate\((?P<value>[1-9]\d*) (?P<unit>minutes?|hours?|days?)\)$")
CRON_RE = re.compile(r"^cron\(\S+( \S+){5}\)$")


def parse_reconcile_schedule(value: Any, key: str) -> str | None:
    """An EventBridge schedule expression, or None when the reconcile is turned off.

    Unset means the default (daily); ``off`` (or ``false``) turns it off. EventBridge
    wants ``rate(1 day)`` but ``rate(2 days)``: the unit is checked against the value.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_SCHEDULE
    if value is False or (isinstance(value, str) and value.strip().lower() in (OFF, "false")):
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{key}: expected a schedule expression such as "
                            f"{DEFAULT_SCHEDULE!r}, or 'off', got {value!r}")
    text = value.strip()
    rate = RATE_RE.match(text)
    if rate:
        singular = rate["value"] == "1"
        if singular == rate["unit"].endswith("s"):
            unit = rate["unit"].rstrip("s")
            expected = f"rate(1 {unit})" if singular else f"rate({rate['value']} {unit}s)"
            raise SettingsError(f"{key}: EventBridge wants {expected!r}, got {text!r}")
        return text
    if CRON_RE.match(text):
        return text
    raise SettingsError(f"{key}: expected 'rate(<n> <minute(s)|hour(s)|day(s)>)', "
                        f"'cron(<6 fields>)' or 'off', got {text!r}")


# Every ``ami-upgrade:*`` key, in the README's order. ``env``: the Lambda environment variable.
SCHEMA: tuple[Setting, ...] = (
    Setting("parameterName", _parameter, default_doc="required",
            doc="the SSM parameter the fleet follows (`AMI_PARAMETER_NAME`)",
            env="AMI_PARAMETER_NAME", env_format="string",
            env_doc="the parameter this deployment follows"),
    Setting("aliasName", _named(ALIAS_NAME_RE, "a Lambda alias name is 1 to 128 letters, "
                                "digits, - or _ and not only digits"),
            default_doc="`<stack>`", doc="the Lambda alias the trigger invokes (`dev`, `prod`)"),
    Setting("functionName", _named(FUNCTION_NAME_RE, "a Lambda function name is 1 to 64 "
                                   "letters, digits, - or _"),
            default_doc="`ami-upgrade-<stack>`",
            doc="the Lambda function's name (also names its log group)"),
    Setting("trigger", _choice(TRIGGERS, DEFAULT_TRIGGER), default_doc=f"`{DEFAULT_TRIGGER}`",
            doc="`parameter-store-change` (no trail needed) or `cloudtrail` (needs a trail)"),
    Setting("excludedInstances", _ids(INSTANCE_ID_RE),
            doc="standalone instance IDs never touched (`EXCLUDED_INSTANCES`)",
            env="EXCLUDED_INSTANCES", env_format="JSON list or comma-separated IDs",
            env_doc="standalone instances never touched", build=frozenset),
    Setting("excludedAsgs", _ids(ASG_NAME_RE),
            doc="Auto Scaling group names never touched (`EXCLUDED_ASGS`)",
            env="EXCLUDED_ASGS", env_format="JSON list or comma-separated names",
            env_doc="Auto Scaling groups never touched", build=frozenset),
    Setting("asgConfigurations", _asg_configurations, default_doc="none (AWS defaults)",
            doc="`default` and per-group entries: AWS `RefreshPreferences` fields plus "
                "`Strategy` and `OnRefreshInProgress` (`ASG_CONFIGURATIONS`)",
            env="ASG_CONFIGURATIONS",
            env_format="JSON object: group name (or `default`) -> settings",
            env_doc="refresh behaviour per group", build=AsgConfigurations),
    Setting("scope", _choice(SCOPES, Scope.TAGGED, Scope), default_doc="`tagged`",
            doc="`tagged`: only resources tagged `ami-upgrade:parameter=<parameter>`; `all`: "
                "every group and standalone instance in the region",
            env="SCOPE", env_format="`tagged` (default) or `all`",
            env_doc="which resources follow the parameter (`all`: every one except those "
                    "tagged for another parameter or marked by another orchestrator, see "
                    "[tags](contracts.md#tags))"),
    Setting("dryRun", lambda value, name: parse_bool(value, name), default_doc="`false`",
            doc="plan and report only (`DRY_RUN`)",
            env="DRY_RUN", env_format="`true` or `false`", env_doc="plan and report only"),
    Setting("exclusionsParameterName", _optional_parameter,
            doc='an SSM parameter holding `{"instances": [...], "asgs": [...]}`, read at each '
                "run (`EXCLUSIONS_PARAMETER_NAME`); the role may read it",
            env="EXCLUSIONS_PARAMETER_NAME", env_format="optional string",
            env_doc='SSM parameter with `{"instances": [...], "asgs": [...]}`, read at each run'),
    Setting("standaloneConfiguration", _standalone, default_doc="none (engine defaults)",
            doc="`strategy`, `parallelism`, `max_per_run`, `health_check_timeout_seconds`, "
                "`keep_old_instance`, `preserve_private_ip`, `fallback_to_relaunch` "
                "(`STANDALONE_CONFIGURATION`)",
            env="STANDALONE_CONFIGURATION", env_format="optional JSON",
            env_doc="strategy and limits for standalone instances",
            build=lambda value: parse_standalone_configuration(value or None),
            to_env=lambda value: render(value) if value else "", attr_name="standalone"),
    Setting("notificationTopicArn", _topic,
            doc="SNS topic for run summaries, failed async invocations and alarms "
                "(`NOTIFICATION_TOPIC_ARN`)",
            env="NOTIFICATION_TOPIC_ARN", env_format="optional ARN",
            env_doc="where the run summary goes"),
    Setting("kmsKeyArns", _kms_key_arns,
            doc="customer-managed KMS keys (ARNs, same region) of encrypted AMIs and volumes; "
                "EC2 may use them on the function's behalf; an instance with a volume under "
                "another customer key is not replaced (`KMS_KEY_ARNS`)",
            env="KMS_KEY_ARNS", env_format="JSON list of KMS key ARNs",
            env_doc="customer-managed keys the role may use through EC2 (a volume under "
                    "another customer key is not moved)"),
    Setting("instanceRoles", parse_instance_roles,
            default_doc="none (no role may be passed)",
            doc="IAM roles of the fleet's instance profiles the function may pass to EC2 "
                "(`iam:PassRole`): role ARNs and/or role paths such as `/ec2/`; an instance "
                "whose profile's role is not named is not relaunched (`INSTANCE_ROLES`)",
            env="INSTANCE_ROLES", env_format="JSON list of role ARNs and role paths",
            env_doc="roles the function may pass to EC2 (instance profiles)"),
    Setting("hubEventBusArn", _hub_bus,
            doc="a spoke of a hub (docs/multi-account.md): the hub's event bus in this region, "
                "where each run's report is sent (`HUB_EVENT_BUS_ARN`)",
            env="HUB_EVENT_BUS_ARN", env_format="optional ARN",
            env_doc="where a spoke sends its run's report for the hub"),
    Setting("hubStack", _named(STACK_NAME_RE, "a Pulumi stack name (letters, digits, "
                                              "'-', '_', '.')"),
            doc="a spoke of a hub deployed from this project (docs/multi-account.md): the hub "
                "stack whose `Pulumi.<hubStack>.yaml` names the waves; the preview refuses a "
                "spoke in none of its waves, a `parameterName` other than its wave's and a "
                "`hubEventBusArn` other than the hub's bus in this region, and the stack "
                "admits the hub (or its organisation) on the default event bus"),
    Setting("allowedAmiOwners", parse_ami_owners, default_doc="`self` (this account only)",
            doc="who may own the AMI the fleet moves onto: account IDs and/or `self`, "
                "`amazon`, `aws-marketplace`, `aws-backup-vault`; an image of any other owner "
                "is refused before any change (`ALLOWED_AMI_OWNERS`)",
            env="ALLOWED_AMI_OWNERS", env_format="JSON list of account IDs and owner aliases",
            env_doc="who may own the AMI (default: `self`)", build=tuple),
    Setting("engineTagGuard", lambda value, name: parse_bool(value, name),
            default_doc="`false`",
            doc="`true` creates the engine's tag guard as the IAM managed policy "
                "`<functionName>-tag-guard` (output `engine_tag_guard_policy_arn`), attached "
                "to nothing: attach it where others may tag EC2 resources (docs/security.md)"),
    Setting("logRetentionDays", _int(30, LOG_RETENTION_DAYS), default_doc="`30`",
            doc="log retention; one of CloudWatch's values (1, 3, 5, 7, 14, 30, 60, 90, ... "
                "3653; 0 = never expire)"),
    Setting("tags", parse_object,
            doc="extra tags for every taggable resource (the standard `project`, "
                "`environment`, `managed-by` cannot be overridden)"),
    Setting("timeoutSeconds", _int(900, range(60, 901)), default_doc="`900`",
            doc="function timeout, 60 to 900; work that does not fit continues in a "
                "follow-up invocation"),
    Setting("memorySize", _int(512, range(128, 10241)), default_doc="`512`",
            doc="function memory in MB, 128 to 10240"),
    Setting("reservedConcurrency", _reserved_concurrency, default_doc="`1`",
            doc="reserved concurrency; must be `1`: runs are serialised (the account needs "
                "101 unreserved concurrent executions)"),
    Setting("reconcileSchedule", parse_reconcile_schedule,
            default_doc=f"`{DEFAULT_SCHEDULE}`",
            doc="when the scheduled reconcile invokes the alias with the direct event (an "
                "EventBridge `rate(...)` or `cron(...)` expression); `off` turns it off. "
                'See "Watching it"'),
)
SCHEMA_BY_KEY: Mapping[str, Setting] = MappingProxyType({s.key: s for s in SCHEMA})
ENVIRONMENT: tuple[Setting, ...] = tuple(s for s in SCHEMA if s.env)
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(s.env for s in ENVIRONMENT if s.env)
