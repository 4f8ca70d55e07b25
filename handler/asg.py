"""Auto Scaling groups: plan instance refreshes onto the new AMI, then start them.

Plan (reads only): discover the groups in scope (paginated; in tagged scope the
scope tag is filtered server-side), read the launch-template version each group
uses, the images of that version and of its instances, and its latest refresh;
decide per group: skip, with the reason, or refresh toward a numbered template
version with the group's preferences. Apply: write that version (the one in use
with only ImageId changed; a deterministic ClientToken makes a repeat return the
same version), start the refresh, and treat a refresh already running on the group
per its ``OnRefreshInProgress`` policy.

Tags written on a group when its refresh starts: ``ami-upgrade:refresh-id`` and
``ami-upgrade:refresh-ami`` (see ``tags.py``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from .ami import Image, describe_images, incompatibility
from .launch_template import (
    DEFAULT,
    LATEST,
    VIA_MIXED_INSTANCES_POLICY,
    TemplateError,
    TemplateRef,
    TemplateVersion,
    TemplateVersions,
    create_version,
    desired_configuration,
    group_template,
    read_versions,
)
from .log import log_event
from .refreshes import (
    IN_PROGRESS_ERROR,
    NOT_ACTIVE_ERROR,
    Refresh,
    describe_error,
    error_code,
    latest_refresh,
)
from .report import ACTION_FAILED, PLANNED, REFRESH_STARTED, SKIPPED, AsgEntry
from .scope import skip_reason
from .tags import PARAMETER, REFRESH_AMI, REFRESH_ID, tag_map

POLL_SECONDS = 30.0            # between checks of a refresh the engine waits for
START_BUDGET_SECONDS = 30.0    # time writing a version and starting a refresh may take
CANCEL, WAIT, SKIP = "cancel-and-restart", "wait", "skip"
GONE_STATES = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Blocker:
    """A refresh already active on the group, heading somewhere other than the new AMI."""

    refresh_id: str
    status: str
    heading_to: str | None              # the AMI it launches; None when it does not say
    source: TemplateVersion | None      # its desired version: the base when restarting it

    def describe(self) -> str:
        return (f"instance refresh {self.refresh_id} ({self.status}) toward "
                f"{self.heading_to or 'an image its template does not name'}")


@dataclass(frozen=True)
class AsgPlan:
    """What the engine does with one group: skip it (``reason``) or refresh it."""

    name: str
    action: str                          # PLANNED, SKIPPED or ACTION_FAILED
    reason: str = ""
    template_id: str = ""
    template_name: str = ""
    via: str = ""
    source: TemplateVersion | None = None   # the version the refresh's version comes from
    version: int | None = None           # the existing version the refresh names, or None
    predicted_version: int | None = None  # the number a version written now would get
    mixed_policy_json: str | None = None
    preferences_json: str = "{}"
    strategy: str = "Rolling"
    policy: str = CANCEL
    blocker: Blocker | None = None
    blocker_ended: bool = False          # cancelled or finished: the refresh may start
    notes: tuple[str, ...] = ()

    @property
    def creates_version(self) -> bool:
        return self.action == PLANNED and self.version is None

    @property
    def preferences(self) -> dict[str, Any]:
        return json.loads(self.preferences_json)

    def desired_configuration(self, version: int | None) -> dict[str, Any]:
        policy = json.loads(self.mixed_policy_json) if self.mixed_policy_json else None
        return desired_configuration(self.via, self.template_id, version or 0, policy)

    def details(self, version: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "launch_template": {"id": self.template_id, "name": self.template_name},
            "source_version": str(self.source.number) if self.source else None,
            "creates_version": self.creates_version,
            "desired_configuration": self.desired_configuration(version),
            "preferences": self.preferences,
            "strategy": self.strategy,
        }
        if self.blocker:
            out["active_refresh"] = {"id": self.blocker.refresh_id,
                                     "status": self.blocker.status,
                                     "heading_to": self.blocker.heading_to}
            out["on_refresh_in_progress"] = self.policy
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def entry(self) -> AsgEntry:
        """The report entry for a dry run: the full plan, nothing done."""
        if self.action != PLANNED:
            return AsgEntry(self.name, self.action, self.reason)
        number = self.version if self.version is not None else self.predicted_version
        return AsgEntry(self.name, PLANNED, self.reason,
                        launch_template_version=str(number) if number else None,
                        details=self.details(number))


def _skip(name: str, reason: str) -> AsgPlan:
    return AsgPlan(name, SKIPPED, reason)


def _failed(name: str, reason: str) -> AsgPlan:
    return AsgPlan(name, ACTION_FAILED, reason)


# ------------------------------------------------------------------------- discovery


def _discover(ctx, names: Sequence[str] | None) -> list[dict]:
    kwargs: dict[str, Any] = {}
    if names:
        kwargs["AutoScalingGroupNames"] = list(names)
    elif ctx.settings.scope == "tagged":
        kwargs["Filters"] = [{"Name": f"tag:{PARAMETER}",
                              "Values": [ctx.settings.parameter_name]}]
    groups: list[dict] = []
    paginator = ctx.clients.autoscaling.get_paginator("describe_auto_scaling_groups")
    for page in paginator.paginate(**kwargs):
        groups += page.get("AutoScalingGroups", [])
    return sorted(groups, key=lambda g: g["AutoScalingGroupName"])


def _members(group: Mapping[str, Any]) -> list[str]:
    return [i["InstanceId"] for i in group.get("Instances", [])
            if i.get("LifecycleState") not in GONE_STATES]


def _instance_images(ec2, instance_ids: Iterable[str]) -> dict[str, str]:
    """ImageId by instance, for instances that are not terminated (batched, paginated)."""
    ids = sorted(set(instance_ids))
    images: dict[str, str] = {}
    paginator = ec2.get_paginator("describe_instances")
    for start in range(0, len(ids), 200):
        pages = paginator.paginate(Filters=[{"Name": "instance-id",
                                             "Values": ids[start:start + 200]}])
        for page in pages:
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    if instance.get("State", {}).get("Name") not in ("terminated",
                                                                     "shutting-down"):
                        images[instance["InstanceId"]] = instance.get("ImageId", "")
    return images


@dataclass
class _Estate:
    """What planning read, shared by the groups (one template read serves them all)."""

    versions: dict[str, TemplateVersions | TemplateError] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    instance_images: dict[str, str] = field(default_factory=dict)
    next_version: dict[str, int] = field(default_factory=dict)
    predicted: dict[tuple[str, int], int] = field(default_factory=dict)
    template_tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def version(self, ref: TemplateRef, label: str | None = None) -> TemplateVersion:
        found = self.versions.get(ref.key)
        if isinstance(found, TemplateError):
            raise found
        version = found.get(label or ref.version) if found else None
        if version is None:
            raise TemplateError(f"launch template {ref.label} has no version "
                                f"{label or ref.version}")
        return version

    def latest(self, ref: TemplateRef) -> TemplateVersion:
        return self.version(ref, LATEST)

    def predict(self, source: TemplateVersion) -> int:
        """The number the version made from ``source`` would get (one per source)."""
        key = (source.template_id, source.number)
        if key not in self.predicted:
            latest = self.next_version.get(source.template_id, 0)
            self.next_version[source.template_id] = latest + 1
            self.predicted[key] = latest + 1
        return self.predicted[key]


def _read(ctx, groups: list[tuple[dict, TemplateRef]],
          refreshes: Mapping[str, Refresh | None]) -> _Estate:
    estate = _Estate()
    wanted: dict[str, tuple[TemplateRef, set[str]]] = {}
    for group, ref in groups:
        wanted.setdefault(ref.key, (ref, set()))[1].add(ref.version)
        refresh = refreshes.get(group["AutoScalingGroupName"])
        if refresh and refresh.active and refresh.template:
            wanted.setdefault(refresh.template.key, (refresh.template, set()))[1].add(
                refresh.template.version)
    for key, (ref, labels) in wanted.items():
        try:
            read = read_versions(ctx.clients.ec2, ref, labels)
        except TemplateError as exc:
            estate.versions[key] = exc
            continue
        estate.versions[key] = read
        estate.next_version[read.template_id] = read.latest.number
    if ctx.settings.scope == "tagged":
        estate.template_tags = _template_tags(
            ctx.clients.ec2, [v.template_id for v in _in_use(estate, groups)])
    concrete = {v.image_id for v in _in_use(estate, groups) if v.alias is None and v.image_id}
    estate.images = describe_images(ctx.clients.ec2, concrete - {ctx.image.id})
    estate.images[ctx.image.id] = ctx.image
    estate.instance_images = _instance_images(
        ctx.clients.ec2, [i for group, _ in groups for i in _members(group)])
    return estate


def _template_tags(ec2, template_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """Tags by launch template (batched, paginated): tagged scope needs the scope tag there."""
    ids = sorted(set(template_ids))
    tags: dict[str, dict[str, str]] = {}
    paginator = ec2.get_paginator("describe_launch_templates")
    for start in range(0, len(ids), 200):
        for page in paginator.paginate(LaunchTemplateIds=ids[start:start + 200]):
            for template in page.get("LaunchTemplates", []):
                tags[template["LaunchTemplateId"]] = tag_map(template.get("Tags"))
    return tags


def _in_use(estate: _Estate, groups: list[tuple[dict, TemplateRef]]) -> list[TemplateVersion]:
    found = []
    for _, ref in groups:
        with contextlib.suppress(TemplateError):   # reported per group by _decide
            found.append(estate.version(ref))
    return found


# -------------------------------------------------------------------------- decisions


def plan_asgs(ctx, names: Sequence[str] | None = None) -> tuple[AsgPlan, ...]:
    """One frozen plan per group discovered (all in scope, or just ``names``)."""
    plans: dict[str, AsgPlan] = {}
    candidates: list[tuple[dict, TemplateRef]] = []
    for group in _discover(ctx, names):
        name = group["AutoScalingGroupName"]
        reason = skip_reason(ctx.settings, ctx.exclusions, "asg", name,
                             tag_map(group.get("Tags")))
        ref, _, unsupported = group_template(group)
        if group.get("Status"):              # "Delete in progress"
            reason = reason or f"the group's status is {group['Status']!r}"
        if reason or unsupported or ref is None:
            plans[name] = _skip(name, reason or f"the group {unsupported}")
        else:
            candidates.append((group, ref))
    refreshes = {g["AutoScalingGroupName"]: latest_refresh(ctx.clients.autoscaling,
                                                           g["AutoScalingGroupName"])
                 for g, _ in candidates}
    estate = _read(ctx, candidates, refreshes) if candidates else _Estate()
    for group, ref in candidates:
        name = group["AutoScalingGroupName"]
        try:
            plans[name] = _decide(ctx, estate, group, ref, refreshes[name])
        except TemplateError as exc:
            plans[name] = _failed(name, str(exc))
    for name in sorted(plans):
        plan = plans[name]
        log_event("asg_planned" if plan.action == PLANNED else f"asg_{plan.action}",
                  group=name, reason=plan.reason, source_version=plan.source and
                  plan.source.number, version=plan.version or plan.predicted_version,
                  blocker=plan.blocker and plan.blocker.refresh_id)
    return tuple(plans[name] for name in sorted(plans))


def _compatibility(ctx, estate: _Estate, group: dict, in_use: TemplateVersion) -> str | None:
    """Why the group cannot move to the new AMI (architecture, platform), or None."""
    new = ctx.image
    if in_use.alias is None:
        if in_use.image_id == new.id:
            return None
        return incompatibility(estate.images.get(in_use.image_id), in_use.image_id, new)
    # The template resolves the parameter: what it launched is on its instances.
    running = {estate.instance_images.get(i) for i in _members(group)} - {None, "", new.id}
    for image_id in sorted(i for i in running if i):
        image = estate.images.get(image_id)
        if image is not None and (reason := incompatibility(image, image_id, new)):
            return reason
    return None


def _heading_to(ctx, estate: _Estate, group: dict, ref: TemplateRef,
                refresh: Refresh) -> tuple[str | None, TemplateVersion | None]:
    """(the AMI an active refresh launches, its desired template version)."""
    try:
        version = estate.version(refresh.template or ref)
    except TemplateError:
        return None, None
    source = version if refresh.template else None
    if version.alias is None:
        return version.image_id, source
    tags = tag_map(group.get("Tags"))
    if version.alias.follows(ctx.settings.parameter_name) and tags.get(REFRESH_ID) == refresh.id:
        return tags.get(REFRESH_AMI) or None, source
    return None, source


def _decide(ctx, estate: _Estate, group: dict, ref: TemplateRef,
            refresh: Refresh | None) -> AsgPlan:
    name = group["AutoScalingGroupName"]
    new = ctx.image.id
    parameter = ctx.settings.parameter_name
    settings = ctx.settings.asg_configurations.for_group(name)
    in_use = estate.version(ref)
    where = f"launch template {in_use.template_name or in_use.template_id} version " \
            f"{in_use.number}"
    if ref.version != str(in_use.number):
        where += f" ({ref.version})"
    if (ctx.settings.scope == "tagged"
            and estate.template_tags.get(in_use.template_id, {}).get(PARAMETER) != parameter):
        return _skip(name, f"launch template {in_use.template_name or in_use.template_id} is not "
                           f"tagged {PARAMETER}={parameter}: in tagged scope the function may "
                           "only write versions of, and refresh toward, templates that carry "
                           "the scope tag too (tag the template, as the README explains)")
    follows = in_use.alias is not None and in_use.alias.follows(parameter)
    if in_use.alias is not None and not follows:
        return _skip(name, f"{where} takes its ImageId from {in_use.image_id}, not from "
                           f"{parameter}; the engine does not replace another parameter's alias")
    if follows and ctx.parameter is None:
        return _skip(name, f"{where} resolves {parameter} itself, so an ami_id pinned by the "
                           "invocation cannot be applied to it")
    if reason := _compatibility(ctx, estate, group, in_use):
        return _skip(name, reason)

    blocker = None
    if refresh is not None and refresh.active:
        heading_to, source = _heading_to(ctx, estate, group, ref, refresh)
        if heading_to == new:
            return _skip(name, f"instance refresh {refresh.id} ({refresh.status}) is already "
                               f"in progress toward {new}")
        blocker = Blocker(refresh.id, refresh.status, heading_to, source)
        if settings.on_refresh_in_progress == SKIP:
            return _skip(name, f"{blocker.describe()} is in progress and OnRefreshInProgress "
                               "is skip")

    members = _members(group)
    instances_on_new = all(estate.instance_images.get(i) == new for i in members)
    if blocker is None and (follows or in_use.image_id == new) and instances_on_new:
        return _skip(name, f"already on {new}: {where} launches it and every instance "
                           f"({len(members)}) runs it")

    notes: list[str] = []
    source = in_use
    if (blocker and settings.on_refresh_in_progress == CANCEL and blocker.source
            and blocker.status != "RollbackInProgress"
            and blocker.source.template_id == in_use.template_id
            and (blocker.source.alias is None or blocker.source.alias.follows(parameter))):
        source = blocker.source
        notes.append(f"based on version {source.number}, the one the cancelled refresh was "
                     "heading to, so its other changes are kept")
    follows = source.alias is not None   # (a foreign alias was skipped or not chosen above)
    version: int | None = None
    predicted = None
    if follows:
        version = source.number
        summary = f"version {version} resolves {parameter}: refresh toward it"
    elif source.image_id == new:
        version = source.number
        summary = f"version {version} already launches {new}: refresh toward it"
    elif estate.latest(ref).data == source.with_image(new):
        version = estate.latest(ref).number
        summary = (f"version {version} is version {source.number} with ImageId {new} "
                   "(written earlier): refresh toward it")
    else:
        predicted = estate.predict(source)
        summary = (f"write version {predicted} (version {source.number} with ImageId {new}) "
                   "and refresh toward it")
    if blocker is not None:
        summary = (f"{'cancel' if settings.on_refresh_in_progress == CANCEL else 'wait for'} "
                   f"{blocker.describe()}, then {summary}")
    preferences = settings.preferences_dict()
    if follows:   # the version stays: AWS would neither roll back nor replace "matching" ones
        if preferences.pop("AutoRollback", None) is not None:
            notes.append("AutoRollback left out: AWS cannot roll back a template whose ImageId "
                         "is a resolve:ssm: parameter")
        if preferences.pop("SkipMatching", None) is not None:
            notes.append("SkipMatching left out: the instances already run this template "
                         "version, so AWS would skip every one of them")
    if (not follows and ref.version in (LATEST, DEFAULT)
            and preferences.pop("AutoRollback", None) is not None):
        notes.append(f"AutoRollback left out: the group uses its template's {ref.version} "
                     "version, which AWS cannot roll back to")
    _, via, _ = group_template(group)
    policy = group.get("MixedInstancesPolicy") if via == VIA_MIXED_INSTANCES_POLICY else None
    return AsgPlan(
        name=name, action=PLANNED, reason=summary, template_id=in_use.template_id,
        template_name=in_use.template_name, via=via, source=source, version=version,
        predicted_version=predicted,
        mixed_policy_json=json.dumps(policy, sort_keys=True) if policy else None,
        preferences_json=json.dumps(preferences, sort_keys=True),
        strategy=settings.strategy, policy=settings.on_refresh_in_progress, blocker=blocker,
        notes=tuple(notes))


# ----------------------------------------------------------------------------- apply


class _Raced(Exception):
    """StartInstanceRefresh met a refresh started since planning (InstanceRefreshInProgress)."""


@dataclass
class _Run:
    """Apply-time state of one invocation."""

    ctx: Any
    entries: dict[str, AsgEntry] = field(default_factory=dict)
    waiting: list[AsgPlan] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    written: dict[tuple[str, int], int] = field(default_factory=dict)   # groups sharing a
                                                                        # source share a version
    order: tuple[str, ...] = ()          # the groups in plan order, for the report

    def advance(self, plan: AsgPlan, may_replan: bool = True) -> None:
        """Start the plan's refresh, or hold it behind the refresh in its way."""
        if plan.blocker is not None and not plan.blocker_ended:
            self.hold(plan)
            return
        try:
            self.entries[plan.name] = _start(self.ctx, plan, self.written)
        except _Raced:
            if may_replan:
                self.replan(plan.name, may_replan=False)
            else:
                self.fail(plan.name, "StartInstanceRefresh failed: InstanceRefreshInProgress")
        except ClientError as exc:
            self.fail(plan.name, describe_error(getattr(exc, "operation_name", "call"), exc))

    def replan(self, name: str, may_replan: bool = True) -> None:
        """Decide again from what the group is now (a refresh ended or another started)."""
        fresh = plan_asgs(self.ctx, [name])
        if not fresh:
            self.entries[name] = AsgEntry(name, SKIPPED, "the group no longer exists")
        elif fresh[0].action != PLANNED:
            self.entries[name] = fresh[0].entry()
        else:
            self.advance(fresh[0], may_replan)

    def hold(self, plan: AsgPlan) -> None:
        """Cancel the refresh in the way (cancel-and-restart) and wait for it to end."""
        blocker = plan.blocker
        if plan.policy == CANCEL and blocker.status != "Cancelling":
            try:
                self.ctx.clients.autoscaling.cancel_instance_refresh(
                    AutoScalingGroupName=plan.name)
                log_event("asg_refresh_cancelled", group=plan.name, refresh=blocker.refresh_id,
                          heading_to=blocker.heading_to, ami=self.ctx.image.id)
            except ClientError as exc:
                if error_code(exc) != NOT_ACTIVE_ERROR:   # else it ended meanwhile: fine
                    self.fail(plan.name, describe_error("CancelInstanceRefresh", exc))
                    return
        self.waiting.append(plan)

    def fail(self, name: str, reason: str) -> None:
        log_event("asg_failed", group=name, reason=reason)
        self.entries[name] = AsgEntry(name, ACTION_FAILED, reason)

    def poll(self) -> None:
        """One look at the refreshes waited for; the groups they no longer block move on."""
        for plan in list(self.waiting):
            current = latest_refresh(self.ctx.clients.autoscaling, plan.name)
            if current is not None and current.active and \
                    current.id == plan.blocker.refresh_id:
                continue
            self.waiting.remove(plan)
            if plan.policy == CANCEL and not (current is not None and current.active):
                self.advance(replace(plan, blocker_ended=True))
            else:   # waited for it (the group may have moved on), or another one started
                self.replan(plan.name)

    def still_waiting(self) -> None:
        for plan in self.waiting:
            blocker = plan.blocker
            verb = "cancelled" if plan.policy == CANCEL else "waiting for"
            self.entries[plan.name] = AsgEntry(plan.name, SKIPPED, (
                f"{verb} {blocker.describe()}, which has not ended yet; the refresh toward "
                f"{self.ctx.image.id} starts in a follow-up invocation"), details={
                    "active_refresh": {"id": blocker.refresh_id, "status": blocker.status,
                                       "heading_to": blocker.heading_to},
                    "on_refresh_in_progress": plan.policy})
            log_event("asg_waiting", group=plan.name, refresh=blocker.refresh_id,
                      policy=plan.policy)


