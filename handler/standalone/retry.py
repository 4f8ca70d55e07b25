"""Transient errors in a replacement: the same step again later, with backoff, in a tag.

A call that meets a transient error (``aws.is_transient``: throttling, capacity,
service errors, a new instance not yet visible) is neither a failure nor a reason
to roll back: the runner records ``ami-upgrade:retry`` (attempt, next time, step,
error) and does not repeat that step before the time, which doubles per attempt
(``BASE_SECONDS`` up to ``CAP_SECONDS``). The tag outlives the invocation, so the
backoff holds across invocations (the follow-up rule, ``handler/follow_up.py``, runs
them while work is in flight).

Transient errors never mark an AMI failed. While the old instance still runs, the
same step is retried with backoff for as long as it takes. Once the old instance is
down (stopped or gone), ``MAX_FORWARD_ATTEMPTS`` transient errors on the same
rollback-able step mean it has been down too long: the replacement rolls back, its
``ami-upgrade:rollback`` value carrying ``TRANSIENT_MARK``, and ends with a
``REPLACE_AGAIN`` retry on the old instance instead of ``failed-ami``: planning leaves
it alone until that time (``deferred_until``), then replaces it again; each such
rollback doubles the wait (``replace_again``, up to ``MAX_REPLACE_AGAIN_SECONDS``).
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
MAX_REPLACE_AGAIN_SECONDS = 6 * 3600.0
REPLACE_AGAIN = "replace again"   # the step of the retry a transient rollback leaves
TRANSIENT_MARK = "transient: "    # how a rollback for transient errors records its reason


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

    def deferred(self) -> str:
        """What a replacement rolled back for transient errors says until it is retried."""
        return (f"rolled back after transient errors ({self.error}); the instance runs "
                f"again, and its replacement is tried again at {iso(self.next_at)}")

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


def rollback_value(reason: str, transient: bool) -> str:
    """The ``ami-upgrade:rollback`` value: the reason, marked when the errors were transient."""
    return f"{TRANSIENT_MARK}{reason}" if transient else reason


def transient_rollback(value: str) -> bool:
    """True for a rollback recorded by :func:`rollback_value` for transient errors."""
    return value.startswith(TRANSIENT_MARK)


def replace_again(attempt: int, reason: str, now: dt.datetime) -> Retry:
    """After the ``attempt``-th replacement rolled back for transient errors: when to try
    the next one (``CAP_SECONDS``, doubling per attempt, at most
    ``MAX_REPLACE_AGAIN_SECONDS``)."""
    wait = min(CAP_SECONDS * 2.0 ** max(attempt - 1, 0), MAX_REPLACE_AGAIN_SECONDS)
    return Retry(attempt, now + dt.timedelta(seconds=wait), REPLACE_AGAIN, reason)


def deferred_until(tags: dict[str, str], now: dt.datetime) -> Retry | None:
    """The retry a transient rollback left on an instance, while its time has not come."""
    pending = Retry.parse(tags.get(RETRY))
    if pending is None or pending.step != REPLACE_AGAIN or now >= pending.next_at:
        return None
    return pending


def down(obs: Observation) -> bool:
    """True when the old instance is not running (stopped by the replacement, or gone)."""
    return obs.old is None or obs.old.state != "running"
