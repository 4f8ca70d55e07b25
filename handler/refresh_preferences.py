"""AWS's rules for ``RefreshPreferences`` (StartInstanceRefresh): one rule, one place.

Ranges, enums and member types come from botocore's own model of the
``RefreshPreferences`` shape (botocore ships in the Lambda runtime and in the dev
environment), loaded once, on first use, so a field AWS adds or a bound it
changes is picked up with botocore. The rules AWS documents but the model does not
carry are written here: MaxHealthyPercentage needs MinHealthyPercentage and may be
at most 100 above it, checkpoints are strictly increasing, CheckpointDelay needs
CheckpointPercentages. The stack (preview), the function (``ASG_CONFIGURATIONS``)
and the sandbox's instance-refresh emulation all call :func:`check_preferences`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from .schema import SettingsError, check_bool, check_one_of

Check = Callable[[str, Any], Any]


@cache
def _shape() -> dict[str, Any]:
    """``RefreshPreferences`` and the shapes it references, from botocore's model."""
    from botocore.loaders import create_loader

    model = create_loader().load_service_model("autoscaling", "service-2")
    shapes = model["shapes"]

    def resolve(name: str) -> dict[str, Any]:
        shape = dict(shapes[name])
        if shape["type"] == "structure":
            shape["members"] = {k: resolve(v["shape"]) for k, v in shape["members"].items()}
        elif shape["type"] == "list":
            shape["member"] = resolve(shape["member"]["shape"])
        return shape

    return resolve("RefreshPreferences")


def _integer(shape: dict[str, Any]) -> Check:
    lo, hi = shape.get("min"), shape.get("max")
    expected = (f"an integer from {lo} to {hi}" if lo is not None and hi is not None
                else f"an integer of at least {lo}" if lo is not None else "an integer")

    def check(key: str, v: Any) -> Any:
        if (isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo)
                or (hi is not None and v > hi)):
            raise SettingsError(f"{key}: expected {expected}, got {v!r}")
        return v
    return check


def _integer_list(shape: dict[str, Any]) -> Check:
    item = shape["member"]
    lo, hi = item.get("min", 0), item.get("max", 100)

    def check(key: str, v: Any) -> Any:
        if (not isinstance(v, list) or not v
                or not all(isinstance(p, int) and not isinstance(p, bool) and lo <= p <= hi
                           for p in v)
                or v != sorted(set(v))):   # AWS: ascending, each number unique
            raise SettingsError(f"{key}: expected a strictly increasing list of integers from "
                                f"{lo} to {hi}, got {v!r}")
        return list(v)
    return check


def _alarms(shape: dict[str, Any]) -> Check:
    names = shape["members"]["Alarms"]["member"]
    lo, hi = names.get("min", 1), names.get("max", 255)

    def check(key: str, v: Any) -> Any:
        if (not isinstance(v, dict) or set(v) != {"Alarms"} or not isinstance(v["Alarms"], list)
                or not all(isinstance(a, str) and lo <= len(a) <= hi for a in v["Alarms"])):
            raise SettingsError(f'{key}: expected {{"Alarms": ["alarm-name", ...]}} (names of '
                                f"{lo} to {hi} characters), got {v!r}")
        return {"Alarms": list(v["Alarms"])}
    return check


def _check_for(shape: dict[str, Any]) -> Check:
    kind = shape["type"]
    if kind == "integer":
        return _integer(shape)
    if kind == "boolean":
        return check_bool
    if kind == "string" and "enum" in shape:
        return check_one_of(*shape["enum"])
    if kind == "list" and shape["member"]["type"] == "integer":
        return _integer_list(shape)
    if kind == "structure" and set(shape["members"]) == {"Alarms"}:
        return _alarms(shape)
    raise NotImplementedError(f"RefreshPreferences member of type {kind}: add its check here")


@cache
def checks() -> Mapping[str, Check]:
    """One check per ``RefreshPreferences`` member, in the model's order."""
    return {name: _check_for(member) for name, member in _shape()["members"].items()}


def fields() -> tuple[str, ...]:
    return tuple(checks())


def check_preferences(prefs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Each field checked, then the rules across fields; SettingsError names ``where.field``."""
    known = checks()
    unknown = sorted(set(prefs) - set(known))
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys are "
                            f"{', '.join(known)}")
    checked = {key: known[key](f"{where}.{key}", value) for key, value in prefs.items()}
    check_combination(checked, where)
    return checked


def check_combination(prefs: Mapping[str, Any], where: str) -> None:
    """The rules AWS documents across fields (not carried by the model)."""
    lo, hi = prefs.get("MinHealthyPercentage"), prefs.get("MaxHealthyPercentage")
    if hi is not None and lo is None:
        raise SettingsError(f"{where}: MaxHealthyPercentage needs MinHealthyPercentage (AWS: if "
                            "you specify MaxHealthyPercentage, you must also specify "
                            "MinHealthyPercentage)")
    if lo is not None and hi is not None and hi - lo > 100:
        raise SettingsError(f"{where}: MaxHealthyPercentage - MinHealthyPercentage must be at "
                            f"most 100 (got {hi} - {lo})")
    if prefs.get("CheckpointDelay") is not None and not prefs.get("CheckpointPercentages"):
        raise SettingsError(f"{where}: CheckpointDelay needs CheckpointPercentages")
