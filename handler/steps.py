"""Run-level steps outside planning whose AWS errors become part of the report.

The AMI check, the exclusions read and the observation of work in flight make AWS
calls before (or after) the subsystems plan. An error there (throttling past the
SDK's retries, a refusal) must not escape as a raw ClientError, which would leave no
report, no summary and no metric: :func:`step` turns it into :class:`StepFailed`,
naming the step and the call, and saying whether a later run may succeed (transient:
the engine schedules that run).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from .aws import describe_error, is_transient

AMI_CHECK = "the AMI check"
EXCLUSIONS_READ = "the exclusions read"
IN_FLIGHT_OBSERVATION = "the observation of work in flight"


class StepFailed(Exception):
    """A run-level step failed on an AWS error: which step, the call and AWS's words."""

    def __init__(self, name: str, error: ClientError | BotoCoreError) -> None:
        self.name = name
        self.error = describe_error(error)
        self.transient = is_transient(error)
        super().__init__(f"{name} failed: {self.error}")


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run the body as step ``name``: an AWS error in it raises :class:`StepFailed`."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise StepFailed(name, exc) from exc
