"""The hub's configuration: waves in order, each a set of spokes (account x region).

Stdlib only: the Pulumi program parses it at preview (refusing, naming the key, what
AWS or the design would refuse) and the promoter Lambda parses the same document from
its environment, so what is deployed is exactly what the promoter runs.

A wave's parameter lives in the hub account once per region the wave covers: AWS RAM
shares an SSM parameter only within its region, so a spoke reads the copy in its own
region, by ARN. :meth:`HubSettings.wave_parameter_arn` is the one place that name is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NAMESPACE = "ami-upgrade-hub"
ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
WAVE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
ALARM_NAME_RE = re.compile(r"^[^\x00-\x1f]{1,255}$")
ALARM_ARN_RE = re.compile(r"^arn:aws[a-z-]*:cloudwatch:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2}):"
                          r"(?P<account>\d{12}):alarm:(?P<name>[^\x00-\x1f]{1,255})$")
PARAMETER_NAME_RE = re.compile(r"^/?[a-zA-Z0-9_.\-/]{1,1011}$")
BAKE_MINUTES_MAX = 7 * 24 * 60        # a week: longer waits are a hold, not a bake
WAVE_TIERS = ("Advanced", "Intelligent-Tiering")  # RAM shares only advanced parameters
WAVE_KEYS = frozenset({"name", "targets", "bakeMinutes", "gateAlarms", "rollbackOnGate",
                       "tier", "organizationalUnits"})
TARGET_KEYS = frozenset({"account", "region"})
HUB_KEYS = frozenset({"sourceParameterName", "account", "region", "waves", "organizationId",
                      "organizationManagementAccount", "parameterPrefix"})
ORGANIZATION_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
OU_RE = re.compile(r"^ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$")   # AWS Organizations' OU ID
REPORT_BUS = "ami-upgrade-hub-reports"   # the hub's bus for spoke reports, in every region


class HubSettingsError(ValueError):
    """A hub configuration value is invalid; the message names the key."""


def key_name(key: str) -> str:
    return f"{NAMESPACE}:{key}"


@dataclass(frozen=True, order=True)
class Target:
    """One spoke: the function deployed in ``account`` and ``region``."""

    account: str
    region: str

    @property
    def key(self) -> str:
        return f"{self.account}/{self.region}"


@dataclass(frozen=True)
class Wave:
    name: str
    targets: tuple[Target, ...]
    bake_seconds: int
    gate_alarms: tuple[str, ...] = ()
    rollback_on_gate: bool = False
    tier: str = "Advanced"
    organizational_units: tuple[str, ...] = ()   # RAM principals besides the targets' accounts

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({t.region for t in self.targets}))

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(sorted({t.account for t in self.targets}))


@dataclass(frozen=True)
class HubSettings:
    """The hub stack's validated configuration; built by :func:`load_hub_settings`."""

    account: str
    region: str                       # where the source parameter and the promoter live
    source_parameter_name: str
    waves: tuple[Wave, ...]
    organization_id: str | None = None
    parameter_prefix: str = "/ami-upgrade/hub"
    organization_management_account: str | None = None   # in an OU's ARN

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({r for w in self.waves for r in w.regions}))

    def wave_parameter_name(self, wave: Wave) -> str:
        return f"{self.parameter_prefix}/waves/{wave.name}"

    def wave_parameter_arn(self, wave: Wave, region: str) -> str:
        return (f"arn:aws:ssm:{region}:{self.account}:parameter"
                f"{self.wave_parameter_name(wave)}")

    def alarm_location(self, alarm: str) -> tuple[str, str]:
        """(region, name) of a gate alarm: an ARN's, else the hub region and the name."""
        match = ALARM_ARN_RE.match(alarm)
        return (match["region"], match["name"]) if match else (self.region, alarm)

    def alarm_arn(self, alarm: str, partition: str = "aws") -> str:
        region, name = self.alarm_location(alarm)
        return f"arn:{partition}:cloudwatch:{region}:{self.account}:alarm:{name}"

    @property
    def alarm_regions(self) -> tuple[str, ...]:
        """The regions whose CloudWatch the promoter reads gate alarms in."""
        return tuple(sorted({self.alarm_location(a)[0] for w in self.waves
                             for a in w.gate_alarms}))

    def wave_of(self, target: Target) -> Wave | None:
        return next((w for w in self.waves if target in w.targets), None)

    def ou_arn(self, ou: str) -> str:
        """An organisational unit as RAM names it: its ARN, made of the management
        account, the organisation and the OU's ID."""
        return (f"arn:aws:organizations::{self.organization_management_account}:ou/"
                f"{self.organization_id}/{ou}")

    def report_bus_arn(self, region: str) -> str:
        """The hub's report bus in ``region``: where the spokes there put their reports."""
        return f"arn:aws:events:{region}:{self.account}:event-bus/{REPORT_BUS}"

    def check_spoke(self, account: str, region: str, parameter_arn: str,
                    hub_bus_arn: str | None = None, key: str = "parameterName",
                    bus_key: str = "hubEventBusArn") -> None:
        """Refuse a spoke whose configured parameter is not the one of its wave and region,
        or (when ``hub_bus_arn`` is given) whose report bus is not the hub's in its region."""
        wave = self.wave_of(Target(account, region))
        if wave is None:
            raise HubSettingsError(f"{key}: spoke {account}/{region} is in no wave of the hub")
        expected = self.wave_parameter_arn(wave, region)
        if parameter_arn != expected:
            raise HubSettingsError(f"{key}: spoke {account}/{region} is in wave {wave.name!r}, "
                                   f"whose parameter is {expected!r}, not {parameter_arn!r}")
        if hub_bus_arn is not None and hub_bus_arn != self.report_bus_arn(region):
            raise HubSettingsError(f"{bus_key}: spoke {account}/{region} reports to the hub's "
                                   f"bus {self.report_bus_arn(region)!r}, not {hub_bus_arn!r}")

    def to_document(self) -> str:
        """The configuration as JSON, parsed back by :func:`load_hub_settings`."""
        return json.dumps({
            "account": self.account, "region": self.region,
            "sourceParameterName": self.source_parameter_name,
            "organizationId": self.organization_id, "parameterPrefix": self.parameter_prefix,
            "organizationManagementAccount": self.organization_management_account,
            "waves": [{"name": w.name, "bakeMinutes": w.bake_seconds // 60,
                       "gateAlarms": list(w.gate_alarms), "rollbackOnGate": w.rollback_on_gate,
                       "tier": w.tier, "organizationalUnits": list(w.organizational_units),
                       "targets": [{"account": t.account, "region": t.region}
                                   for t in w.targets]} for w in self.waves]},
            sort_keys=True, separators=(",", ":"))


