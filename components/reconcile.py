"""The scheduled reconcile: its schedule expression and the event it sends. Pure, no Pulumi.

EventBridge delivers change events on a best-effort basis: one lost event means
no rollout. A scheduled rule therefore invokes the alias with the contract's
direct event (``handler.events``), so a lost event, an instance launched later
from an old image or a refresh that rolled back are caught by the next run. The
engine is idempotent: on a converged fleet the run makes no mutating call.

Used by the schedule component (the deployed rule's input) and by the sandbox
(``python -m sandbox --reconcile``), so the demo delivers the very event the
stack deploys.
"""

from __future__ import annotations

from typing import Any

from handler.settings import DEFAULT_SCHEDULE, parse_reconcile_schedule

__all__ = ["DEFAULT_SCHEDULE", "parse_reconcile_schedule", "reconcile_event"]

def reconcile_event(parameter_name: str, dry_run: bool) -> dict[str, Any]:
    """The direct event the schedule sends (``handler.events`` accepts it as ``direct``)."""
    return {"parameter_name": parameter_name, "dry_run": dry_run}
