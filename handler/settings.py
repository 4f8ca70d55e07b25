"""Deployment settings, read from the environment once per invocation and validated.

Every value is checked before the engine makes any AWS call that changes
anything; a bad value raises :class:`SettingsError` naming the variable. The
same parsers validate the Pulumi stack configuration (``__main__.py``), so a
value that would fail in Lambda already fails ``pulumi preview``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
AMI_ID_RE = re.compile(r"^ami-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
ASG_NAME_RE = re.compile(r"^[^:\s][^:]{0,254}$")
PARAMETER_NAME_RE = re.compile(r"^/?[A-Za-z0-9_.\-/]{1,1011}$")
TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")

SCOPES = ("tagged", "all")
IN_PROGRESS_POLICIES = ("cancel-and-restart", "wait", "skip")
REFRESH_STRATEGIES = ("Rolling", "ReplaceRootVolume")
STANDALONE_STRATEGIES = ("relaunch", "replace-root-volume")
DEFAULT_KEY = "default"


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable or key."""


# --------------------------------------------------------------------------- lists


def parse_id_list(value: str | list | tuple | None, name: str, pattern: re.Pattern | None = None
                  ) -> frozenset[str]:
    """A JSON list or a comma-separated string of IDs/names; empty means none."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return frozenset()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SettingsError(f"{name}: not valid JSON ({exc.msg})") from None
        else:
            items = [part.strip() for part in text.split(",") if part.strip()]
    else:
        items = list(value)
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise SettingsError(f"{name}: expected a list of non-empty strings, got {value!r}")
    items = [i.strip() for i in items]
    if pattern is not None:
        bad = [i for i in items if not pattern.match(i)]
        if bad:
            raise SettingsError(f"{name}: malformed value(s) {', '.join(map(repr, bad))}")
    return frozenset(items)


def parse_bool(value: str | bool | None, name: str, default: bool = False) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name}: expected true or false, got {value!r}")


def _load_json(value: str | Mapping | None, name: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name}: not valid JSON ({exc.msg})") from None


# ------------------------------------------------------------- refresh preferences


def _int_in(lo: int, hi: int):
    def check(key: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise SettingsError(f"{key}: expected an integer from {lo} to {hi}, got {v!r}")
        return v
    return check


def _bool(key: str, v: Any) -> Any:
    if not isinstance(v, bool):
        raise SettingsError(f"{key}: expected true or false, got {v!r}")
    return v


def _one_of(*choices: str):
    def check(key: str, v: Any) -> Any:
        if v not in choices:
            raise SettingsError(f"{key}: expected one of {', '.join(choices)}, got {v!r}")
        return v
    return check


def _checkpoints(key: str, v: Any) -> Any:
    if (not isinstance(v, list) or not v
            or not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 100 for p in v)
            or v != sorted(set(v))):
        raise SettingsError(f"{key}: expected a strictly increasing list of integers from 1 to "
                            f"100, got {v!r}")
    return list(v)


def _alarms(key: str, v: Any) -> Any:
    if (not isinstance(v, dict) or set(v) != {"Alarms"} or not isinstance(v["Alarms"], list)
            or not all(isinstance(a, str) and a for a in v["Alarms"])):
        raise SettingsError(f'{key}: expected {{"Alarms": ["alarm-name", ...]}}, got {v!r}')
    return {"Alarms": list(v["Alarms"])}


# AWS's RefreshPreferences fields (StartInstanceRefresh) with their documented ranges.
REFRESH_PREFERENCE_CHECKS = {
    "MinHealthyPercentage": _int_in(0, 100),
    "MaxHealthyPercentage": _int_in(100, 200),
    "InstanceWarmup": _int_in(0, 86_400),
    "CheckpointPercentages": _checkpoints,
    "CheckpointDelay": _int_in(0, 172_800),
    "SkipMatching": _bool,
    "AutoRollback": _bool,
    "AlarmSpecification": _alarms,
    "ScaleInProtectedInstances": _one_of("Refresh", "Ignore", "Wait"),
    "StandbyInstances": _one_of("Terminate", "Ignore", "Wait"),
    "BakeTime": _int_in(0, 172_800),
}
ENGINE_KEYS = ("Strategy", "OnRefreshInProgress")
ASG_CONFIGURATION_KEYS = (*REFRESH_PREFERENCE_CHECKS, *ENGINE_KEYS)


@dataclass(frozen=True)
class RefreshSettings:
    """How one group is refreshed: AWS preferences plus the engine's own policy."""

    preferences: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    strategy: str = "Rolling"
    on_refresh_in_progress: str = "cancel-and-restart"

    def preferences_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dict(self.preferences)))


def _check_entry(entry_name: str, entry: Any, name: str) -> dict[str, Any]:
    where = f"{name}[{entry_name!r}]"
    if not isinstance(entry, dict):
        raise SettingsError(f"{where}: expected an object of refresh settings, got {entry!r}")
    unknown = sorted(set(entry) - set(ASG_CONFIGURATION_KEYS))
    if unknown:
        raise SettingsError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys are "
            f"{', '.join(ASG_CONFIGURATION_KEYS)}")
    checked: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "Strategy":
            checked[key] = _one_of(*REFRESH_STRATEGIES)(f"{where}.{key}", value)
        elif key == "OnRefreshInProgress":
            checked[key] = _one_of(*IN_PROGRESS_POLICIES)(f"{where}.{key}", value)
        else:
            checked[key] = REFRESH_PREFERENCE_CHECKS[key](f"{where}.{key}", value)
    return checked


