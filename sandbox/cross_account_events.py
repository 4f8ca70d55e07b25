"""Emulation: PutEvents onto another account's event bus, admitted by the bus's policy.

moto looks an event bus ARN up in the caller's own account. AWS delivers an event put
on another account's bus when the bus's resource policy allows the caller
``events:PutEvents`` (its ``events:source`` condition included); the event's
``account`` is the sender's, which the sender cannot choose. This emulation checks
the owner's bus policy and keeps admitted events, as the owner's bus received them,
in ``aws.state[STATE_KEY][bus_arn]`` for the test to route on; a refused entry is a
failed entry (``AccessDeniedException``), as AWS reports it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from moto.events.models import events_backends
from moto.events.responses import EventsHandler

from .core import EmbeddedAws, patch_method

STATE_KEY = "cross_account_events"
BUS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:events:([a-z0-9-]+):(\d{12}):event-bus/(.+)$")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def admits(policy: str | None, account: str, source: str) -> bool:
    """Whether a statement of the bus policy lets ``account`` put an event of ``source``.

    Conditions other than ``events:source`` (an organisation's ID) are not emulated:
    such a statement admits no one here."""
    for statement in json.loads(policy or "{}").get("Statement", []):
        principal = statement.get("Principal")
        principals = (["*"] if principal == "*" else _listed((principal or {}).get("AWS", [])))
        condition = statement.get("Condition") or {}
        equals = condition.get("StringEquals", {})
        if (statement.get("Effect") == "Allow"
                and "events:PutEvents" in _listed(statement.get("Action"))
                and ("*" in principals or account in principals
                     or f"arn:aws:iam::{account}:root" in principals)
                and source in _listed(equals.get("events:source", source))
                and set(condition) <= {"StringEquals"}
                and set(equals) <= {"events:source"}):
            return True
    return False


def install(aws: EmbeddedAws) -> Callable[[], None]:
    original = EventsHandler.put_events

    def deliver(caller: str, entry: dict[str, Any]) -> dict[str, Any]:
        match = BUS_ARN_RE.match(entry.get("EventBusName") or "")
        assert match is not None
        region, owner, name = match.groups()
        bus = events_backends[owner][region].event_buses.get(name)
        if bus is None or not admits(bus.policy, caller, entry.get("Source", "")):
            return {"ErrorCode": "AccessDeniedException",
                    "ErrorMessage": f"{caller} may not put events on {entry['EventBusName']}"}
        event_id = str(uuid.uuid4())
        aws.state.setdefault(STATE_KEY, {}).setdefault(entry["EventBusName"], []).append({
            "version": "0", "id": event_id, "detail-type": entry.get("DetailType"),
            "source": entry.get("Source"), "account": caller,
            "time": aws.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": entry.get("Resources", []),
            "detail": json.loads(entry.get("Detail") or "{}")})
        return {"EventId": event_id}

    def put_events(self: EventsHandler) -> str:
        entries = self._get_param("Entries") or []

        def foreign(entry: dict[str, Any]) -> bool:
            match = BUS_ARN_RE.match(entry.get("EventBusName") or "")
            return match is not None and match.group(2) != self.current_account

        if not entries or not all(foreign(e) for e in entries):
            return str(original(self))
        results = [deliver(self.current_account, e) for e in entries]
        return json.dumps({"FailedEntryCount": sum("ErrorCode" in r for r in results),
                           "Entries": results})

    return patch_method(EventsHandler, "put_events", put_events)
