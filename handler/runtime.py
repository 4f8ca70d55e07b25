"""Time as the engine sees it: a clock it can sleep on and the invocation's deadline.

Lambda gives the deadline through ``context.get_remaining_time_in_millis()``. The
sandbox's Lambda context also carries its emulated clock (``ami_upgrade_clock``)
so that waits advance emulated time instead of sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class Deadline:
    """When this invocation must stop starting work, with a safety margin."""

    clock: Clock
    ends_at: float
    margin_seconds: float = 60.0

    @classmethod
    def from_context(cls, context: Any, clock: Clock, margin_seconds: float = 60.0,
                     default_seconds: float = 900.0) -> Deadline:
        remaining = default_seconds
        getter = getattr(context, "get_remaining_time_in_millis", None)
        if callable(getter):
            remaining = getter() / 1000.0
        return cls(clock, clock.monotonic() + remaining, margin_seconds)

    def remaining(self) -> float:
        return self.ends_at - self.clock.monotonic()

    def has_time_for(self, seconds: float) -> bool:
        """True when ``seconds`` of work still fit before the margin."""
        return self.remaining() - self.margin_seconds >= seconds

    def expired(self) -> bool:
        return not self.has_time_for(0)


def clock_for(context: Any) -> Clock:
    return getattr(context, "ami_upgrade_clock", None) or SystemClock()
