"""The invocation's deadline: when it stops starting work, for the timeouts a stack allows."""

from __future__ import annotations

import pytest

from handler.run import Deadline
from sandbox.core import EmulatedClock


class _Context:
    def __init__(self, seconds: float) -> None:
        self.millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


@pytest.mark.parametrize(("timeout", "margin"), [
    (60, 15.0),      # a quarter: a 60 s function keeps 45 s of work (issue 13)
    (120, 30.0),     # a quarter
    (300, 60.0),     # the 60 s cap and a fifth agree
    (600, 120.0),    # a fifth: ends by 80% of its timeout (issue 12)
    (900, 180.0),    # a fifth
])
def test_margin_is_a_quarter_up_to_60s_and_never_under_a_fifth(timeout, margin):
    clock = EmulatedClock()
    deadline = Deadline.from_context(_Context(timeout), clock)

    assert deadline.margin_seconds == margin
    assert deadline.has_time_for(timeout - margin)
    assert not deadline.has_time_for(timeout - margin + 1)


def test_a_15_minute_invocation_stops_starting_work_at_80_percent():
    clock = EmulatedClock()
    deadline = Deadline.from_context(_Context(900), clock)

    clock.sleep(0.8 * 900 - 1)     # 719 s in: 1 s of work still fits
    assert not deadline.expired()
    clock.sleep(2)                 # 721 s: past 80%
    assert deadline.expired()


@pytest.mark.parametrize(("timeout", "budget"), [
    (60, 11.25),     # 45 s of work: a quarter
    (120, 22.5),     # 90 s of work: a quarter
    (160, 30.0),     # 120 s of work: a quarter is the whole step
    (900, 30.0),     # 720 s of work: the step's own time
])
def test_a_step_keeps_its_time_or_a_quarter_of_a_short_invocation(timeout, budget):
    deadline = Deadline.from_context(_Context(timeout), EmulatedClock())

    assert deadline.budget(30.0) == budget
    assert deadline.has_time_for(2 * deadline.budget(30.0) + deadline.budget(30.0))


def test_a_deadline_built_without_a_context_keeps_the_whole_step():
    clock = EmulatedClock()
    deadline = Deadline(clock, clock.monotonic() + 900)

    assert deadline.budget(30.0) == 30.0
