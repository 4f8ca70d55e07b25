"""The run report (contract): one entry per Auto Scaling group and instance considered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .run import Action, Status


def _entry(required: dict[str, Any], optional: dict[str, Any],
           details: dict[str, Any]) -> dict[str, Any]:
    """An entry as the contract has it: optional keys only when set, then the details."""
    return {**required, **{k: v for k, v in optional.items() if v is not None}, **details}


@dataclass(frozen=True)
class AsgEntry:
    """One Auto Scaling group's line in the report."""

    name: str
    action: Action
    reason: str = ""
    refresh_id: str | None = None
    launch_template_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _entry({"name": self.name, "action": str(self.action), "reason": self.reason},
                      {"refresh_id": self.refresh_id,
                       "launch_template_version": self.launch_template_version}, self.details)


@dataclass(frozen=True)
class InstanceEntry:
    """One standalone instance's line in the report: ``volumes`` are its data volumes,
    ``new_instance_id`` its replacement once launched."""

    id: str
    action: Action
    reason: str = ""
    new_instance_id: str | None = None
    volumes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _entry({"id": self.id, "action": str(self.action), "reason": self.reason,
                       "volumes": list(self.volumes)},
                      {"new_instance_id": self.new_instance_id}, self.details)


@dataclass(frozen=True)
class Report:
    parameter: str
    ami_id: str | None
    dry_run: bool
    status: Status
    reason: str | None = None
    asgs: tuple[AsgEntry, ...] = ()
    instances: tuple[InstanceEntry, ...] = ()
    continuation: int | None = None   # the attempt number sent to continue, if any
    warnings: tuple[str, ...] = ()    # configuration that names nothing, and the like

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "parameter": self.parameter, "ami_id": self.ami_id, "dry_run": self.dry_run,
            "status": str(self.status),
            "asgs": [a.to_dict() for a in self.asgs],
            "instances": [i.to_dict() for i in self.instances],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.continuation is not None:
            out["continuation"] = self.continuation
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def overall_status(asgs: tuple[AsgEntry, ...], instances: tuple[InstanceEntry, ...],
                   planning_failures: int = 0) -> Status:
    """``failed`` when every acted-on entry failed, ``partial`` when some did.

    A subsystem whose planning failed counts as one failed action.
    """
    entries: list[AsgEntry | InstanceEntry] = [*asgs, *instances]
    actions = [e.action for e in entries if e.action != Action.SKIPPED]
    failures = actions.count(Action.FAILED) + planning_failures
    if failures and failures == len(actions) + planning_failures:
        return Status.FAILED
    return Status.PARTIAL if failures else Status.SUCCEEDED
