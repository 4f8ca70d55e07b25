"""Did the run do its job? The estate before and after, read through boto3, and the verdict.

The verdict is about the estate, not about what the function reported: every
resource in scope runs the new AMI with its data volumes (the same volume IDs
at the same devices), everything else is untouched (same instance IDs, same
AMI, no new launch-template version, no instance refresh), nothing is lost and
no stray instance is left running. Under an injected failure a standalone
instance may instead be rolled back (the old instance running again, on the
old AMI, with its volumes); in a dry run nothing may change at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError

from handler.tags import EXCLUDE, PARAMETER, STRATEGY, tag_map

from .fleet import IN_SCOPE, Estate, Group, Standalone

# What a run is expected to achieve.
CONVERGE = "converge"           # every resource in scope on the new AMI
ROLLBACK = "rollback"           # standalone replacements may roll back (an injected failure)
UNCHANGED = "unchanged"         # dry run: nothing changes, the plan lists the scope

# Which of a resource's report entries tells most about it (later invocations win ties).
ACTION_PRIORITY = ("replaced", "refresh_started", "failed", "in_progress", "planned", "skipped")
TERMINAL_REFRESH = ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")
# The tags a user set that a replacement must carry over, or the next run loses the instance.
USER_TAGS = ("Name", PARAMETER, EXCLUDE, STRATEGY)


@dataclass(frozen=True)
class InstanceState:
    id: str
    state: str
    image_id: str
    instance_type: str
    tags: Mapping[str, str]
    devices: Mapping[str, str]          # device name -> volume ID (root included)
    root_device: str
    group: str | None

    @property
    def root_volume(self) -> str | None:
        return self.devices.get(self.root_device)


@dataclass(frozen=True)
class Refresh:
    id: str
    status: str
    percentage: int


@dataclass(frozen=True)
class GroupState:
    name: str
    instance_ids: tuple[str, ...]
    desired: int
    template_id: str
    template_version: str               # as the group refers to it
    template_image: str | None          # the ImageId that reference resolves to
    latest_version: int
    default_version: int
    refreshes: tuple[Refresh, ...]      # newest first


@dataclass(frozen=True)
class VolumeState:
    id: str
    state: str
    attachments: tuple[tuple[str, str], ...]   # (instance ID, device)


@dataclass(frozen=True)
class Snapshot:
    instances: Mapping[str, InstanceState]
    groups: Mapping[str, GroupState]
    volumes: Mapping[str, VolumeState]


def read_refreshes(autoscaling, group: str) -> tuple[Refresh, ...]:
    """The group's instance refreshes, newest first (empty if the call is unavailable)."""
    refreshes: list[Refresh] = []
    request = {"AutoScalingGroupName": group}
    try:
        while True:   # not pageable in botocore: follow NextToken by hand
            page = autoscaling.describe_instance_refreshes(**request)
            refreshes += [Refresh(r["InstanceRefreshId"], r["Status"],
                                  int(r.get("PercentageComplete") or 0))
                          for r in page["InstanceRefreshes"]]
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    except (ClientError, NotImplementedError):
        return ()
    return tuple(refreshes)


def _template_image(ec2, template_id: str, version: str) -> str | None:
    try:
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id, Versions=[version])["LaunchTemplateVersions"]
    except ClientError:
        return None
    return versions[0]["LaunchTemplateData"].get("ImageId") if versions else None