def _check_merged(where: str, merged: dict[str, Any]) -> None:
    lo, hi = merged.get("MinHealthyPercentage"), merged.get("MaxHealthyPercentage")
    if lo is not None and hi is not None and hi - lo > 100:
        raise SettingsError(f"{where}: MaxHealthyPercentage - MinHealthyPercentage must be at "
                            f"most 100 (got {hi} - {lo})")
    if merged.get("CheckpointDelay") is not None and not merged.get("CheckpointPercentages"):
        raise SettingsError(f"{where}: CheckpointDelay needs CheckpointPercentages")


@dataclass(frozen=True)
class AsgConfigurations:
    """The ``default`` entry plus per-group entries; merged per group on lookup."""

    entries: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))

    def for_group(self, group_name: str) -> RefreshSettings:
        merged = {**self.entries.get(DEFAULT_KEY, {}), **self.entries.get(group_name, {})}
        strategy = merged.pop("Strategy", "Rolling")
        policy = merged.pop("OnRefreshInProgress", "cancel-and-restart")
        return RefreshSettings(MappingProxyType(merged), strategy, policy)


def parse_asg_configurations(value: str | Mapping | None,
                             name: str = "ASG_CONFIGURATIONS") -> AsgConfigurations:
    data = _load_json(value, name)
    if data is None:
        return AsgConfigurations()
    if not isinstance(data, dict):
        raise SettingsError(f"{name}: expected a JSON object of ASG name -> settings")
    entries = {str(k): _check_entry(str(k), v, name) for k, v in data.items()}
    default = entries.get(DEFAULT_KEY, {})
    for entry_name, entry in entries.items():
        _check_merged(f"{name}[{entry_name!r}]", {**default, **entry})
    return AsgConfigurations(MappingProxyType(
        {k: MappingProxyType(v) for k, v in entries.items()}))


# -------------------------------------------------------------- standalone settings


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

    strategy: str = "relaunch"
    parallelism: int = 2
    max_per_run: int = 20
    health_check_timeout_seconds: int = 600
    keep_old_instance: bool = False
    preserve_private_ip: bool = False
    fallback_to_relaunch: bool = False


_STANDALONE_CHECKS = {
    "strategy": _one_of(*STANDALONE_STRATEGIES),
    "parallelism": _int_in(1, 20),
    "max_per_run": _int_in(1, 500),
    "health_check_timeout_seconds": _int_in(30, 3_600),
    "keep_old_instance": _bool,
    "preserve_private_ip": _bool,
    "fallback_to_relaunch": _bool,
}


def parse_standalone_configuration(value: str | Mapping | None,
                                   name: str = "STANDALONE_CONFIGURATION") -> StandaloneSettings:
    data = _load_json(value, name)
    if data is None:
        return StandaloneSettings()
    if not isinstance(data, dict):
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
    parameter_name: str
    excluded_instances: frozenset[str] = frozenset()
    excluded_asgs: frozenset[str] = frozenset()
    asg_configurations: AsgConfigurations = field(default_factory=AsgConfigurations)
    scope: str = "tagged"
    dry_run: bool = False
    exclusions_parameter_name: str | None = None
    standalone: StandaloneSettings = field(default_factory=StandaloneSettings)
    notification_topic_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the contract's environment variables; raise SettingsError naming the bad one."""
        parameter = (env.get("AMI_PARAMETER_NAME") or "").strip()
        if not parameter:
            raise SettingsError("AMI_PARAMETER_NAME: required, not set")
        check_parameter_name(parameter, "AMI_PARAMETER_NAME")
        scope = (env.get("SCOPE") or "tagged").strip()
        if scope not in SCOPES:
            raise SettingsError(f"SCOPE: expected one of {', '.join(SCOPES)}, got {scope!r}")
        exclusions = (env.get("EXCLUSIONS_PARAMETER_NAME") or "").strip() or None
        if exclusions:
            check_parameter_name(exclusions, "EXCLUSIONS_PARAMETER_NAME")
        topic = (env.get("NOTIFICATION_TOPIC_ARN") or "").strip() or None
        if topic and not TOPIC_ARN_RE.match(topic):
            raise SettingsError(f"NOTIFICATION_TOPIC_ARN: not an SNS topic ARN: {topic!r}")
        return cls(
            parameter_name=parameter,
            excluded_instances=parse_id_list(env.get("EXCLUDED_INSTANCES"), "EXCLUDED_INSTANCES",
                                             INSTANCE_ID_RE),
            excluded_asgs=parse_id_list(env.get("EXCLUDED_ASGS"), "EXCLUDED_ASGS", ASG_NAME_RE),
            asg_configurations=parse_asg_configurations(env.get("ASG_CONFIGURATIONS")),
            scope=scope,
            dry_run=parse_bool(env.get("DRY_RUN"), "DRY_RUN"),
            exclusions_parameter_name=exclusions,
            standalone=parse_standalone_configuration(env.get("STANDALONE_CONFIGURATION")),
            notification_topic_arn=topic,
        )


def check_parameter_name(value: str, name: str) -> str:
    if not PARAMETER_NAME_RE.match(value) or "//" in value:
        raise SettingsError(f"{name}: not a valid SSM parameter name: {value!r}")
    return value


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
