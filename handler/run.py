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

import datetime as dt
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
    DEFERRED = "deferred"        # not read or not started for lack of time: a continuation does


class Status(StrEnum):
    """A run's overall ``status``."""

    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    IGNORED = "ignored"
    IN_PROGRESS = "in_progress"   # work in scope not yet at an end state: a later run goes on


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def now(self) -> dt.datetime: ...   # wall time, for what outlives the invocation (tags)


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


HEADROOM = 0.2   # of an invocation's time, kept unused: it ends by 80% of its timeout


@dataclass
class Deadline:
    """When this invocation must stop starting work, with a safety margin."""

    clock: Clock
    ends_at: float
    margin_seconds: float = 60.0
    working_seconds: float | None = None   # the invocation's time before the margin

    @classmethod
    def from_context(cls, context: Any, clock: Clock, margin_seconds: float = 60.0,
                     default_seconds: float = 900.0) -> Deadline:
        """The margin: a quarter of the time left, between 10 s and ``margin_seconds``
        (what follows the last step, a call in flight, the progress tags, the
        continuation, the report, takes seconds, and a 60 s function still needs time to
        work), and never less than ``HEADROOM`` of the time left, so a long invocation
        ends by 80% of its timeout: room for throttling or slow calls near the end,
        before Lambda kills it."""
        remaining = default_seconds
        getter = getattr(context, "get_remaining_time_in_millis", None)
        if callable(getter):
            remaining = getter() / 1000.0
        margin = max(min(margin_seconds, max(10.0, remaining / 4)), remaining * HEADROOM)
        return cls(clock, clock.monotonic() + remaining, margin, max(remaining - margin, 0.0))

    def remaining(self) -> float:
        return self.ends_at - self.clock.monotonic()

    def has_time_for(self, seconds: float) -> bool:
        """True when ``seconds`` of work still fit before the margin."""
        return self.remaining() - self.margin_seconds >= seconds

    def budget(self, seconds: float) -> float:
        """The time to keep for a step of ``seconds`` (a read, a start, with botocore's
        retries): ``seconds``, or a quarter of the invocation's working time when that is
        shorter. A 15-minute function keeps ``seconds``; a 60 s one (45 s of work) keeps
        11 s, so its first steps fit instead of being left to a continuation that would
        meet the same limit."""
        if self.working_seconds is None:
            return seconds
        return min(seconds, self.working_seconds / 4)

    def expired(self) -> bool:
        return not self.has_time_for(0)


def clock_for(context: Any) -> Clock:
    return getattr(context, "ami_upgrade_clock", None) or SystemClock()


class NoGoal(RuntimeError):
    """A recovery run (no validated image) reached code that moves work onto the run's
    image: a defect, raised instead of acting toward an image nobody checked."""


@dataclass(frozen=True)
class RunContext:
    """Everything a rollout needs for one run; frozen.

    ``image``: the AMI this run validated and moves work onto; None for a recovery run
    (the run's own AMI could not be established), where work in flight goes only toward
    its recorded target, checked, or back. Code that plans or starts work reads
    :attr:`goal`; code shared with recovery reads ``image`` and handles None.
    """

    settings: Settings
    clients: Clients
    image: Image | None
    parameter: ParameterValue | None
    exclusions: Exclusions
    dry_run: bool
    clock: Clock
    deadline: Deadline
    attempt: int = 0
    account: str | None = None   # this deployment's account (AMI owner ``self``), if known

    @property
    def goal(self) -> Image:
        """The validated image this run moves work onto; :class:`NoGoal` on a recovery run."""
        if self.image is None:
            raise NoGoal("a recovery run has no image of its own to move work onto")
        return self.image

    def goal_id(self, target: str | None) -> str | None:
        """The AMI a replacement goes toward: its plan's ``target`` when it names one (the
        target recorded in flight), else this run's image; None on a recovery run for work
        that records none (it is then never started toward anything, only finished or
        rolled back)."""
        if target:
            return target
        return self.image.id if self.image is not None else None


Entry = TypeVar("Entry", "AsgEntry", "InstanceEntry")


@dataclass(frozen=True)
class Outcome(Generic[Entry]):
    """What applying a plan did; ``continue_reason`` set when work is left for later.

    ``backing_off``: all the work left waits for a retry time after a transient error,
    so an immediate continuation would make no progress (the follow-up rule runs it).
    """

    entries: tuple[Entry, ...] = ()
    continue_reason: str | None = None
    backing_off: bool = False
    waiting: int = 0     # resources with work left whose entries do not say so (held groups)