def take_snapshot(region: str) -> Snapshot:
    """Every instance, group and volume of the account, as boto3 sees them."""
    ec2 = boto3.client("ec2", region_name=region)
    autoscaling = boto3.client("autoscaling", region_name=region)
    instances = {}
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for data in reservation["Instances"]:
                tags = tag_map(data.get("Tags"))
                instances[data["InstanceId"]] = InstanceState(
                    id=data["InstanceId"], state=data["State"]["Name"],
                    image_id=data.get("ImageId", ""), instance_type=data.get("InstanceType", ""),
                    tags=tags,
                    devices={m["DeviceName"]: m["Ebs"]["VolumeId"]
                             for m in data.get("BlockDeviceMappings", []) if "Ebs" in m},
                    root_device=data.get("RootDeviceName", ""),
                    group=tags.get("aws:autoscaling:groupName"))
    templates = {}
    for page in ec2.get_paginator("describe_launch_templates").paginate():
        for data in page["LaunchTemplates"]:
            templates[data["LaunchTemplateId"]] = (int(data["LatestVersionNumber"]),
                                                   int(data["DefaultVersionNumber"]))
    groups = {}
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for data in page["AutoScalingGroups"]:
            spec = data.get("LaunchTemplate") or {}
            template_id = spec.get("LaunchTemplateId", "")
            version = str(spec.get("Version", "$Default"))
            latest, default = templates.get(template_id, (0, 0))
            groups[data["AutoScalingGroupName"]] = GroupState(
                name=data["AutoScalingGroupName"],
                instance_ids=tuple(sorted(i["InstanceId"] for i in data.get("Instances", []))),
                desired=int(data["DesiredCapacity"]), template_id=template_id,
                template_version=version,
                template_image=_template_image(ec2, template_id, version) if template_id else None,
                latest_version=latest, default_version=default,
                refreshes=read_refreshes(autoscaling, data["AutoScalingGroupName"]))
    volumes = {}
    for page in ec2.get_paginator("describe_volumes").paginate():
        for data in page["Volumes"]:
            volumes[data["VolumeId"]] = VolumeState(
                data["VolumeId"], data["State"],
                tuple((a["InstanceId"], a["Device"]) for a in data.get("Attachments", [])
                      if a.get("State", "attached") in ("attached", "attaching")))
    return Snapshot(instances, groups, volumes)


def _rank(action: str) -> int:
    return ACTION_PRIORITY.index(action) if action in ACTION_PRIORITY else len(ACTION_PRIORITY)


def final_entries(reports: Iterable[dict], section: str, key: str) -> dict[str, dict]:
    """The most telling entry per resource over every invocation's report (later wins ties)."""
    best: dict[str, dict] = {}
    for report in reports:
        for entry in report.get(section, []):
            known = best.get(entry.get(key))
            if known is None or _rank(entry["action"]) <= _rank(known["action"]):
                best[entry.get(key)] = entry
    return best


# ---------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Check:
    """One resource's outcome: what was expected, what was found."""

    kind: str                  # "group" | "instance" | "estate"
    resource: str
    outcome: str               # converged | rolled back | untouched | planned | ...
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Verdict:
    expectation: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def problems(self) -> list[str]:
        return [f"{c.kind} {c.resource}: {p}" for c in self.checks for p in c.problems]

    def count(self, kind: str, outcome: str) -> int:
        return sum(c.kind == kind and c.outcome == outcome and c.ok for c in self.checks)


def _group_converged(group: Group, before: GroupState, after: GroupState | None,
                     new_image: str, parameter: str, snapshot: Snapshot) -> Check:
    problems: list[str] = []
    if after is None:
        return Check("group", group.name, "missing", ("the group no longer exists",))
    latest = after.refreshes[0] if after.refreshes else None
    if latest is None:
        problems.append("no instance refresh was started")
    elif latest.status != "Successful":
        problems.append(f"instance refresh {latest.id} is {latest.status} "
                        f"({latest.percentage}%)")
    members = [snapshot.instances.get(i) for i in after.instance_ids]
    stale = sorted(m.id for m in members if m is None or m.image_id != new_image)
    if stale:
        problems.append(f"instance(s) not on the new AMI: {', '.join(stale)}")
    running = [m for m in members if m is not None and m.state == "running"]
    if len(running) != after.desired:
        problems.append(f"{len(running)} running instance(s), desired capacity {after.desired}")
    if after.template_image not in (new_image, f"resolve:ssm:{parameter}"):
        problems.append(f"launch template {after.template_id} version {after.template_version} "
                        f"resolves to {after.template_image}, not the new AMI")
    kept = sorted(set(before.instance_ids) & set(after.instance_ids))
    if kept and not stale:
        problems.append(f"old instance(s) still in the group: {', '.join(kept)}")
    return Check("group", group.name, "converged", tuple(problems))


