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
