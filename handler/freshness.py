"""Never converge on a value older than the event that started the run.

With the CloudTrail trigger the event names the version ``PutParameter``
created, and it can arrive before that version is readable (for an
``aws:ec2:image`` parameter, SSM validates the value after the call returns).
A run that read an older version would converge on the previous AMI; instead
it does nothing and fails, so that Lambda's asynchronous retry runs it again a
minute later. A newer version than the event's is fine: newest wins.
"""

from __future__ import annotations

from .log import log_event


class ParameterBehindEvent(RuntimeError):
    """The parameter read is older than the event's version: retry later, change nothing."""


def behind_event(event_version: int | None, read_version: int) -> str | None:
    """Why the read value must not be used, or None when it may (pure)."""
    if event_version is None or read_version >= event_version:
        return None
    return (f"GetParameter returned version {read_version}, older than version "
            f"{event_version} named by the event: not acting on a stale value; failing the "
            "invocation so Lambda retries it")


def check_not_behind(name: str, event_version: int | None, read_version: int) -> None:
    """Raise :class:`ParameterBehindEvent` (after a clear log line) when the read lags."""
    reason = behind_event(event_version, read_version)
    if reason:
        log_event("parameter_behind_event", parameter=name, version=read_version,
                  event_version=event_version, reason=reason, retry=True)
        raise ParameterBehindEvent(f"parameter {name}: {reason}")