def _group_untouched(group: Group, before: GroupState, after: GroupState | None,
                     snapshot_before: Snapshot, snapshot: Snapshot) -> Check:
    if after is None:
        return Check("group", group.name, "missing", ("the group no longer exists",))
    problems = []
    if after.instance_ids != before.instance_ids:
        problems.append(f"instances changed: {', '.join(before.instance_ids)} -> "
                        f"{', '.join(after.instance_ids)}")
    for instance_id in after.instance_ids:
        was, now = snapshot_before.instances.get(instance_id), snapshot.instances.get(instance_id)
        if was and now and was.image_id != now.image_id:
            problems.append(f"{instance_id} moved from {was.image_id} to {now.image_id}")
    if (after.latest_version, after.default_version) != (before.latest_version,
                                                          before.default_version):
        problems.append(f"launch template changed: latest/default version "
                        f"{before.latest_version}/{before.default_version} -> "
                        f"{after.latest_version}/{after.default_version}")
    if after.template_version != before.template_version:
        problems.append(f"the group now uses template version {after.template_version}")
    if after.refreshes:
        problems.append(f"instance refresh {after.refreshes[0].id} was started "
                        f"({after.refreshes[0].status})")
    return Check("group", group.name, "untouched", tuple(problems))


def holder_of(instance: Standalone, snapshot: Snapshot) -> tuple[str | None, list[str]]:
    """The instance that holds ``instance``'s data volumes now, and what is wrong with them."""
    problems = []
    holders = set()
    for volume in instance.volumes:
        state = snapshot.volumes.get(volume.id)
        if state is None:
            problems.append(f"data volume {volume.id} is gone")
            continue
        if not state.attachments:
            problems.append(f"data volume {volume.id} ({volume.device}) is not attached")
            continue
        holder, device = state.attachments[0]
        holders.add(holder)
        if device != volume.device:
            problems.append(f"data volume {volume.id} is at {device}, was {volume.device}")
    if len(holders) > 1:
        problems.append(f"data volumes are split across {', '.join(sorted(holders))}")
    return (holders.pop() if len(holders) == 1 else None), problems


def _user_tags_kept(instance: Standalone, before: InstanceState, now: InstanceState) -> list[str]:
    lost = [key for key in USER_TAGS
            if key in before.tags and now.tags.get(key) != before.tags[key]]
    return [f"{now.id} lost tag(s) {', '.join(lost)}"] if lost else []


def _instance_outcome(instance: Standalone, before: Snapshot, after: Snapshot,
                      new_image: str, keep_old: bool, allow_rollback: bool,
                      entry: dict | None) -> Check:
    old_before = before.instances[instance.id]
    holder, problems = holder_of(instance, after)
    label = f"{instance.id} ({instance.name})"
    if holder is None:
        return Check("instance", label, "lost", tuple(problems or ["no volume holder"]))
    now = after.instances[holder]
    if holder == instance.id and now.image_id == instance.image_id:
        if not allow_rollback:
            problems.append(f"not replaced: still on {now.image_id} ({now.state})")
            return Check("instance", label, "not replaced", tuple(problems))
        if now.state != "running":
            problems.append(f"rolled back, but {holder} is {now.state}, not running")
        # failed: refused; in_progress: rolled back after transient errors, tried again
        if entry is None or entry["action"] not in ("failed", "in_progress"):
            problems.append("not replaced, and the function reported neither a failure nor "
                            f"a retry (reported: {entry['action'] if entry else 'nothing'})")
        return Check("instance", label, "rolled back", tuple(problems))
    if now.state != "running":
        problems.append(f"{holder} holds the volumes but is {now.state}")
    if now.image_id != new_image:
        problems.append(f"{holder} runs {now.image_id}, not the new AMI")
    if now.instance_type != instance.instance_type:
        problems.append(f"{holder} is {now.instance_type}, was {instance.instance_type}")
    problems += _user_tags_kept(instance, old_before, now)
    if holder == instance.id:
        if now.root_volume and now.root_volume == old_before.root_volume:
            problems.append(f"root volume {now.root_volume} was not replaced")
        outcome = "root volume replaced"
    else:
        old_now = after.instances.get(instance.id)
        expected = ("stopped",) if keep_old else ("terminated", "shutting-down")
        if old_now is not None and old_now.state not in expected:
            problems.append(f"old instance {instance.id} is {old_now.state}, expected "
                            f"{' or '.join(expected)}")
        outcome = f"replaced by {holder}"
    return Check("instance", label, outcome, tuple(problems))


