"""The run report (contract): one entry per Auto Scaling group and instance considered."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .outcomes import Code
from .run import Action, Status


def _entry(required: dict[str, Any], optional: dict[str, Any],
           details: dict[str, Any]) -> dict[str, Any]:
    """An entry as the contract has it: optional keys only when set, then the details."""
    return {**required, **{k: v for k, v in optional.items() if v is not None}, **details}


# Skipped groups whose refresh toward the run's AMI still runs (started by this rollout).
REFRESHING_CODES = frozenset({Code.REFRESH_ALREADY_RUNNING, Code.STARTED_EARLIER})


@dataclass(frozen=True)
class AsgEntry:
    """One Auto Scaling group's line in the report: ``code`` says why it has its ``action``
    (the contract's value), ``reason`` says it to people."""

    name: str
    action: Action
    code: Code
    reason: str = ""
    refresh_id: str | None = None
    launch_template_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def refreshing(self) -> bool:
        """A refresh toward the run's AMI started, or still running: not on the AMI yet."""
        return self.action == Action.REFRESH_STARTED or self.code in REFRESHING_CODES

    def to_dict(self) -> dict[str, Any]:
        return _entry({"name": self.name, "action": str(self.action), "code": str(self.code),
                       "reason": self.reason},
                      {"refresh_id": self.refresh_id,
                       "launch_template_version": self.launch_template_version}, self.details)


@dataclass(frozen=True)
class InstanceEntry:
    """One standalone instance's line in the report: ``code`` says why it has its
    ``action`` (the contract's value), ``reason`` says it to people; ``volumes`` are its
    data volumes, ``new_instance_id`` its replacement once launched."""

    id: str
    action: Action
    code: Code
    reason: str = ""
    new_instance_id: str | None = None
    volumes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _entry({"id": self.id, "action": str(self.action), "code": str(self.code),
                       "reason": self.reason,
                       "volumes": list(self.volumes)},
                      {"new_instance_id": self.new_instance_id}, self.details)


@dataclass(frozen=True)
class Report:
    parameter: str
    ami_id: str | None
    dry_run: bool
    status: Status
    reason: str | None = None
    code: Code | None = None          # why the run has its reason (with ``reason`` only)
    asgs: tuple[AsgEntry, ...] = ()
    instances: tuple[InstanceEntry, ...] = ()
    continuation: int | None = None   # the attempt number sent to continue, if any
    warnings: tuple[str, ...] = ()    # configuration that names nothing, and the like
    pending: dict[str, int] | None = None   # in_progress: resources with work left, by kind

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "parameter": self.parameter, "ami_id": self.ami_id, "dry_run": self.dry_run,
            "status": str(self.status),
            "asgs": [a.to_dict() for a in self.asgs],
            "instances": [i.to_dict() for i in self.instances],
        }
        if self.reason:
            out["reason"] = self.reason
            if self.code is not None:
                out["code"] = str(self.code)
        if self.continuation is not None:
            out["continuation"] = self.continuation
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.pending is not None:
            out["pending"] = dict(self.pending)
        return out


PENDING_ACTIONS = frozenset({Action.DEFERRED, Action.IN_PROGRESS})


def pending(asgs: tuple[AsgEntry, ...], instances: tuple[InstanceEntry, ...],
            waiting: int = 0) -> dict[str, int]:
    """Resources in scope whose work goes on in a later invocation, by kind: entries
    deferred or in flight, and ``waiting`` groups (held behind a refresh in the way)."""
    return {"asgs": sum(e.action in PENDING_ACTIONS for e in asgs) + waiting,
            "instances": sum(e.action in PENDING_ACTIONS for e in instances)}


def overall_status(asgs: tuple[AsgEntry, ...], instances: tuple[InstanceEntry, ...],
                   planning_failures: int = 0, waiting: int = 0) -> Status:
    """``failed`` when every acted-on entry failed, ``partial`` when some did (so a
    failure reaches the alarms in the run that met it); otherwise ``in_progress`` while
    any resource in scope has work left (``pending``: work not done is never
    ``succeeded``), and ``succeeded`` once every one reached an end state. A subsystem
    whose planning failed counts as one failed action.
    """
    entries: list[AsgEntry | InstanceEntry] = [*asgs, *instances]
    actions = [e.action for e in entries if e.action != Action.SKIPPED]
    failures = actions.count(Action.FAILED) + planning_failures
    if failures and failures == len(actions) + planning_failures:
        return Status.FAILED
    if failures:
        return Status.PARTIAL
    if any(pending(asgs, instances, waiting).values()):
        return Status.IN_PROGRESS
    return Status.SUCCEEDED


