"""What an invocation asks for, parsed from the event (the contract's event shapes).

EventBridge events are read by the trigger that routes them (``triggers.REGISTRY``).
No EventBridge event carries the AMI value, and events can arrive late or
twice, so a request only says *which* parameter changed; the engine then reads
the parameter's current value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .settings import AMI_ID_RE
from .triggers import REGISTRY, EventError, by_detail_type, typed

CLOUDTRAIL = "cloudtrail"
PARAMETER_STORE_CHANGE = "parameter-store-change"
SOURCES = frozenset(spec.source for spec in REGISTRY.values())
DIRECT = "direct"
CONTINUATION = "continuation"

CONTINUATION_KEY = "ami-upgrade:continuation"
MAX_CONTINUATIONS = 100


@dataclass(frozen=True)
class Request:
    kind: str                            # a trigger name, "direct" or "continuation"
    parameter_name: str | None = None
    dry_run: bool | None = None          # None: use the DRY_RUN setting
    ami_id: str | None = None            # pinned by an operator (direct invocations only)
    event_version: int | None = None     # the parameter version the event names, if any
    ignored_reason: str | None = None
    failure_reason: str | None = None
    attempt: int = 0                     # continuation number (0 for the first invocation)
    group: str | None = None             # an event of the estate (refresh-ended): its group


def _normalise_name(name: str) -> str:
    """A parameter named by ARN or without its leading slash, as SSM names it."""
    if name.startswith("arn:") and ":parameter" in name:
        name = name.split(":parameter", 1)[1]
    return name if name.startswith("/") or "/" not in name else f"/{name}"


def _names_parameter(name: str, configured: str) -> bool:
    """An ARN drops the leading '/': ``arn:...:parameter/my-ami`` names ``my-ami`` too."""
    normal = _normalise_name(name)
    if configured.startswith("arn:"):   # another account's parameter: its events name the path
        return normal == _normalise_name(configured)
    return normal == configured or (name.startswith("arn:") and normal == f"/{configured}")


def parse_event(event: Any, configured_parameter: str) -> Request:
    """Classify ``event``; raises EventError for shapes the function does not accept."""
    if not isinstance(event, dict):
        raise EventError(f"unsupported event: expected a JSON object, got {type(event).__name__}")
    if "detail-type" in event:
        request = _parse_eventbridge(event)
    elif CONTINUATION_KEY in event:
        request = _parse_continuation(event)
    elif set(event) <= {"parameter_name", "dry_run", "ami_id"}:
        request = _parse_direct(event)
    else:
        raise EventError(f"unsupported event: unknown keys {sorted(event)[:10]}")
    if request.parameter_name is None:
        return Request(**{**request.__dict__, "parameter_name": configured_parameter})
    if (request.ignored_reason is None
            and not _names_parameter(request.parameter_name, configured_parameter)):
        return Request(**{**request.__dict__, "ignored_reason":
                          f"event is for parameter {request.parameter_name!r}, this deployment "
                          f"follows {configured_parameter!r}"})
    if configured_parameter.startswith("arn:"):   # read by ARN, from the owner's account
        return Request(**{**request.__dict__, "parameter_name": configured_parameter})
    return request


def _parse_eventbridge(event: dict) -> Request:
    """An event routed by one of the registered triggers (``triggers.REGISTRY``)."""
    source = typed(event, "source", str, "event")
    detail_type = typed(event, "detail-type", str, "event")
    detail = typed(event, "detail", dict, "event")
    spec = by_detail_type(source, detail_type) if source in SOURCES else None
    if spec is None or detail is None:
        raise EventError(f"unsupported event: source {source!r}, detail-type {detail_type!r}")
    parsed = spec.parse(detail)
    return Request(spec.name, parsed.parameter_name, event_version=parsed.event_version,
                   ignored_reason=parsed.ignored_reason, failure_reason=parsed.failure_reason,
                   group=parsed.group)


def _check_direct_fields(event: dict) -> tuple[str | None, bool | None, str | None]:
    name, dry_run, ami_id = event.get("parameter_name"), event.get("dry_run"), event.get("ami_id")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise EventError(f"parameter_name: expected a parameter name, got {name!r}")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise EventError(f"dry_run: expected true or false, got {dry_run!r}")
    if ami_id is not None and (not isinstance(ami_id, str) or not AMI_ID_RE.match(ami_id)):
        raise EventError(f"ami_id: not an AMI ID: {ami_id!r}")
    return name, dry_run, ami_id


def _parse_direct(event: dict) -> Request:
    name, dry_run, ami_id = _check_direct_fields(event)
    return Request(DIRECT, name, dry_run=dry_run, ami_id=ami_id)


def _parse_continuation(event: dict) -> Request:
    """``{"ami-upgrade:continuation": {"attempt": n}, "parameter_name": ..., "dry_run": ...}``."""
    body = event[CONTINUATION_KEY]
    attempt = body.get("attempt") if isinstance(body, dict) else None
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise EventError(f"{CONTINUATION_KEY}: expected {{\"attempt\": n >= 1}}, got {body!r}")
    rest = {k: v for k, v in event.items() if k != CONTINUATION_KEY}
    if set(rest) - {"parameter_name", "dry_run"}:
        raise EventError(f"continuation event: unknown keys {sorted(set(rest))}")
    name, dry_run, _ = _check_direct_fields(rest)
    if attempt > MAX_CONTINUATIONS:
        return Request(CONTINUATION, name, dry_run=dry_run, attempt=attempt, failure_reason=(
            f"gave up after {MAX_CONTINUATIONS} continuations; invoke again to resume"))
    return Request(CONTINUATION, name, dry_run=dry_run, attempt=attempt)


def continuation_event(parameter_name: str, attempt: int, dry_run: bool) -> dict:
    """The event a run sends its own alias to continue unfinished work."""
    return {CONTINUATION_KEY: {"attempt": attempt}, "parameter_name": parameter_name,
            "dry_run": dry_run}