def start_asgs(ctx, plans: Sequence[AsgPlan]) -> _Run:
    """Start the planned refreshes; cancel (or note) the refreshes in their way.

    Quick by design: the waiting is left to ``finish_asgs``, so that the engine can
    replace standalone instances meanwhile instead of spending the invocation polling.
    """
    run = _Run(ctx)
    for plan in plans:
        if plan.action != PLANNED:
            run.entries[plan.name] = plan.entry()
        elif not ctx.deadline.has_time_for(START_BUDGET_SECONDS):
            run.deferred.append(plan.name)
            run.entries[plan.name] = AsgEntry(plan.name, SKIPPED, (
                "not started: too little time left in this invocation; continues in a "
                "follow-up invocation"))
        else:
            run.advance(plan)
    if run.waiting:
        run.poll()     # a cancelled refresh with nothing in flight has ended already
    run.order = tuple(p.name for p in plans)
    return run


def finish_asgs(run: _Run):
    """Wait, within the deadline, for the refreshes in the way; then report every group.

    What is still blocked then is left to a follow-up invocation (the engine sends
    it when ``continue_reason`` is set).
    """
    from .engine import Outcome

    ctx = run.ctx
    if run.waiting:
        run.poll()     # time has passed since start_asgs (standalone replacements)
    while run.waiting and ctx.deadline.has_time_for(POLL_SECONDS + START_BUDGET_SECONDS):
        ctx.clock.sleep(POLL_SECONDS)
        run.poll()
    run.still_waiting()
    reasons = []
    if run.waiting:
        reasons.append("instance refreshes in the way on " + ", ".join(p.name for p in run.waiting))
    if run.deferred:
        reasons.append("groups not started for lack of time: " + ", ".join(run.deferred))
    return Outcome(tuple(run.entries[name] for name in run.order),
                   "; ".join(reasons) if reasons else None)


