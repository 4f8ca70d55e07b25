"""Auto Scaling groups, the plan: which groups refresh toward which template version.

Plan (reads only): discover the groups in scope (paginated; in tagged scope the
scope tag is filtered server-side), read the launch-template version each group
uses, the image of that version (and its instances' images where a decision needs
them), and its latest refresh; decide per group: skip, with the reason, or refresh
toward a numbered template version with the group's preferences. Apply: write that
version (the one in use with only ImageId changed; a deterministic ClientToken makes a
repeat return the same version), start the refresh, and treat a refresh already
running on the group per its ``OnRefreshInProgress`` policy (``apply.py``).

Tags written on a group once its refresh started (``apply.py``, many groups a call):
``ami-upgrade:refresh-id`` and ``ami-upgrade:refresh-ami`` (see ``tags.py``).

Calls: groups, template versions, template tags, images and instances are read in
batches. A group's latest refresh (DescribeInstanceRefreshes takes one group) is read
only when the engine recorded a refresh toward this AMI on it, or when starting met a
refresh already running (InstanceRefreshInProgress); a continuation does not read the
groups it knows started. Reads stop at the deadline: what is not read is ``deferred``
to a continuation (``tests/handler/test_asg_calls.py`` pins the counts).

A group in scope that the engine cannot act on because of its configuration (template
without the scope tag, launch configuration, another parameter's alias, a template shared
with a group not moved that follows ``$Latest``) is FAILED with the reason and ``fix``: a
misconfiguration is never a success. A group whose refresh toward the AMI rolled back is
not refreshed toward it again (``ami-upgrade:failed-ami`` on the group). A read failing
for one group (its refreshes) fails that group only.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from ..ami import Image, describe_images, incompatibility
from ..aws import batches, describe, describe_instances, is_transient, tag_map
from ..log import log_event
from ..outcomes import Code
from ..passable import KEY as ROLES_KEY
from ..passable import profile_name, role_blocker, template_profile
from ..planning import error_text
from ..report import AsgEntry
from ..run import Action, RunContext
from ..scope import exclusion_reason, out_of_scope_reason, owner_reason, skip_reason
from ..settings import DEFAULT_KEY, InProgressPolicy, RefreshSettings, Scope
from ..tags import EXCLUDE, FAILED_AMI, FAILURE_REASON, PARAMETER, REFRESH_AMI, REFRESH_ID
from .launch_templates import (
    DEFAULT,
    LATEST,
    VIA_MIXED_INSTANCES_POLICY,
    TemplateError,
    TemplateRef,
    TemplateVersion,
    TemplateVersions,
    desired_configuration,
    group_template,
    read_current_versions,
    read_versions,
)
from .refreshes import Refresh, RefreshStatus, latest_refresh

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client


TEMPLATES_PER_REQUEST = 200   # DescribeLaunchTemplates: LaunchTemplateIds (as MaxResults)
GROUPS_PER_PAGE = 100   # DescribeAutoScalingGroups: MaxRecords at most (AWS's default: 50)
READ_BUDGET_SECONDS = 30.0   # time one read (with botocore's retries) may take
# A member in one of these lifecycle states is leaving the group: not counted.
GONE_STATES = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")
# An instance in one of these EC2 states is gone or going: its image is not read.
ENDED_INSTANCE_STATES = ("terminated", "shutting-down")


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Blocker:
    """A refresh already active on the group, heading somewhere other than the new AMI.

    ``cancellable``: the engine may cancel it (``may_cancel``); any other refresh is
    someone else's deployment, waited for whatever the policy, and named in the report.
    """

    refresh_id: str
    status: str
    heading_to: str | None              # the AMI it launches; None when it does not say
    source: TemplateVersion | None      # its desired version: the base when restarting it
    cancellable: bool = True
    target: str = ""                    # where it heads when not the group's own template

    def describe(self) -> str:
        where = f"{self.target}, " if self.target else ""
        return (f"instance refresh {self.refresh_id} ({self.status}) toward "
                f"{where}{self.heading_to or 'an image its template does not name'}")

    def summary(self) -> dict[str, Any]:
        """The report's ``active_refresh``: who blocks the group and where it heads."""
        out: dict[str, Any] = {"id": self.refresh_id, "status": self.status,
                               "heading_to": self.heading_to}
        if self.target:
            out["target"] = self.target
        if not self.cancellable:
            out["cancellable"] = False
        return out


def may_cancel(refresh: Refresh, group_tags: Mapping[str, str], in_use: TemplateVersion
               ) -> bool:
    """Whether the engine may cancel ``refresh`` on a group launching from ``in_use``.

    Only a refresh the engine recorded on the group (``ami-upgrade:refresh-id``, which
    only the function can write), or one heading to the group's own template (its
    ``DesiredConfiguration`` names that template, or nothing: the group's current
    configuration), whose other changes the restarted refresh keeps. A refresh toward
    another template is another deployment: cancelling it would undo it.
    """
    if group_tags.get(REFRESH_ID) == refresh.id:
        return True
    if refresh.template is None:
        return refresh.desired_json is None
    return same_template(refresh.template, in_use)


def same_template(ref: TemplateRef, version: TemplateVersion) -> bool:
    """Whether ``ref`` (by ID, or by name when it has no ID) names ``version``'s template."""
    if ref.template_id:
        return ref.template_id == version.template_id
    return ref.template_name is not None and ref.template_name == version.template_name