def _instance_untouched(instance: Standalone, before: Snapshot, after: Snapshot) -> Check:
    was, now = before.instances[instance.id], after.instances.get(instance.id)
    label = f"{instance.id} ({instance.name})"
    if now is None:
        return Check("instance", label, "missing", ("the instance is gone",))
    problems = []
    if now.state != was.state:
        problems.append(f"state {was.state} -> {now.state}")
    if now.image_id != was.image_id:
        problems.append(f"AMI {was.image_id} -> {now.image_id}")
    if dict(now.devices) != dict(was.devices):
        problems.append(f"block devices changed: {dict(was.devices)} -> {dict(now.devices)}")
    return Check("instance", label, "untouched", tuple(problems))


def _stray_instances(estate: Estate, before: Snapshot, after: Snapshot) -> Check:
    """Instances the run launched that neither a group nor the estate's volumes account for."""
    holders = {holder_of(i, after)[0] for i in estate.instances}
    stray = sorted(i.id for i in after.instances.values()
                   if i.id not in before.instances and i.group is None
                   and i.state not in ("terminated", "shutting-down") and i.id not in holders)
    problems = (f"instance(s) launched and left {', '.join(stray)}",) if stray else ()
    return Check("estate", "stray instances", "none" if not stray else "found", problems)


def _planned(estate: Estate, reports: Iterable[dict]) -> Check:
    planned_groups: set[str] = set()
    planned_instances: set[str] = set()
    for report in reports:
        planned_groups |= {a["name"] for a in report.get("asgs", []) if a["action"] == "planned"}
        planned_instances |= {i["id"] for i in report.get("instances", [])
                              if i["action"] == "planned"}
    problems = []
    scope_groups = {g.name for g in estate.groups_in(IN_SCOPE)}
    scope_instances = {i.id for i in estate.instances_in(IN_SCOPE)}
    if planned_groups != scope_groups:
        problems.append(f"planned groups {sorted(planned_groups)}, in scope "
                        f"{sorted(scope_groups)}")
    if planned_instances != scope_instances:
        problems.append(f"planned instances {sorted(planned_instances)}, in scope "
                        f"{sorted(scope_instances)}")
    return Check("estate", "plan", "lists the scope", tuple(problems))


def _skip_reasons(reports: Iterable[dict]) -> Check:
    missing = sorted({entry.get("name") or entry.get("id")
                      for report in reports
                      for entry in (*report.get("asgs", []), *report.get("instances", []))
                      if entry["action"] == "skipped" and not entry.get("reason")})
    problems = (f"skipped without a reason: {', '.join(missing)}",) if missing else ()
    return Check("estate", "skip reasons", "given", problems)


def verify(estate: Estate, before: Snapshot, after: Snapshot, reports: list[dict],
           expectation: str) -> Verdict:
    """Compare the estate with what ``expectation`` demands; every deviation is a problem."""
    keep_old = bool(estate.stack.standalone_configuration.get("keep_old_instance"))
    entries = final_entries(reports, "instances", "id")
    checks = []
    for group in estate.groups:
        was, now = before.groups[group.name], after.groups.get(group.name)
        if group.role == IN_SCOPE and expectation != UNCHANGED:
            checks.append(_group_converged(group, was, now, estate.new_image,
                                           estate.stack.parameter_name, after))
        else:
            checks.append(_group_untouched(group, was, now, before, after))
    for instance in estate.instances:
        if instance.role == IN_SCOPE and expectation != UNCHANGED:
            checks.append(_instance_outcome(instance, before, after, estate.new_image, keep_old,
                                            expectation == ROLLBACK, entries.get(instance.id)))
        else:
            checks.append(_instance_untouched(instance, before, after))
    checks.append(_stray_instances(estate, before, after))
    checks.append(_skip_reasons(reports))
    if expectation == UNCHANGED:
        checks.append(_planned(estate, reports))
    if expectation == ROLLBACK and not any(c.outcome == "rolled back" for c in checks):
        checks.append(Check("estate", "rollback", "not seen",
                            ("no standalone replacement was rolled back: the fault had no "
                             "effect",)))
    return Verdict(expectation, tuple(checks))

