"""The shared core of a run: its context, its outcome, its clock and deadline, its words.

Every subsystem (``asg``, ``standalone``) takes a :class:`RunContext` and returns an
:class:`Outcome`; the engine builds the one and composes the others. This module
imports no subsystem, so none of them imports the engine.

The report's vocabularies are ``StrEnum``s: they serialise to the contract's strings.

Time: Lambda gives the deadline through ``context.get_remaining_time_in_millis()``. The
sandbox's Lambda context also carries its emulated clock (``ami_upgrade_clock``)
so that waits advance emulated time instead of sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from .ami import Image, ParameterValue
    from .aws import Clients
    from .report import AsgEntry, InstanceEntry
    from .settings import Exclusions, Settings


class Action(StrEnum):
    """What happened to one group or instance (an entry's ``action``)."""

    REFRESH_STARTED = "refresh_started"
    PLANNED = "planned"
    SKIPPED = "skipped"
    FAILED = "failed"
    REPLACED = "replaced"
    IN_PROGRESS = "in_progress"


class Status(StrEnum):
    """A run's overall ``status``."""

    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    IGNORED = "ignored"


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


@dataclass(frozen=True)
class RunContext:
    """Everything a rollout needs for one run; frozen, built once the AMI is validated."""

    settings: Settings
    clients: Clients
    image: Image
    parameter: ParameterValue | None
    exclusions: Exclusions
    dry_run: bool
    clock: Clock
    deadline: Deadline
    attempt: int = 0


Entry = TypeVar("Entry", "AsgEntry", "InstanceEntry")


@dataclass(frozen=True)
class Outcome(Generic[Entry]):
    """What applying a plan did; ``continue_reason`` set when work is left for later."""

    entries: tuple[Entry, ...] = ()
    continue_reason: str | None = None