def _start(ctx, plan: AsgPlan, written: dict[tuple[str, int], int]) -> AsgEntry:
    """Write the version (unless it exists), start the refresh, record it on the group."""
    ami = ctx.image.id
    version = plan.version
    if version is None:
        key = (plan.source.template_id, plan.source.number)
        if key not in written:
            written[key] = create_version(ctx.clients.ec2, plan.source, ami)
            log_event("asg_version_created", group=plan.name, template=plan.template_id,
                      version=written[key], source_version=plan.source.number, ami=ami)
        version = written[key]
    try:
        refresh_id = ctx.clients.autoscaling.start_instance_refresh(
            AutoScalingGroupName=plan.name, Strategy=plan.strategy,
            DesiredConfiguration=plan.desired_configuration(version),
            Preferences=plan.preferences)["InstanceRefreshId"]
    except ClientError as exc:
        if error_code(exc) == IN_PROGRESS_ERROR:
            raise _Raced() from None
        raise
    log_event("asg_refresh_started", group=plan.name, refresh=refresh_id, version=version,
              ami=ami, preferences=plan.preferences, strategy=plan.strategy)
    _record(ctx, plan.name, refresh_id, ami)
    return AsgEntry(plan.name, REFRESH_STARTED, (
        f"instance refresh toward launch template {plan.template_name or plan.template_id} "
        f"version {version} ({ami})"), refresh_id=refresh_id,
        launch_template_version=str(version), details=plan.details(version))


def _record(ctx, name: str, refresh_id: str, ami: str) -> None:
    """Tag the group with the refresh and its AMI (the record for resolve:ssm templates)."""
    try:
        ctx.clients.autoscaling.create_or_update_tags(Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": key,
             "Value": value, "PropagateAtLaunch": False}
            for key, value in ((REFRESH_ID, refresh_id), (REFRESH_AMI, ami))])
    except ClientError as exc:   # the refresh runs; only the record is missing
        log_event("asg_record_failed", group=name, refresh=refresh_id,
                  error=describe_error("CreateOrUpdateTags", exc))