def _json(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise HubSettingsError(f"{key_name(name)}: not valid JSON ({exc.msg})") from None
    return value


def _unknown(entry: Mapping[str, Any], known: frozenset[str], name: str) -> None:
    extra = sorted(set(entry) - known)
    if extra:
        raise HubSettingsError(f"{key_name(name)}: unknown key(s) {', '.join(extra)}; "
                               f"expected {', '.join(sorted(known))}")


def _text(value: Any, pattern: re.Pattern[str], name: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise HubSettingsError(f"{key_name(name)}: {value!r} is not {what}")
    return value


def _account(value: Any, name: str) -> str:
    return _text(value, ACCOUNT_RE, name, "an AWS account ID (12 digits)")


def _region(value: Any, name: str) -> str:
    return _text(value, REGION_RE, name, "an AWS region (e.g. eu-west-1)")


def _target(raw: Any, name: str) -> Target:
    if not isinstance(raw, Mapping):
        raise HubSettingsError(f"{key_name(name)}: expected an object with account and region")
    _unknown(raw, TARGET_KEYS, name)
    return Target(_account(raw.get("account"), f"{name}.account"),
                  _region(raw.get("region"), f"{name}.region"))


def _bake_seconds(raw: Any, name: str) -> int:
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= BAKE_MINUTES_MAX:
        raise HubSettingsError(f"{key_name(name)}: {raw!r} is out of range; expected whole "
                               f"minutes from 0 to {BAKE_MINUTES_MAX}")
    return raw * 60


def _alarm(value: Any, name: str) -> str:
    """An alarm's name (in the hub's region) or its ARN (any region of the hub account)."""
    if isinstance(value, str) and value.startswith("arn:"):
        return _text(value, ALARM_ARN_RE, name,
                     "an alarm ARN (arn:aws:cloudwatch:<region>:<account>:alarm:<name>)")
    return _text(value, ALARM_NAME_RE, name, "an alarm name or ARN")


def _check_alarm_accounts(waves: Sequence[Wave], account: str) -> None:
    """Gate alarms are the hub account's: CloudWatch reads no other account's alarms."""
    for i, wave in enumerate(waves):
        for j, alarm in enumerate(wave.gate_alarms):
            match = ALARM_ARN_RE.match(alarm)
            if match and match["account"] != account:
                raise HubSettingsError(
                    f"{key_name(f'waves[{i}].gateAlarms[{j}]')}: {alarm!r} is an alarm of "
                    f"account {match['account']}; the promoter reads the hub account's "
                    f"({account}) alarms only. Gate on a spoke's metrics with an alarm in the "
                    "hub account, through CloudWatch cross-account observability "
                    "(docs/multi-account.md)")


def _organization(values: Mapping[str, Any], waves: Sequence[Wave]
                  ) -> tuple[str | None, str | None]:
    """The organisation's ID and management account: both needed to name an OU's ARN."""
    organization = values.get("organizationId") or None
    if organization is not None:
        _text(organization, ORGANIZATION_RE, "organizationId", "an organization ID (o-...)")
    management = values.get("organizationManagementAccount") or None
    if management is not None:
        _account(management, "organizationManagementAccount")
    first = next((i for i, w in enumerate(waves) if w.organizational_units), None)
    if first is not None:
        for key, value in (("organizationId", organization),
                           ("organizationManagementAccount", management)):
            if value is None:
                raise HubSettingsError(
                    f"{key_name(key)}: required when a wave shares with organisational units "
                    f"({key_name(f'waves[{first}].organizationalUnits')}): RAM names an OU by "
                    "its ARN, arn:aws:organizations::<management account>:ou/<organization>/"
                    "<ou>")
    return organization, management


def _wave(raw: Any, name: str) -> Wave:
    if not isinstance(raw, Mapping):
        raise HubSettingsError(f"{key_name(name)}: expected an object")
    _unknown(raw, WAVE_KEYS, name)
    wave_name = _text(raw.get("name"), WAVE_NAME_RE, f"{name}.name",
                      "a wave name (1-32 lowercase letters, digits, '-')")
    tier = raw.get("tier", "Advanced")
    if tier not in WAVE_TIERS:
        raise HubSettingsError(f"{key_name(name)}.tier: {tier!r}: AWS RAM shares only "
                               f"advanced parameters; expected one of {', '.join(WAVE_TIERS)}")
    targets = raw.get("targets") or []
    if not isinstance(targets, Sequence) or isinstance(targets, str) or not targets:
        raise HubSettingsError(f"{key_name(name)}.targets: a wave needs at least one "
                               "target (account and region)")
    parsed = tuple(_target(t, f"{name}.targets[{i}]") for i, t in enumerate(targets))
    alarms = raw.get("gateAlarms") or []
    if not isinstance(alarms, list):
        raise HubSettingsError(f"{key_name(name)}.gateAlarms: expected a list of alarm names "
                               "or ARNs")
    units = raw.get("organizationalUnits") or []
    if not isinstance(units, list):
        raise HubSettingsError(f"{key_name(name)}.organizationalUnits: expected a list of "
                               "organisational unit IDs (ou-...)")
    rollback = raw.get("rollbackOnGate", False)
    if not isinstance(rollback, bool):
        raise HubSettingsError(f"{key_name(name)}.rollbackOnGate: expected true or false")
    return Wave(
        name=wave_name, targets=parsed,
        bake_seconds=_bake_seconds(raw.get("bakeMinutes", 0), f"{name}.bakeMinutes"),
        gate_alarms=tuple(_alarm(a, f"{name}.gateAlarms[{i}]") for i, a in enumerate(alarms)),
        rollback_on_gate=rollback, tier=tier,
        organizational_units=tuple(
            _text(u, OU_RE, f"{name}.organizationalUnits[{i}]",
                  "an organisational unit ID (ou-<root>-<unit>, e.g. ou-ab12-cd34ef56)")
            for i, u in enumerate(units)))


def _check_disjoint(waves: Sequence[Wave]) -> None:
    """A spoke belongs to one wave, and a wave name names one wave."""
    seen: dict[Target, str] = {}
    names: set[str] = set()
    for i, wave in enumerate(waves):
        if wave.name in names:
            raise HubSettingsError(f"{key_name(f'waves[{i}].name')}: {wave.name!r} names "
                                   "two waves")
        names.add(wave.name)
        for j, target in enumerate(wave.targets):
            if target in seen:
                raise HubSettingsError(
                    f"{key_name(f'waves[{i}].targets[{j}]')}: spoke {target.key} is already "
                    f"in wave {seen[target]!r}; a spoke belongs to one wave")
            seen[target] = wave.name


def load_hub_settings(values: Mapping[str, Any]) -> HubSettings:
    """Parse the hub's keys (``ami-upgrade-hub:<key>`` without the namespace)."""
    _unknown(values, HUB_KEYS, "")
    waves_raw = _json(values.get("waves"), "waves")
    if not isinstance(waves_raw, list) or not waves_raw:
        raise HubSettingsError(f"{key_name('waves')}: the hub needs at least one wave")
    waves = tuple(_wave(w, f"waves[{i}]") for i, w in enumerate(waves_raw))
    _check_disjoint(waves)
    organization, management = _organization(values, waves)
    prefix = values.get("parameterPrefix") or "/ami-upgrade/hub"
    _text(prefix, re.compile(r"^(/[a-zA-Z0-9_.\-]+)+$"), "parameterPrefix",
          "a parameter path (/a/b)")
    if prefix.lower().lstrip("/").startswith(("aws", "ssm")):
        raise HubSettingsError(f"{key_name('parameterPrefix')}: {prefix!r} begins with 'aws' "
                               "or 'ssm', which SSM reserves")
    account = _account(values.get("account"), "account")
    _check_alarm_accounts(waves, account)
    return HubSettings(
        account=account,
        region=_region(values.get("region"), "region"),
        source_parameter_name=_text(values.get("sourceParameterName"), PARAMETER_NAME_RE,
                                    "sourceParameterName", "an SSM parameter name"),
        waves=waves, organization_id=organization, parameter_prefix=prefix,
        organization_management_account=management)