@dataclass(frozen=True)
class Preferences:
    """A refresh's ``Preferences`` as data: the group's settings, less what its version
    cannot take. Read-only; ``request`` gives a fresh copy for a call or the report."""

    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Preferences:
        return cls(MappingProxyType(copy.deepcopy(dict(values))))

    def without(self, key: str) -> tuple[Preferences, bool]:
        """These preferences less ``key``, and whether it was set."""
        if self.values.get(key) is None:
            return self, False
        return Preferences.of({k: v for k, v in self.values.items() if k != key}), True

    def request(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.values))


@dataclass(frozen=True)
class _Decision:
    """What the engine does with one group, why (``code``) and, for people, ``reason``."""

    name: str
    code: Code
    reason: str
    action: ClassVar[Action]

    def entry(self) -> AsgEntry:
        """The report entry when nothing more is done (a dry run, or no call to make)."""
        return AsgEntry(self.name, self.action, self.code, self.reason)


@dataclass(frozen=True)
class Skip(_Decision):
    """Nothing to do for the group: up to date, out of reach, or not the engine's."""

    action: ClassVar[Action] = Action.SKIPPED


@dataclass(frozen=True)
class RememberRollback(_Decision):
    """Skipped: its refresh toward this AMI rolled back; applying tags the group with the
    AMI (``failed-ami``) and ``note`` (``failure-reason``), so it is not retried."""

    note: str
    action: ClassVar[Action] = Action.SKIPPED


@dataclass(frozen=True)
class Fail(_Decision):
    """The group cannot be moved: by its configuration (``fix``: what the operator does;
    never a success) or by AWS's answer (``transient``: a later invocation may not meet it)."""

    fix: str = ""
    transient: bool = False
    action: ClassVar[Action] = Action.FAILED

    def entry(self) -> AsgEntry:
        return AsgEntry(self.name, self.action, self.code, self.reason,
                        details={"fix": self.fix} if self.fix else {})


@dataclass(frozen=True)
class Defer(_Decision):
    """Left for a continuation: this invocation has no time to read or start the group."""

    action: ClassVar[Action] = Action.DEFERRED


@dataclass(frozen=True)
class StartRefresh(_Decision):
    """Refresh the group toward a numbered version of its template (``version``, or the
    one written from ``source``), after the refresh in its way (``blocker``) if any."""

    template_id: str
    template_name: str
    via: str
    source: TemplateVersion              # the version the refresh's version comes from
    version: int | None                  # the existing version the refresh names, or None
    predicted_version: int | None        # the number a version written now would get
    mixed_policy: Mapping[str, Any] | None
    preferences: Preferences
    strategy: str
    policy: InProgressPolicy
    blocker: Blocker | None = None       # a refresh to cancel or wait for first
    cancelled: Blocker | None = None     # the refresh cancelled for this one, once ended
    notes: tuple[str, ...] = ()
    clear_failed_ami: bool = False       # the group carries a failed-ami tag for an older AMI
    action: ClassVar[Action] = Action.PLANNED

    @property
    def creates_version(self) -> bool:
        return self.version is None

    @property
    def in_the_way(self) -> Blocker:
        """The refresh a held plan waits for (only plans with one are held)."""
        if self.blocker is None:
            raise ValueError(f"the plan for {self.name} has no refresh in its way")
        return self.blocker

    def blocker_ended(self) -> StartRefresh:
        """This plan once the refresh in its way ended: it starts, noting what it cancelled."""
        return replace(self, blocker=None, cancelled=self.blocker)

    def desired_configuration(self, version: int | None) -> dict[str, Any]:
        return desired_configuration(self.via, self.template_id, version or 0, self.mixed_policy)

    def details(self, version: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "launch_template": {"id": self.template_id, "name": self.template_name},
            "source_version": str(self.source.number),
            "creates_version": self.creates_version,
            "desired_configuration": self.desired_configuration(version),
            "preferences": self.preferences.request(),
            "strategy": self.strategy,
        }
        blocker = self.blocker or self.cancelled
        if blocker:
            out["active_refresh"] = blocker.summary()
            out["on_refresh_in_progress"] = self.policy
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def entry(self) -> AsgEntry:
        """The report entry for a dry run: the full plan, nothing done."""
        number = self.version if self.version is not None else self.predicted_version
        return AsgEntry(self.name, Action.PLANNED, self.code, self.reason,
                        launch_template_version=str(number) if number else None,
                        details=self.details(number))


AsgPlan = Skip | RememberRollback | Fail | Defer | StartRefresh
"""One group's plan: what the engine does with it, as one of these types."""


def _misconfigured(name: str, code: Code, reason: str, fix: str) -> Fail:
    """In scope, but configured so that the engine cannot act: never a success."""
    return Fail(name, code, reason, fix=fix)


def _unsupported_fix(group: Mapping[str, Any]) -> str:
    if group.get("LaunchConfigurationName"):
        fix = "migrate the group to a launch template"
    elif group.get("MixedInstancesPolicy"):
        fix = "use one launch template in the mixed instances policy (overrides by type only)"
    else:
        fix = "give the group a launch template"
    return f"{fix}, or exclude the group ({EXCLUDE}=true or EXCLUDED_ASGS)"


# ------------------------------------------------------------------------- discovery


