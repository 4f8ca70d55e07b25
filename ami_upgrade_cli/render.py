"""Tables (rich) for a report, refreshes and replacements, as the demo shows them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.table import Table
from rich.text import Text

from .fleet import ACTIVE, FAILED, Refresh, Replacement

ACTION_STYLE = {"refresh_started": "green", "replaced": "green", "planned": "cyan",
                "skipped": "dim", "failed": "red", "in_progress": "yellow"}


def _action(action: str) -> Text:
    return Text(action, style=ACTION_STYLE.get(action, ""))


def cell(value: object) -> Text:
    """AWS data as a table cell: literal text, never rich markup (``[/]`` stays ``[/]``)."""
    return Text("" if value is None else str(value))


def report_summary(report: dict) -> str:
    ami = report.get("ami_id") or "(none)"
    line = (f"parameter {report.get('parameter')} -> {ami} · status {report.get('status')}"
            + (" · dry run" if report.get("dry_run") else ""))
    if report.get("reason"):
        line += f" · {report['reason']}"
    return line


def report_tables(report: dict, members: Mapping[str, str] | None = None) -> list[Table]:
    """Groups and instances with the action and the reason for each.

    ``members`` (instance ID -> Auto Scaling group, as AWS lists the groups): an instance
    the report skips because its group replaces it is folded into its group's row (the
    ``members`` column counts them) instead of a row of its own.
    """
    members = members or {}
    grouped = {e["name"] for e in report.get("asgs", [])}
    folded: dict[str, int] = {}
    rows = []
    for entry in report.get("instances", []):
        group = members.get(entry["id"])
        if entry["action"] == "skipped" and group is not None and group in grouped:
            folded[group] = folded.get(group, 0) + 1
        else:
            rows.append(entry)
    groups = Table(title="Auto Scaling groups", title_justify="left", expand=False)
    for column in ("group", "action", "reason", "refresh", "template version", "members"):
        groups.add_column(column)
    for entry in report.get("asgs", []):
        groups.add_row(cell(entry["name"]), _action(entry["action"]), cell(entry.get("reason")),
                       cell(entry.get("refresh_id")), cell(entry.get("launch_template_version")),
                       cell(folded.get(entry["name"], "")))
    instances = Table(title="Standalone instances", title_justify="left", expand=False)
    for column in ("instance", "action", "reason", "new instance"):
        instances.add_column(column)
    for entry in rows:
        instances.add_row(cell(entry["id"]), _action(entry["action"]), cell(entry.get("reason")),
                          cell(entry.get("new_instance_id")))
    return [groups, instances]


def refresh_table(rows: Iterable[Refresh]) -> Table:
    table = Table(title="Instance refreshes (in progress or ended in the last 24 h)",
                  title_justify="left")
    for column in ("group", "refresh", "by", "status", "done", "checkpoint", "status reason",
                   "target AMI"):
        table.add_column(column)
    for r in rows:
        style = "yellow" if r.status in ACTIVE else "red" if r.status in FAILED else "green"
        done = "" if r.percentage is None else f"{r.percentage}%"
        if r.instances_to_update:
            done += f" ({r.instances_to_update} to go)"
        table.add_row(cell(r.group), cell(r.refresh_id), "ami-upgrade" if r.ours else "other",
                      Text(r.status, style=style), done, cell(r.checkpoint),
                      cell(r.status_reason), cell(r.target_ami))
    return table


def replacement_table(rows: Iterable[Replacement]) -> Table:
    table = Table(title="Standalone replacements (engine progress tags)", title_justify="left")
    for column in ("instance", "state", "phase", "target AMI", "detail"):
        table.add_column(column)
    for r in rows:
        style = "red" if r.failed else "dim" if r.phase == "kept" else "yellow"
        table.add_row(cell(r.instance), cell(r.state), Text(r.phase, style=style),
                      cell(r.target_ami), cell(r.detail))
    return table
