"""What the demo shows: live progress while emulated time passes, then the final tables.

One bar per instance refresh (AWS's ``PercentageComplete``) and one per
standalone replacement (its stage, read from the estate: old instance stopped,
volumes moving, volumes on the new instance, old instance retired). The bars
are sampled whenever the emulated clock advances, so they move exactly as the
emulations progress. The final tables list every group and instance with its
AMI before and after, its volumes, the action taken and the reason for every
skip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from handler.outcomes import Code
from handler.tags import PARAMETER

from .convergence import Snapshot, Verdict, final_entries, holder_of, read_refreshes
from .core import EmbeddedAws
from .fleet import IN_SCOPE, OUT_OF_SCOPE, Estate, Standalone, refresh_label
from .routing import Invocation

SAMPLE_EVERY_SECONDS = 60.0
WRAPPED = ("refresh settings", "reason / detail")   # the other columns keep one line


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Stage:
    percent: int
    label: str


def replacement_stage(instance: Standalone, states: Mapping[str, tuple[str, str]],
                      attachments: Mapping[str, tuple[str, str] | None], new_image: str,
                      keep_old: bool) -> Stage:
    """How far the replacement of ``instance`` is, from what the estate shows.

    ``states``: instance ID -> (state, image); ``attachments``: data volume ID ->
    (instance ID, device) or None when detached.
    """
    old_state, old_image = states.get(instance.id, ("unknown", ""))
    holders = {a[0] for a in attachments.values() if a is not None}
    detached = any(a is None for a in attachments.values())
    if holders == {instance.id} and not detached:
        if old_image == new_image:
            return Stage(100, "root volume replaced" if old_state == "running" else
                         f"new root volume, instance {old_state}")
        if old_state in ("stopping", "stopped"):
            return Stage(25, f"old instance {old_state}")
        return Stage(0, "waiting" if old_state == "running" else old_state)
    if detached or len(holders) > 1:
        return Stage(50, "moving volumes")
    holder = holders.pop()
    state, image = states.get(holder, ("unknown", ""))
    if state != "running" or image != new_image:
        return Stage(75, f"volumes on {holder} ({state})")
    retired = ("stopped",) if keep_old else ("terminated", "shutting-down")
    if old_state in retired:
        return Stage(100, f"replaced by {holder}")
    return Stage(90, f"{holder} running, retiring old instance")


class _Clock:
    def __init__(self, aws: EmbeddedAws, title: str) -> None:
        self.aws = aws
        self.title = title
        self.start = aws.clock.monotonic()

    def __rich__(self) -> Text:
        elapsed = duration(self.aws.clock.monotonic() - self.start)
        return Text.assemble((self.title, "bold"), f"  emulated time +{elapsed}")


class FleetProgress:
    """Live bars for the in-scope groups and instances, sampled as emulated time passes."""

    def __init__(self, aws: EmbeddedAws, estate: Estate, console: Console, title: str) -> None:
        self.aws = aws
        self.estate = estate
        self.console = console
        self.keep_old = bool(estate.stack.standalone_configuration.get("keep_old_instance"))
        self.ec2 = boto3.client("ec2", region_name=estate.stack.region)
        self.autoscaling = boto3.client("autoscaling", region_name=estate.stack.region)
        self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(bar_width=28),
                                 TaskProgressColumn(), TextColumn("{task.fields[status]}"),
                                 console=console, auto_refresh=False)
        self.groups: dict[str, TaskID] = {
            g.name: self.progress.add_task(f"refresh  {g.name}", total=100, status="waiting")
            for g in estate.groups_in(IN_SCOPE)}
        self.instances: dict[str, TaskID] = {
            i.id: self.progress.add_task(f"replace  {i.name} {i.id}", total=100,
                                         status="waiting")
            for i in estate.instances_in(IN_SCOPE)}
        self.clock = _Clock(aws, title)
        self.live = Live(Group(self.clock, self.progress), console=console,
                         auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
        self._last_sample = -SAMPLE_EVERY_SECONDS
        self._unsubscribe = None
        self._peak: dict[str, int] = {}          # furthest stage seen per instance
        self._failed: dict[str, dict] = {}       # instance -> its failed entry, from the reports

    def __enter__(self) -> FleetProgress:
        self.live.start(refresh=True)
        self._unsubscribe = self.aws.clock.on_advance(self._on_advance)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        self.sample()
        self.live.stop()

    def _on_advance(self, _now: object) -> None:
        if self.aws.clock.monotonic() - self._last_sample >= SAMPLE_EVERY_SECONDS:
            self.sample()

    def note(self, invocation: Invocation) -> None:
        """One line per invocation, printed above the bars."""
        when = duration(invocation.started - self.clock.start)
        took = duration(invocation.ended - invocation.started)
        kind = invocation.source + (f" (retry {invocation.attempt})" if invocation.attempt else "")
        if invocation.error:
            text = f"[red]crashed[/red]: {invocation.error}"
        else:
            report = invocation.report or {}
            self._failed.update({e["id"]: e for e in report.get("instances", [])
                                 if e.get("action") == "failed"})
            acted = [e for e in (*report.get("asgs", []), *report.get("instances", []))
                     if e.get("action") != "skipped"]
            text = (f"status [bold]{report.get('status')}[/bold], {len(acted)} acted on"
                    + (f", continuation #{report['continuation']} queued"
                       if report.get("continuation") else "")
                    + (f": {report['reason']}" if report.get("reason") else ""))
        self.console.print(f"  +{when}  invocation ({took}): {kind}: {text}")
        self.sample()

    def sample(self) -> None:
        """Read refreshes and replacement stages from the estate and redraw."""
        self._last_sample = self.aws.clock.monotonic()
        for name, task in self.groups.items():
            refreshes = read_refreshes(self.autoscaling, name)
            if refreshes:
                latest = refreshes[0]
                self.progress.update(task, completed=latest.percentage,
                                     status=f"{latest.status} {latest.id[:8]}")
        if self.instances:
            self._sample_instances()
        self.live.refresh()

    def _sample_instances(self) -> None:
        scope = self.estate.instances_in(IN_SCOPE)
        volume_ids = [v.id for i in scope for v in i.volumes]
        attachments: dict[str, tuple[str, str] | None] = {}
        for page in self.ec2.get_paginator("describe_volumes").paginate(VolumeIds=volume_ids):
            for volume in page["Volumes"]:
                current = [a for a in volume.get("Attachments", [])
                           if a.get("State", "attached") in ("attached", "attaching")]
                attachments[volume["VolumeId"]] = ((current[0]["InstanceId"], current[0]["Device"])
                                                   if current else None)
        wanted = sorted({i.id for i in scope} | {a[0] for a in attachments.values() if a})
        states: dict[str, tuple[str, str]] = {}
        try:
            for page in self.ec2.get_paginator("describe_instances").paginate(
                    InstanceIds=wanted):
                for reservation in page["Reservations"]:
                    for data in reservation["Instances"]:
                        states[data["InstanceId"]] = (data["State"]["Name"],
                                                      data.get("ImageId", ""))
        except ClientError:
            return
        for instance in scope:
            stage = replacement_stage(instance, states,
                                      {v.id: attachments.get(v.id) for v in instance.volumes},
                                      self.estate.new_image, self.keep_old)
            peak = self._peak[instance.id] = max(self._peak.get(instance.id, 0), stage.percent)
            if stage.percent == 0 and (peak or instance.id in self._failed):
                stage = Stage(0, f"[red]{rolled_back_label(self._failed.get(instance.id))}[/red]")
            self.progress.update(self.instances[instance.id], completed=stage.percent,
                                 status=stage.label)


def rolled_back_label(entry: Mapping | None) -> str:
    """The bar's label for a replacement back at its start: the failed entry's reason, said
    as a rollback unless its code already makes it one (its reason then says so)."""
    reason = (entry or {}).get("reason", "")
    text = reason if (entry or {}).get("code") == Code.ROLLED_BACK else f"rolled back {reason}"
    return text.strip()[:70]


# ---------------------------------------------------------------------- final tables


def _ami(estate: Estate, image: str | None) -> str:
    if image == estate.old_image:
        return "old"
    if image == estate.new_image:
        return "[green]new[/green]"
    return image or "-"


def _action(entry: dict | None) -> str:
    if entry is None:
        return "[dim]-[/dim]"
    colour = {"failed": "red", "skipped": "dim", "planned": "cyan"}.get(entry["action"], "green")
    return f"[{colour}]{entry['action']}[/{colour}]"


def _unreported(role: str, tags: Mapping[str, str]) -> str:
    """Why a resource the function never reported was not its business."""
    follows = tags.get(PARAMETER)
    return (f"not in the report: follows {follows}" if role == OUT_OF_SCOPE and follows
            else "not in the report")


def _detail(entry: dict | None, *extra: str) -> str:
    """The reason for a skip, a failure or a plan; for work done, what it produced."""
    parts = [p for p in extra if p]
    if entry is None:
        return "; ".join(parts)
    action = entry["action"]
    if action == "refresh_started":
        parts.append(f"refresh {str(entry.get('refresh_id'))[:8]} toward template version "
                     f"{entry.get('launch_template_version')}")
    elif action == "replaced":
        parts.append(f"new instance {entry['new_instance_id']}" if entry.get("new_instance_id")
                     and entry["new_instance_id"] != entry["id"]
                     else "root volume replaced in place")
    elif entry.get("reason"):
        parts.append(entry["reason"])
    return "; ".join(parts)


def _images(estate: Estate, snapshot: Snapshot, instance_ids: Iterable[str]) -> str:
    """``2 old`` (or ``1 old, 1 new``): how many of the instances run which image."""
    counts = Counter(_ami(estate, snapshot.instances[i].image_id) for i in instance_ids
                     if i in snapshot.instances)
    return ", ".join(f"{n} {image}" for image, n in sorted(counts.items())) or "none"


def group_table(estate: Estate, before: Snapshot, after: Snapshot, reports: list[dict]) -> Table:
    entries = final_entries(reports, "asgs", "name")
    table = Table(title="Auto Scaling groups", title_justify="left", expand=False)
    for column in ("group", "scope", "refresh settings", "instances: AMI", "template",
                   "action", "reason / detail"):
        table.add_column(column, overflow="fold", no_wrap=column not in WRAPPED)
    for group in estate.groups:
        was, now = before.groups[group.name], after.groups.get(group.name)
        ami = (f"{_images(estate, before, was.instance_ids)} → "
               f"{_images(estate, after, now.instance_ids) if now else 'gone'}")
        template = (f"v{was.latest_version} → v{now.latest_version}"
                    if now and now.latest_version != was.latest_version
                    else f"v{was.latest_version}")
        if (was.template_image or "").startswith("resolve:ssm:"):
            template += " resolve:ssm"
        settings = refresh_label(group.refresh) if group.role == IN_SCOPE else ""
        if group.role == IN_SCOPE and group.configured:
            settings += " (own entry)"
        entry = entries.get(group.name)
        first = before.instances.get(was.instance_ids[0]) if was.instance_ids else None
        missing = "" if entry else _unreported(group.role, first.tags if first else {})
        table.add_row(group.name, group.role, settings, ami, template, _action(entry),
                      _detail(entry, missing))
    return table


def instance_table(estate: Estate, before: Snapshot, after: Snapshot,
                   reports: list[dict]) -> Table:
    entries = final_entries(reports, "instances", "id")
    table = Table(title="Standalone instances", title_justify="left", expand=False)
    for column in ("instance", "name", "scope", "AMI", "data volumes",
                   "action", "reason / detail"):
        table.add_column(column, overflow="fold", no_wrap=column not in WRAPPED)
    for instance in estate.instances:
        holder, _ = holder_of(instance, after)
        now = after.instances.get(holder) if holder else None
        identity = instance.id if holder in (None, instance.id) else f"{instance.id}\n→ {holder}"
        ami = f"{_ami(estate, instance.image_id)} → {_ami(estate, now.image_id if now else None)}"
        volumes = "\n".join(f"{v.device.removeprefix('/dev/')}: {v.id}"
                            for v in instance.volumes)
        if holder is None:
            volumes += "\n[red](not all attached)[/red]"
        entry = entries.get(instance.id)
        missing = "" if entry else _unreported(instance.role,
                                               before.instances[instance.id].tags)
        table.add_row(identity, instance.name, instance.role, ami, volumes, _action(entry),
                      _detail(entry, missing))
    return table


def verdict_lines(verdict: Verdict, fault: str | None, dry_run: bool) -> list[str]:
    groups = verdict.count("group", "converged")
    replaced = sum(c.kind == "instance" and c.ok and (c.outcome.startswith("replaced")
                                                       or c.outcome == "root volume replaced")
                   for c in verdict.checks)
    rolled_back = verdict.count("instance", "rolled back")
    untouched = verdict.count("group", "untouched") + verdict.count("instance", "untouched")
    if not verdict.ok:
        lines = ["[bold red]✘ not converged[/bold red]:"]
        lines += [f"  - {problem}" for problem in verdict.problems()]
        return lines
    if dry_run:
        return [f"[bold green]✔ dry run: nothing changed[/bold green]; the plan lists every "
                f"resource in scope; {untouched} resources untouched"]
    text = (f"{groups} groups refreshed, {replaced} standalone instances on the new AMI with "
            f"their volumes, {untouched} resources untouched")
    if fault:
        how = (f"{rolled_back} replacement(s) rolled back (old instance running with its "
               "volumes)" if rolled_back else "recovered and converged")
        return [f"[bold green]✔ fault {fault}: the system behaved correctly[/bold green]: "
                f"{how}; {text}"]
    return [f"[bold green]✔ converged[/bold green]: {text}"]
