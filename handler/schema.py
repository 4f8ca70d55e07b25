"""The settings schema's building blocks: one set of primitive parsers and the Setting record.

Stdlib only (it ships in the Lambda package). Each parser takes a raw value (the
text of an environment variable, the text the Pulumi CLI passes, or a YAML value)
and the name to put in messages, and returns the value's canonical form or raises
:class:`SettingsError` naming it. The schema itself (``handler.settings.SCHEMA``)
lists every stack key with these parsers; the stack, the Lambda environment, the
contract and the README tables are all derived from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable or key."""


def unset(value: Any) -> bool:
    """None or blank text: the contract treats an empty variable as unset."""
    return value is None or (isinstance(value, str) and not value.strip())


def load_json(value: Any, name: str) -> Any:
    """Structured values arrive as JSON text (environment, CLI) or as objects (YAML, tests)."""
    if unset(value):
        return None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name}: not valid JSON ({exc.msg})") from None


def parse_string(value: Any, name: str, pattern: re.Pattern | None = None,
                 expected: str = "") -> str | None:
    """A string (stripped; blank is unset) that matches ``pattern`` if given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{name}: expected a string, got {value!r}")
    text = value.strip()
    if text and pattern is not None and not pattern.match(text):
        raise SettingsError(f"{name}: {expected or 'malformed value'}, got {text!r}")
    return text or None


def parse_bool(value: str | bool | None, name: str, default: bool = False) -> bool:
    if unset(value):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name}: expected true or false, got {value!r}")


def parse_int(value: Any, name: str, default: int | None,
              allowed: range | tuple[int, ...]) -> int | None:
    """An integer (or its text) within ``allowed``; unset gives ``default``."""
    if unset(value):
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
        raise SettingsError(f"{name}: expected {expected}, got {value!r}")
    return number


def parse_choice(value: Any, name: str, default: str, choices: tuple[str, ...]) -> str:
    text = parse_string(value, name) or default
    if text not in choices:
        raise SettingsError(f"{name}: expected one of {', '.join(choices)}, got {text!r}")
    return text


def parse_id_list(value: Any, name: str, pattern: re.Pattern | None = None) -> frozenset[str]:
    """A JSON list or a comma-separated string of IDs/names; empty means none."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return frozenset()
        if text.startswith("["):
            items = load_json(text, name)
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


def parse_object(value: Any, name: str) -> dict[str, Any]:
    """A JSON/YAML object (unset: empty)."""
    data = load_json(value, name)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SettingsError(f"{name}: expected an object, got {data!r}")
    return dict(data)


# Checks of values inside JSON objects (ASG_CONFIGURATIONS, STANDALONE_CONFIGURATION):
# strict JSON types, no text coercion. ``check(key, value)`` returns the value.


def check_int_in(lo: int, hi: int) -> Callable[[str, Any], Any]:
    def check(key: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise SettingsError(f"{key}: expected an integer from {lo} to {hi}, got {v!r}")
        return v
    return check


def check_bool(key: str, v: Any) -> Any:
    if not isinstance(v, bool):
        raise SettingsError(f"{key}: expected true or false, got {v!r}")
    return v


def check_one_of(*choices: str) -> Callable[[str, Any], Any]:
    def check(key: str, v: Any) -> Any:
        if v not in choices:
            raise SettingsError(f"{key}: expected one of {', '.join(choices)}, got {v!r}")
        return v
    return check


def compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def render(value: Any) -> str:
    """A canonical value as environment text: JSON for lists/objects, "" for unset."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, frozenset | set | tuple):
        return compact_json(sorted(value))
    if isinstance(value, Mapping):
        return compact_json({k: dict(v) if isinstance(v, Mapping) else v
                             for k, v in value.items()})
    return compact_json(value)


def snake(key: str) -> str:
    """``exclusionsParameterName`` -> ``exclusions_parameter_name``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


@dataclass(frozen=True)
class Setting:
    """One ``ami-upgrade:<key>``: how it is parsed, its default, where it goes, its doc.

    ``parse(raw, name)`` returns the canonical value (unset gives the default).
    ``env``: the Lambda environment variable carrying it (None: used by the stack only);
    ``build`` turns the canonical value into what ``handler.settings.Settings`` holds.
    ``default_doc``/``doc`` are the README configuration table's columns, ``env_format``/
    ``env_doc`` the contract table's (a test keeps the README equal to them).
    """

    key: str
    parse: Callable[[Any, str], Any]
    doc: str
    default_doc: str = "none"
    env: str | None = None
    env_format: str = ""
    env_doc: str = ""
    build: Callable[[Any], Any] = lambda value: value
    to_env: Callable[[Any], str] = render
    attr_name: str | None = None     # the attribute in handler Settings, if not snake(key)

    @property
    def attr(self) -> str:
        """The field of ``handler.settings.Settings`` holding the built value."""
        return self.attr_name or snake(self.key)

    @property
    def stack_attr(self) -> str:
        """The field of the stack's settings holding the canonical value (if it has one)."""
        return snake(self.key)