# ------------------------------------------------------------------- the summary

# SNS refuses a message over 256 KB, and CloudWatch Logs cuts an event there: what the run
# publishes and logs as one document stays under this, with room for the envelope.
SUMMARY_MAX_BYTES = 240_000
REASON_CHARS = 400               # per entry, in a bounded summary
ENTRY_KINDS = ("asgs", "instances")


def size(document: Any, indent: int | None = None) -> int:
    return len(json.dumps(document, indent=indent, default=str).encode())


def _priority(entry: dict[str, Any]) -> int:
    """Misconfigurations first (an operator must act), then other failures, then work done."""
    if entry.get("action") == Action.FAILED:
        return 0 if entry.get("fix") else 1
    return 3 if entry.get("action") == Action.SKIPPED else 2


def failures_first(document: dict[str, Any]) -> dict[str, Any]:
    """The report with each list's failures first (misconfigurations first), order kept."""
    return {**document, **{kind: sorted(document[kind], key=_priority)
                           for kind in ENTRY_KINDS if kind in document}}


def bounded_summary(document: dict[str, Any], parts: int,
                    max_bytes: int = SUMMARY_MAX_BYTES) -> dict[str, Any]:
    """A summary that always fits ``max_bytes``: the header, counts by action, then entries
    failures first (reasons cut) while they fit, and how many more each list has."""
    counts = {kind: dict(Counter(str(e["action"]) for e in document[kind]))
              for kind in ENTRY_KINDS}
    head: dict[str, Any] = {
        k: v for k, v in document.items() if k not in (*ENTRY_KINDS, "warnings")}
    if isinstance(head.get("reason"), str):
        head["reason"] = head["reason"][:4 * REASON_CHARS]
    warnings = [w[:REASON_CHARS] for w in document.get("warnings", [])]
    out: dict[str, Any] = {
        **head, "counts": counts,
        "truncated": (f"the full report ({len(document['asgs'])} groups, "
                      f"{len(document['instances'])} instances) exceeds what SNS and CloudWatch "
                      f"Logs take in one message; it is in this run's log as {parts} "
                      "'report_part' lines, before the 'report' line"),
        "asgs": [], "instances": [], "more": {}}
    kept_warnings: list[str] = []
    for warning in warnings:   # a few of these, at most a tenth of the room
        if size(kept_warnings) + size(warning) > max_bytes // 10:
            break
        kept_warnings.append(warning)
    if warnings:
        out["warnings"] = kept_warnings
    room = max_bytes - size(out) - 200   # the "more" counts and separators
    ranked = sorted(((_priority(e), kind, e) for kind in ENTRY_KINDS for e in document[kind]),
                    key=lambda item: item[0])
    for _, kind, entry in ranked:
        cut = {k: (v[:REASON_CHARS] if isinstance(v, str) else v) for k, v in entry.items()
               if k in ("name", "id", "action", "code", "reason", "fix", "refresh_id",
                        "new_instance_id")}
        cost = size(cut) + 2
        if cost > room:
            break
        out[kind].append(cut)
        room -= cost
    out["more"] = {kind: len(document[kind]) - len(out[kind]) for kind in ENTRY_KINDS}
    return out


def entry_parts(document: dict[str, Any],
                max_bytes: int = SUMMARY_MAX_BYTES) -> list[dict[str, Any]]:
    """The report's entries in pieces that each fit one log event, in report order."""
    parts: list[dict[str, Any]] = []
    current: dict[str, list[Any]] = {kind: [] for kind in ENTRY_KINDS}
    used = 0
    for kind in ENTRY_KINDS:
        for entry in document[kind]:
            cost = size(entry) + 2
            if used and used + cost > max_bytes - 1000:
                parts.append(current)
                current, used = {k: [] for k in ENTRY_KINDS}, 0
            current[kind].append(entry)
            used += cost
    if used:
        parts.append(current)
    return parts
