"""Transient errors in a replacement: the same step again later, with backoff, in a tag.

A call that meets a transient error (``aws.is_transient``: throttling, capacity,
service errors, a new instance not yet visible) is neither a failure nor a reason
to roll back: the runner records ``ami-upgrade:retry`` (attempt, next time, step,
error) and does not repeat that step before the time, which doubles per attempt
(``BASE_SECONDS`` up to ``CAP_SECONDS``). The tag outlives the invocation, so the
backoff holds across invocations (the follow-up rule, ``handler/follow_up.py``, runs
them while work is in flight).

Bounded: outside a rollback, after ``MAX_FORWARD_ATTEMPTS`` transient errors on the
same step the error counts as permanent (the machine rolls back, as for any refusal).
A rollback's steps are retried without a count limit (every ``CAP_SECONDS`` at most):
giving up would leave the old instance down, and nothing else brings it back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..tags import RETRY, ROLLBACK
from .observation import Observation

BASE_SECONDS = 30.0
CAP_SECONDS = 1800.0
MAX_FORWARD_ATTEMPTS = 6       # 30 s + 1 + 2 + 4 + 8 min between them: about 16 minutes


def backoff_seconds(attempt: int) -> float:
    return float(min(BASE_SECONDS * 2.0 ** max(attempt - 1, 0), CAP_SECONDS))


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Retry:
    """One step's backoff: not retried before ``next_at``."""

    attempt: int
    next_at: dt.datetime
    step: str
    error: str

    def value(self) -> str:
        return f"{self.attempt}|{iso(self.next_at)}|{self.step}|{self.error}"[:256]

    @classmethod
    def parse(cls, value: str | None) -> Retry | None:
        """The tag's value, or None when absent or unreadable (then: no backoff)."""
        parts = (value or "").split("|", 3)
        if len(parts) != 4:
            return None
        try:
            attempt = int(parts[0])
            next_at = dt.datetime.strptime(parts[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
        return cls(attempt, next_at, parts[2], parts[3])

    def describe(self) -> str:
        return (f"retrying '{self.step}' at {iso(self.next_at)} (transient error, attempt "
                f"{self.attempt}: {self.error})")


def holder(obs: Observation) -> tuple[str, dict[str, str]] | None:
    """Where a replacement's retry tag lives: the old instance, else the launch template
    keeping its shape, else the new instance; with that resource's tags."""
    if obs.old is not None:
        return obs.old.id, dict(obs.old.tags)
    if obs.template is not None:
        return obs.template.id, dict(obs.template.tags)
    if obs.new:
        return obs.new[0].id, dict(obs.new[0].tags)
    return None


def recorded(obs: Observation) -> Retry | None:
    found = holder(obs)
    return Retry.parse(found[1].get(RETRY)) if found else None


def in_rollback(obs: Observation) -> bool:
    return obs.old is not None and ROLLBACK in obs.old.tags


def next_retry(prior: Retry | None, step: str, error: str, now: dt.datetime) -> Retry:
    attempt = prior.attempt + 1 if prior is not None and prior.step == step else 1
    return Retry(attempt, now + dt.timedelta(seconds=backoff_seconds(attempt)), step, error)
