"""Emulation: ``PutEvents`` reaches only enabled rules with an event pattern, as in AWS.

A rule with a ``ScheduleExpression`` fires on its schedule and matches no event, and
a DISABLED rule delivers nothing. moto matches every event against a rule without a
pattern (an empty pattern matches all) and ignores the state, then fails on the
Lambda target it cannot deliver to; so the stack's follow-up rule (scheduled,
DISABLED) broke every event the demo published.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.events.models import Rule

from .core import EmbeddedAws, patch_method


def install(aws: EmbeddedAws) -> Callable[[], None]:
    original = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if self.state != "ENABLED" or (self.scheduled_expression
                                       and not self.event_pattern.get_pattern()):
            return
        original(self, original_event, transform_input)

    return patch_method(Rule, "send_to_targets", send_to_targets)
