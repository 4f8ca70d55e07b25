"""The scheduled reconcile: its schedule expression and the event it sends. Pure, no Pulumi.

EventBridge delivers change events on a best-effort basis: one lost event means
no rollout. A scheduled rule therefore invokes the alias with the contract's
direct event (``handler.events``), so a lost event, an instance launched later
from an old image or a refresh that rolled back are caught by the next run. The
engine is idempotent: on a converged fleet the run makes no mutating call.

Used by the schedule component (the deployed rule's input) and by the sandbox
(``python -m sandbox --reconcile``), so the demo delivers the very event the
stack deploys.
"""

from __future__ import annotations

import re
from typing import Any

from handler.settings import SettingsError

DEFAULT_SCHEDULE = "rate(1 day)"
OFF = "off"

_RATE_RE = re.compile(r"^rate\((?P<value>[1-9]\d*) (?P<unit>minutes?|hours?|days?)\)$")
_CRON_RE = re.compile(r"^cron\(\S+( \S+){5}\)$")


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
    rate = _RATE_RE.match(text)
    if rate:
        singular = rate["value"] == "1"
        if singular == rate["unit"].endswith("s"):
            unit = rate["unit"].rstrip("s")
            expected = f"rate(1 {unit})" if singular else f"rate({rate['value']} {unit}s)"
            raise SettingsError(f"{key}: EventBridge wants {expected!r}, got {text!r}")
        return text
    if _CRON_RE.match(text):
        return text
    raise SettingsError(f"{key}: expected 'rate(<n> <minute(s)|hour(s)|day(s)>)', "
                        f"'cron(<6 fields>)' or 'off', got {text!r}")


def reconcile_event(parameter_name: str, dry_run: bool) -> dict[str, Any]:
    """The direct event the schedule sends (``handler.events`` accepts it as ``direct``)."""
    return {"parameter_name": parameter_name, "dry_run": dry_run}