def _discover(ctx: RunContext, names: Sequence[str] | None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {}
    if names:
        kwargs["AutoScalingGroupNames"] = list(names)
    elif ctx.settings.scope == Scope.TAGGED:
        kwargs["filters"] = [{"Name": f"tag:{PARAMETER}",
                              "Values": [ctx.settings.parameter_name]}]
    groups = describe(ctx.clients.autoscaling, "describe_auto_scaling_groups",
                      "AutoScalingGroups", MaxRecords=GROUPS_PER_PAGE, **kwargs)
    return sorted(groups, key=lambda g: g["AutoScalingGroupName"])


def _members(group: Mapping[str, Any]) -> list[str]:
    return [i["InstanceId"] for i in group.get("Instances", [])
            if i.get("LifecycleState") not in GONE_STATES]


def _member_images(ec2: EC2Client, instance_ids: Iterable[str]) -> dict[str, Image]:
    """By instance (not terminated), its image as the instance describes it: the ID, and
    what checks need when the image itself no longer exists (``Image.known_from_instance``)."""
    return {i["InstanceId"]: Image.known_from_instance(i)
            for i in describe_instances(ec2, ids=instance_ids)
            if i.get("State", {}).get("Name") not in ENDED_INSTANCE_STATES}


def _instance_types(group: Mapping[str, Any], version: TemplateVersion) -> list[str]:
    """The instance types a group launches: its template's, and its mixed policy's."""
    overrides = ((group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
        "Overrides") or []
    found = [version.data.get("InstanceType"), *(o.get("InstanceType") for o in overrides)]
    return sorted({t for t in found if t})


def _type_architectures(ec2: EC2Client, types: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The architectures each instance type supports (one batched read)."""
    return {t["InstanceType"]: tuple(t.get("ProcessorInfo", {}).get("SupportedArchitectures", []))
            for t in describe(ec2, "describe_instance_types", "InstanceTypes", ids=types,
                              id_param="InstanceTypes")}


@dataclass
class _Estate:
    """What planning read, shared by the groups (one template read serves them all)."""

    versions: dict[str, TemplateVersions | TemplateError] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    instance_images: dict[str, str] = field(default_factory=dict)
    member_images: dict[str, Image] = field(default_factory=dict)   # as the instances say
    type_architectures: dict[str, tuple[str, ...]] = field(default_factory=dict)
    next_version: dict[str, int] = field(default_factory=dict)
    predicted: dict[tuple[str, int], int] = field(default_factory=dict)
    template_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    profile_roles: dict[str, str | None] = field(default_factory=dict)  # per profile: why not

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


def _read(ctx: RunContext, groups: list[tuple[dict[str, Any], TemplateRef]],
          refreshes: Mapping[str, Refresh | None]) -> _Estate:
    estate = _Estate()
    wanted: dict[str, tuple[TemplateRef, set[str]]] = {}
    for group, ref in groups:
        wanted.setdefault(ref.key, (ref, set()))[1].add(ref.version)
        refresh = refreshes.get(group["AutoScalingGroupName"])
        if refresh and refresh.active and refresh.template:
            wanted.setdefault(refresh.template.key, (refresh.template, set()))[1].add(
                refresh.template.version)
    # $Latest/$Default of every template in one paginated call; numbers need one call per
    # template (with its $Latest), as does a lone template (the same one call).
    current: dict[str, TemplateVersions] = {}
    shared = {key: labels for key, (_, labels) in wanted.items() if labels <= {LATEST, DEFAULT}}
    if len(shared) > 1:
        try:
            current = read_current_versions(ctx.clients.ec2, set().union(*shared.values()))
        except TemplateError as exc:   # each of those groups reports it
            estate.versions.update(dict.fromkeys(shared, exc))
    for key, (ref, labels) in wanted.items():
        if key in estate.versions:
            continue
        try:
            read = (current.get(key) if key in shared else None) or read_versions(
                ctx.clients.ec2, ref, labels)
        except TemplateError as exc:
            estate.versions[key] = exc
            continue
        estate.versions[key] = read
        estate.next_version[read.template_id] = read.latest.number
    if ctx.settings.scope == Scope.TAGGED:
        estate.template_tags = _template_tags(
            ctx.clients.ec2, [v.template_id for v in _in_use(estate, groups)])
    concrete = {v.image_id for v in _in_use(estate, groups) if v.alias is None and v.image_id}
    estate.images = describe_images(ctx.clients.ec2, concrete - {ctx.goal.id})
    estate.images[ctx.goal.id] = ctx.goal
    estate.member_images = _member_images(
        ctx.clients.ec2, [i for group in _reading_members(estate, groups, ctx.goal.id)
                          for i in _members(group)])
    estate.instance_images = {i: image.id for i, image in estate.member_images.items()}
    # A template whose image is gone, on a group with no instance: its instance types say
    # which architectures it can run (read only for such groups).
    types = {t for group, ref in groups for version in _in_use(estate, [(group, ref)])
             if version.alias is None and version.image_id not in estate.images
             and not any(i in estate.member_images for i in _members(group))
             for t in _instance_types(group, version)}
    if types:
        estate.type_architectures = _type_architectures(ctx.clients.ec2, types)
    return estate


def _reading_members(estate: _Estate, groups: list[tuple[dict[str, Any], TemplateRef]],
                     new: str) -> list[dict[str, Any]]:
    """The groups whose instances' images a decision reads: a template that resolves a
    parameter (what its instances launched is checked), names the new image (are its
    instances on it too?) or names an image that no longer exists (checked from the
    instances). A template naming another existing image is checked from that image."""
    return [group for group, ref in groups for version in _in_use(estate, [(group, ref)])
            if version.alias is not None or version.image_id == new
            or version.image_id not in estate.images]


def _template_tags(ec2: EC2Client, template_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """Tags by launch template: tagged scope needs the scope tag there."""
    return {t["LaunchTemplateId"]: tag_map(t.get("Tags"))
            for t in describe(ec2, "describe_launch_templates", "LaunchTemplates",
                              ids=template_ids, id_param="LaunchTemplateIds",
                              per_request=TEMPLATES_PER_REQUEST)}


def _in_use(estate: _Estate, groups: list[tuple[dict[str, Any], TemplateRef]]
            ) -> list[TemplateVersion]:
    found = []
    for _, ref in groups:
        with contextlib.suppress(TemplateError):   # reported per group by _decide
            found.append(estate.version(ref))
    return found


# ------------------------------------------------------------------ refreshes read


def _deferred(name: str) -> Defer:
    """Left for a continuation: this invocation has no time to read the group."""
    return Defer(name, Code.READ_DEFERRED, "not read: too little time left in this "
                                           "invocation; continues in a follow-up invocation")


def _recorded_started(ctx: RunContext, group: Mapping[str, Any]) -> Skip | None:
    """In a continuation, a group whose record says the engine started its refresh toward
    this AMI is done for this rollout: not read again (the next rollout's or follow-up's
    first invocation reads it, and remembers a rollback)."""
    tags = tag_map(group.get("Tags"))
    if ctx.attempt < 1 or not tags.get(REFRESH_ID) or tags.get(REFRESH_AMI) != ctx.goal.id:
        return None
    name = group["AutoScalingGroupName"]
    return Skip(name, Code.STARTED_EARLIER,
                f"instance refresh {tags[REFRESH_ID]} toward {ctx.goal.id} was started by an "
                "earlier invocation of this rollout (recorded on the group)")


def _needs_read(ctx: RunContext, group: Mapping[str, Any]) -> bool:
    """Whether planning reads the group's latest refresh before deciding.

    Read: a refresh the engine recorded toward this AMI (rolled back: not restarted;
    running: left alone), a dry run (it shows the refresh in the way), and a group whose
    OnRefreshInProgress is ``wait`` or ``skip`` (nothing may be written for it while a
    refresh runs). Any other refresh running is met by StartInstanceRefresh
    (InstanceRefreshInProgress), which then reads that group's (``busy``): with
    cancel-and-restart the group is written to in any case.
    """
    tags = tag_map(group.get("Tags"))
    if ctx.dry_run or (tags.get(REFRESH_ID) and tags.get(REFRESH_AMI) == ctx.goal.id):
        return True
    policy = ctx.settings.asg_configurations.for_group(group["AutoScalingGroupName"])
    return policy.on_refresh_in_progress != InProgressPolicy.CANCEL_AND_RESTART


def _read_budget(ctx: RunContext) -> float:
    """The time kept for one read: ``READ_BUDGET_SECONDS``, less in a short function
    (``Deadline.budget``)."""
    return ctx.deadline.budget(READ_BUDGET_SECONDS)


def _read_refreshes(ctx: RunContext, candidates: list[tuple[dict[str, Any], TemplateRef]],
                    plans: dict[str, AsgPlan], every: bool) -> dict[str, Refresh | None]:
    """The latest refresh of the candidates that need it (``every``: all of them), one
    call per group, while the deadline allows; a group whose read does not fit is
    deferred, one whose read fails is failed, and either leaves ``candidates``."""
    refreshes: dict[str, Refresh | None] = {}
    for group, ref in list(candidates):
        name = group["AutoScalingGroupName"]
        if not every and (done := _recorded_started(ctx, group)) is not None:
            plans[name] = done
        elif not every and not _needs_read(ctx, group):
            continue
        elif not ctx.deadline.has_time_for(2 * _read_budget(ctx)):   # and the batched
            plans[name] = _deferred(name)                             # reads after it
        else:
            try:
                refreshes[name] = latest_refresh(ctx.clients.autoscaling, name)
                continue
            except (ClientError, BotoCoreError) as exc:
                plans[name] = Fail(name, Code.READ_FAILED,
                                   error_text(exc, "DescribeInstanceRefreshes"),
                                   transient=is_transient(exc))
        candidates.remove((group, ref))
    return refreshes


# -------------------------------------------------------------------------- decisions


def plan_asgs(ctx: RunContext, names: Sequence[str] | None = None, busy: bool = False
              ) -> tuple[AsgPlan, ...]:
    """One frozen plan per group discovered (all in scope, or just ``names``).

    ``busy``: ``names`` met a refresh already running (InstanceRefreshInProgress), so
    their latest refreshes are read; otherwise only recorded ones are (``_needs_read``).
    """
    plans: dict[str, AsgPlan] = {}
    candidates: list[tuple[dict[str, Any], TemplateRef]] = []
    discovered = _discover(ctx, names)
    for group in discovered:
        name = group["AutoScalingGroupName"]
        ref, _, unsupported = group_template(group)
        if (skipped := _out_of_reach(ctx, group)) is not None:
            plans[name] = skipped
        elif unsupported or ref is None:
            plans[name] = _misconfigured(name, Code.MISCONFIGURED_LAUNCH_TEMPLATE,
                                         f"the group {unsupported}", _unsupported_fix(group))
        else:
            candidates.append((group, ref))
    refreshes = _read_refreshes(ctx, candidates, plans, every=names is not None and busy)
    if candidates and not ctx.deadline.has_time_for(_read_budget(ctx)):
        for group, _ in candidates:   # the batched reads would not fit: a later invocation
            plans[group["AutoScalingGroupName"]] = _deferred(group["AutoScalingGroupName"])
        candidates = []
    estate = _read(ctx, candidates, refreshes) if candidates else _Estate()
    for group, ref in candidates:
        name = group["AutoScalingGroupName"]
        try:
            plans[name] = _decide(ctx, estate, group, ref, refreshes.get(name))
        except TemplateError as exc:
            plans[name] = Fail(name, Code.TEMPLATE_UNREADABLE, str(exc))
    _hold_shared_writes(ctx, plans, discovered if names is None and ctx.settings.scope == Scope.ALL
                        else None)
    for name in sorted(plans):
        _log_plan(plans[name])
    return tuple(plans[name] for name in sorted(plans))


def _out_of_reach(ctx: RunContext, group: Mapping[str, Any]) -> Skip | None:
    """Skipped before any read: excluded (exclusions always win), out of scope, another
    orchestrator's, or a group with a status (being deleted)."""
    name, tags = group["AutoScalingGroupName"], tag_map(group.get("Tags"))
    for code, reason in (
            (Code.EXCLUDED, exclusion_reason("asg", name, tags, ctx.exclusions)),
            (Code.OUT_OF_SCOPE, out_of_scope_reason(ctx.settings, tags)
             or owner_reason("asg", tags, None)),
            (Code.GROUP_BEING_DELETED, group.get("Status") and   # "Delete in progress"
             f"the group's status is {group['Status']!r}")):
        if reason:
            return Skip(name, code, reason)
    return None


def _log_plan(plan: AsgPlan) -> None:
    if isinstance(plan, StartRefresh):
        log_event("asg_planned", group=plan.name, reason=plan.reason, code=plan.code,
                  source_version=plan.source.number,
                  version=plan.version or plan.predicted_version,
                  blocker=plan.blocker and plan.blocker.refresh_id)
    else:
        log_event(f"asg_{plan.action}", group=plan.name, reason=plan.reason, code=plan.code)


def _hold_shared_writes(ctx: RunContext, plans: dict[str, AsgPlan],
                        every_group: list[dict[str, Any]] | None) -> None:
    """Fail the plans that would write a version into a template that a group not moved by
    this run follows at ``$Latest``: the new version would become that group's too.

    ``$Default`` is never changed, so groups on it (or on a number) are safe. Every group
    is read (one paginated call) only when some plan writes a version.
    """
    writing = {p.source.template_id: p.source for p in plans.values()
               if isinstance(p, StartRefresh) and p.creates_version}
    if not writing:
        return
    if every_group is None:
        every_group = describe(ctx.clients.autoscaling, "describe_auto_scaling_groups",
                               "AutoScalingGroups", MaxRecords=GROUPS_PER_PAGE)
    followers: dict[str, list[str]] = {}
    for group in every_group:
        ref, _, _ = group_template(group)
        if ref is None or ref.version != LATEST:
            continue
        for template_id, base in writing.items():
            if ref.template_id == template_id or (ref.template_id is None
                                                  and ref.template_name == base.template_name):
                name = group["AutoScalingGroupName"]
                plan = plans.get(name)
                if not isinstance(plan, StartRefresh):
                    why = plan.reason if plan is not None else (skip_reason(
                        ctx.settings, ctx.exclusions, "asg", name, tag_map(group.get("Tags")))
                        or "not moved by this run")
                    followers.setdefault(template_id, []).append(f"{name} ({why})")
    for name, plan in list(plans.items()):
        held = (followers.get(plan.source.template_id)
                if isinstance(plan, StartRefresh) and plan.creates_version else None)
        if isinstance(plan, StartRefresh) and held:
            label = plan.template_name or plan.template_id
            plans[name] = _misconfigured(
                name, Code.MISCONFIGURED_SHARED_TEMPLATE,
                f"launch template {label} is shared with groups this run does not move, "
                f"which use its $Latest version: {'; '.join(sorted(held))}; a version "
                f"written now would move them to {ctx.goal.id} too, so none is written",
                f"point those groups at a numbered version (or $Default) of {label}, or give "
                f"{name} its own launch template")
            log_event("asg_shared_template", group=name, template=plan.template_id,
                      followers=sorted(held))


def _compatibility(ctx: RunContext, estate: _Estate, group: dict[str, Any],
                   in_use: TemplateVersion) -> tuple[str | None, str | None]:
    """(why the group cannot move to the new AMI (architecture, platform), or None;
    a note when the current image is gone and the check was made from what is known)."""
    new = ctx.goal
    if in_use.alias is None:
        if in_use.image_id == new.id:
            return None, None
        image = estate.images.get(in_use.image_id)
        if image is not None:
            return incompatibility(image, in_use.image_id, new), None
        return _gone_image_compatibility(estate, group, in_use, new)
    # The template resolves the parameter: what it launched is on its instances.
    members = sorted(_members(group), key=lambda i: estate.instance_images.get(i, ""))
    for instance_id in members:
        image_id = estate.instance_images.get(instance_id)
        if not image_id or image_id == new.id:
            continue
        image = estate.images.get(image_id) or estate.member_images.get(instance_id)
        if image is not None and (reason := incompatibility(image, image_id, new)):
            return reason, None
    return None, None


def _gone_image_compatibility(estate: _Estate, group: dict[str, Any], in_use: TemplateVersion,
                              new: Image) -> tuple[str | None, str | None]:
    """The template's image no longer exists (deregistered, no longer shared): the group
    most needs moving (it cannot even scale out), so it is checked from what still
    describes that image: its instances (those launched from it first), or, with none,
    the architectures of its instance types."""
    gone = f"current image {in_use.image_id} no longer exists"
    known = sorted((estate.member_images[i] for i in _members(group)
                    if i in estate.member_images), key=lambda m: m.id != in_use.image_id)
    if known:
        for image in known:
            reason = incompatibility(replace(image, id=in_use.image_id), in_use.image_id, new)
            if reason:
                return reason, None
        return None, (f"{gone}: its architecture and platform were checked from the group's "
                      f"{len(known)} instance(s)")
    types = _instance_types(group, in_use)
    unfit = [t for t in types if new.architecture not in estate.type_architectures.get(
        t, (new.architecture,))]
    if unfit:
        return (f"{gone} and no instance runs it: instance type {unfit[0]} cannot run "
                f"{new.id}'s architecture {new.architecture}"), None
    checked = (f"its architecture was checked from instance type {', '.join(types)}" if types
               else "its architecture could not be checked (no instance type is named)")
    return None, f"{gone} and no instance runs it: {checked}; its platform could not be checked"


def _heading_to(ctx: RunContext, estate: _Estate, group: dict[str, Any], ref: TemplateRef,
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


def _blocker(group: Mapping[str, Any], in_use: TemplateVersion, refresh: Refresh,
             heading_to: str | None, source: TemplateVersion | None) -> Blocker:
    """The active ``refresh`` as a blocker: whether the engine may cancel it, and (when it
    heads to another template) which, so the report names who is in the way."""
    other = refresh.template is not None and not same_template(refresh.template, in_use)
    return Blocker(refresh.id, refresh.status, heading_to, source,
                   cancellable=may_cancel(refresh, tag_map(group.get("Tags")), in_use),
                   target=(f"launch template {refresh.template.label} version "
                           f"{refresh.template.version}" if other and refresh.template else ""))


def _blocker_verb(blocker: Blocker, policy: str) -> str:
    """What the plan does about the refresh in its way, as the report says it."""
    if policy != InProgressPolicy.CANCEL_AND_RESTART:
        return f"wait for {blocker.describe()}"
    if blocker.cancellable:
        return f"cancel {blocker.describe()}"
    return (f"wait for {blocker.describe()}, which this function did not start and which "
            "heads to another template: it is not cancelled")


def _decide(ctx: RunContext, estate: _Estate, group: dict[str, Any], ref: TemplateRef,
            refresh: Refresh | None) -> AsgPlan:
    """The group's plan: failed by its configuration, skipped (with why), or a refresh
    toward a numbered version with its preferences."""
    name = group["AutoScalingGroupName"]
    in_use = estate.version(ref)
    where = f"launch template {in_use.template_name or in_use.template_id} version " \
            f"{in_use.number}"
    if ref.version != str(in_use.number):
        where += f" ({ref.version})"
    known_from = None
    decided: AsgPlan | None = (_misconfiguration(ctx, estate, name, in_use, where)
                               or _foreign_alias(ctx, group, in_use, where))
    if decided is None:
        reason, known_from = _compatibility(ctx, estate, group, in_use)
        decided = (Skip(name, Code.INCOMPATIBLE, reason) if reason
                   else _rolled_back(ctx, group, refresh))
    if decided is not None:
        return decided
    blocker: Blocker | None = None
    if refresh is not None and refresh.active:
        in_the_way = _in_the_way(ctx, estate, group, ref, in_use, refresh)
        if isinstance(in_the_way, Skip):
            return in_the_way
        blocker = in_the_way
    if blocker is None and (current := _already_current(ctx, estate, group, in_use, where)):
        return current
    return _refresh(ctx, estate, group, ref, in_use, blocker,
                    [known_from] if known_from else [])


def _misconfiguration(ctx: RunContext, estate: _Estate, name: str, in_use: TemplateVersion,
                      where: str) -> Fail | None:
    """The group's configuration keeps the engine from acting: what is wrong, and the fix."""
    parameter = ctx.settings.parameter_name
    label = in_use.template_name or in_use.template_id
    if (ctx.settings.scope == Scope.TAGGED
            and estate.template_tags.get(in_use.template_id, {}).get(PARAMETER) != parameter):
        return _misconfigured(
            name, Code.MISCONFIGURED_TEMPLATE_UNTAGGED,
            f"launch template {label} is not tagged {PARAMETER}={parameter}: in tagged "
            "scope the function may only write versions of, and refresh toward, templates "
            "that carry the scope tag too",
            f"tag launch template {label} with {PARAMETER}={parameter} (or remove the tag from "
            "the group)")
    profile = template_profile(in_use.data)
    if profile and (why := role_blocker(ctx.clients.iam, profile, ctx.settings.instance_roles,
                                        estate.profile_roles)):
        # Auto Scaling checks that whoever starts the refresh may pass the template's role.
        return _misconfigured(
            name, Code.MISCONFIGURED_INSTANCE_ROLE, f"{where} launches with {why}",
            f"add the role of instance profile {profile_name(profile)} (its ARN or path) to "
            f"{ROLES_KEY}")
    return None


def _foreign_alias(ctx: RunContext, group: Mapping[str, Any], in_use: TemplateVersion,
                   where: str) -> Skip | Fail | None:
    """A template resolving another parameter (the group follows that one, or is
    misconfigured), or this one while the invocation pins an ``ami_id``."""
    name, parameter = group["AutoScalingGroupName"], ctx.settings.parameter_name
    if in_use.alias is None:
        return None
    if in_use.alias.follows(parameter):
        if ctx.parameter is not None:
            return None
        return Skip(name, Code.PINNED_AMI_NOT_APPLICABLE,
                    f"{where} resolves {parameter} itself, so an ami_id pinned by the "
                    "invocation cannot be applied to it")
    if tag_map(group.get("Tags")).get(PARAMETER) != parameter:
        return Skip(name, Code.FOLLOWS_OTHER_PARAMETER,
                    f"{where} takes its ImageId from {in_use.image_id}: the group follows "
                    f"that parameter, not {parameter}")
    return _misconfigured(
        name, Code.MISCONFIGURED_FOREIGN_ALIAS,
        f"{where} takes its ImageId from {in_use.image_id}, not from {parameter}; the "
        "engine does not replace another parameter's alias",
        f"point the template's ImageId at resolve:ssm:{parameter} (without a version or "
        "label), or tag the group for the parameter it resolves")


def _rolled_back(ctx: RunContext, group: Mapping[str, Any], refresh: Refresh | None
                 ) -> Skip | RememberRollback | None:
    """A refresh toward this AMI rolled back (remembered on the group, or seen now)."""
    name, new, tags = group["AutoScalingGroupName"], ctx.goal.id, tag_map(group.get("Tags"))
    if tags.get(FAILED_AMI) == new:
        return Skip(name, Code.FAILED_BEFORE,
                    f"an earlier instance refresh onto {new} was rolled back "
                    f"({tags.get(FAILURE_REASON) or 'no reason recorded'}); remove tag "
                    f"{FAILED_AMI} from the group to retry")
    if (refresh is not None and refresh.rolled_back and tags.get(REFRESH_ID) == refresh.id
            and tags.get(REFRESH_AMI) == new):
        why = f"{refresh.status}: {refresh.status_reason}".rstrip(": ")
        return RememberRollback(
            name, Code.REFRESH_ROLLED_BACK,
            f"instance refresh {refresh.id} toward {new} ended {why}; not restarted toward "
            f"the same AMI: remove tag {FAILED_AMI} from the group to retry",
            note=f"refresh {refresh.id}: {why}")
    return None


def _in_the_way(ctx: RunContext, estate: _Estate, group: dict[str, Any], ref: TemplateRef,
                in_use: TemplateVersion, refresh: Refresh) -> Blocker | Skip:
    """The active ``refresh`` as the blocker the plan cancels or waits for, or the skip
    when it already heads to the AMI or the group's policy is ``skip``."""
    name, new = group["AutoScalingGroupName"], ctx.goal.id
    heading_to, source = _heading_to(ctx, estate, group, ref, refresh)
    if heading_to == new:
        return Skip(name, Code.REFRESH_ALREADY_RUNNING,
                    f"instance refresh {refresh.id} ({refresh.status}) is already in progress "
                    f"toward {new}")
    blocker = _blocker(group, in_use, refresh, heading_to, source)
    if ctx.settings.asg_configurations.for_group(name).on_refresh_in_progress == \
            InProgressPolicy.SKIP:
        return Skip(name, Code.REFRESH_IN_PROGRESS_SKIP,
                    f"{blocker.describe()} is in progress and OnRefreshInProgress is skip")
    return blocker


def _already_current(ctx: RunContext, estate: _Estate, group: Mapping[str, Any],
                     in_use: TemplateVersion, where: str) -> Skip | None:
    """Skipped when the template launches the AMI and every instance runs it."""
    new = ctx.goal.id
    members = _members(group)
    if ((in_use.alias is not None or in_use.image_id == new)
            and all(estate.instance_images.get(i) == new for i in members)):
        return Skip(group["AutoScalingGroupName"], Code.ALREADY_CURRENT,
                    f"already on {new}: {where} launches it and every instance "
                    f"({len(members)}) runs it")
    return None


def _target_version(ctx: RunContext, estate: _Estate, ref: TemplateRef,
                    source: TemplateVersion) -> tuple[int | None, int | None, str]:
    """(the existing version the refresh names, or None; the number a version written
    now would get, or None; what the plan does, as the report says it)."""
    new, parameter = ctx.goal.id, ctx.settings.parameter_name
    if source.alias is not None:
        return source.number, None, \
            f"version {source.number} resolves {parameter}: refresh toward it"
    if source.image_id == new:
        return source.number, None, \
            f"version {source.number} already launches {new}: refresh toward it"
    latest = estate.latest(ref)
    if latest.data == source.with_image(new):
        return latest.number, None, (f"version {latest.number} is version {source.number} "
                                     f"with ImageId {new} (written earlier): refresh toward it")
    predicted = estate.predict(source)
    return None, predicted, (f"write version {predicted} (version {source.number} with "
                             f"ImageId {new}) and refresh toward it")


def _preferences(settings: RefreshSettings, ref: TemplateRef, source: TemplateVersion
                 ) -> tuple[Preferences, list[str]]:
    """The group's preferences less what its version cannot take, with a note for each."""
    preferences, notes = Preferences.of(settings.preferences_dict()), []
    if source.alias is not None:   # the version stays: AWS would neither roll back nor
        preferences, dropped = preferences.without("AutoRollback")   # replace "matching"
        if dropped:
            notes.append("AutoRollback left out: AWS cannot roll back a template whose "
                         "ImageId is a resolve:ssm: parameter")
        preferences, dropped = preferences.without("SkipMatching")
        if dropped:
            notes.append("SkipMatching left out: the instances already run this template "
                         "version, so AWS would skip every one of them")
    elif ref.version in (LATEST, DEFAULT):
        preferences, dropped = preferences.without("AutoRollback")
        if dropped:
            notes.append(f"AutoRollback left out: the group uses its template's {ref.version} "
                         "version, which AWS cannot roll back to")
    return preferences, notes


def _refresh(ctx: RunContext, estate: _Estate, group: dict[str, Any], ref: TemplateRef,
             in_use: TemplateVersion, blocker: Blocker | None, notes: list[str]
             ) -> StartRefresh:
    """The refresh toward the AMI: from which version, toward which, with what."""
    name = group["AutoScalingGroupName"]
    settings = ctx.settings.asg_configurations.for_group(name)
    source = in_use
    if blocker is not None and _keeps_cancelled_changes(ctx, settings, in_use, blocker):
        source = blocker.source or in_use
        notes.append(f"based on version {source.number}, the one the cancelled refresh was "
                     "heading to, so its other changes are kept")
    version, predicted, summary = _target_version(ctx, estate, ref, source)
    if blocker is not None:
        summary = f"{_blocker_verb(blocker, settings.on_refresh_in_progress)}, then {summary}"
    preferences, dropped = _preferences(settings, ref, source)
    _, via, _ = group_template(group)
    policy = group.get("MixedInstancesPolicy") if via == VIA_MIXED_INSTANCES_POLICY else None
    return StartRefresh(
        name, Code.REFRESH_PLANNED, summary, template_id=in_use.template_id,
        template_name=in_use.template_name, via=via, source=source, version=version,
        predicted_version=predicted,
        mixed_policy=MappingProxyType(copy.deepcopy(policy)) if policy else None,
        preferences=preferences, strategy=settings.strategy,
        policy=settings.on_refresh_in_progress, blocker=blocker,
        notes=(*notes, *dropped), clear_failed_ami=FAILED_AMI in tag_map(group.get("Tags")))


def _keeps_cancelled_changes(ctx: RunContext, settings: RefreshSettings, in_use: TemplateVersion,
                             blocker: Blocker) -> bool:
    """Whether the refresh starts from the version the cancelled one was heading to: it is
    cancelled (cancel-and-restart, cancellable, not rolling back), and that version is of
    the group's template and resolves no other parameter."""
    source = blocker.source
    return (settings.on_refresh_in_progress == InProgressPolicy.CANCEL_AND_RESTART
            and blocker.cancellable and source is not None
            and blocker.status != RefreshStatus.ROLLBACK_IN_PROGRESS
            and source.template_id == in_use.template_id
            and (source.alias is None or source.alias.follows(ctx.settings.parameter_name)))


# --------------------------------------------------------------------- configuration


NAMES_PER_REQUEST = 50   # DescribeAutoScalingGroups: AutoScalingGroupNames per request


def configuration_warnings(ctx: RunContext, plans: Sequence[AsgPlan]) -> tuple[str, ...]:
    """ASG_CONFIGURATIONS keys that name no group this run considered, each with why.

    A key naming a group that does not exist is likely a typo: its settings silently
    apply to nothing. Read only when such keys exist (one request per 50 names).
    """
    considered = {p.name for p in plans}
    keys = sorted(k for k in ctx.settings.asg_configurations.entries
                  if k != DEFAULT_KEY and k not in considered)
    if not keys:
        return ()
    found: dict[str, dict[str, Any]] = {}
    for batch in batches(keys, NAMES_PER_REQUEST):
        for item in describe(ctx.clients.autoscaling, "describe_auto_scaling_groups",
                             "AutoScalingGroups", AutoScalingGroupNames=batch):
            found[item["AutoScalingGroupName"]] = item
    warnings = []
    for key in keys:
        group = found.get(key)
        if group is None:
            text = (f"ASG_CONFIGURATIONS names group {key!r}, which does not exist: its settings "
                    "apply to no group (a typo, or a group since deleted?)")
        else:
            why = skip_reason(ctx.settings, ctx.exclusions, "asg", key,
                              tag_map(group.get("Tags"))) or "out of scope"
            text = (f"ASG_CONFIGURATIONS names group {key!r}, which this deployment does not "
                    f"move ({why}): its settings are not used")
        log_event("configuration_warning", group=key, warning=text)
        warnings.append(text)
    return tuple(warnings)
