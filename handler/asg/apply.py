"""Auto Scaling groups, the apply: start the planned refreshes, handle the ones in the way.

Write the planned version (the one in use with only ImageId changed; a deterministic
ClientToken makes a repeat return the same version), start the refresh, and treat a
refresh already running on the group per its ``OnRefreshInProgress`` policy:
cancel it and restart, wait for it, or skip the group (decided in ``plan.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws import describe_error, error_code, is_transient
from ..log import log_event
from ..planning import error_text
from ..report import AsgEntry
from ..run import Action, Outcome, RunContext
from ..settings import InProgressPolicy
from ..tags import FAILED_AMI, FAILURE_REASON, REFRESH_AMI, REFRESH_ID
from .launch_templates import create_version
from .plan import AsgPlan, plan_asgs
from .refreshes import IN_PROGRESS_ERROR, NOT_ACTIVE_ERROR, latest_refresh

POLL_SECONDS = 30.0            # between checks of a refresh the engine waits for
START_BUDGET_SECONDS = 30.0    # time writing a version and starting a refresh may take
RECORD_BATCH = 20              # groups whose refresh records share one CreateOrUpdateTags


class _Raced(Exception):
    """StartInstanceRefresh met a refresh started since planning (InstanceRefreshInProgress)."""


@dataclass
class _Run:
    """Apply-time state of one invocation."""

    ctx: RunContext
    entries: dict[str, AsgEntry] = field(default_factory=dict)
    waiting: list[AsgPlan] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)      # failed by a transient error
    written: dict[tuple[str, int], int] = field(default_factory=dict)   # groups sharing a
                                                                        # source share a version
    order: tuple[str, ...] = ()          # the groups in plan order, for the report
    unrecorded: list[_Started] = field(default_factory=list)   # refreshes not yet tagged

    def advance(self, plan: AsgPlan, may_replan: bool = True) -> None:
        """Start the plan's refresh, or hold it behind the refresh in its way."""
        if plan.blocker is not None and not plan.blocker_ended:
            self.hold(plan)
            return
        try:
            self.entries[plan.name], started = _start(self.ctx, plan, self.written)
        except _Raced:
            if may_replan:
                self.replan(plan.name, may_replan=False)
            else:
                self.fail(plan.name, "StartInstanceRefresh failed: InstanceRefreshInProgress")
        except ClientError as exc:
            self.fail(plan.name, describe_error(exc))
        else:
            self.unrecorded.append(started)
            if started.alias or len(self.unrecorded) >= RECORD_BATCH:
                self.record()

    def record(self) -> None:
        """Tag the groups whose refresh started with it and its AMI, many groups a call.

        Batched, so a crash between a StartInstanceRefresh and its record leaves up to
        ``RECORD_BATCH - 1`` more refreshes unrecorded than one at a time would. Such a
        refresh still converges: the next run sees it heading to the AMI through its
        template version and leaves it running; unrecorded, ``cancel`` does not offer it
        and a rollback of it is not remembered. A template that resolves the parameter
        does not say where its refresh heads, so those groups are recorded at once
        (unrecorded, a next run cancelling refreshes in the way would cancel it).
        """
        started, self.unrecorded = self.unrecorded, []
        _write_tags(self.ctx, {s.name: {REFRESH_ID: s.refresh_id, REFRESH_AMI: s.ami}
                               for s in started}, failed_event="asg_record_failed")
        cleared = {s.name: {FAILED_AMI: "", FAILURE_REASON: ""} for s in started if s.clear}
        if cleared:   # a newer AMI than the one that failed: the memory is done
            _write_tags(self.ctx, cleared, delete=True)

    def replan(self, name: str, may_replan: bool = True) -> None:
        """Decide again from what the group is now (a refresh ended or another started)."""
        try:
            fresh = plan_asgs(self.ctx, [name])
        except (ClientError, BotoCoreError) as exc:
            self.fail(name, error_text(exc))
            if is_transient(exc):
                self.retry.append(name)
            return
        if not fresh:
            self.entries[name] = AsgEntry(name, Action.SKIPPED, "the group no longer exists")
        elif fresh[0].action != Action.PLANNED:
            self.entries[name] = fresh[0].entry()
        else:
            self.advance(fresh[0], may_replan)

    def hold(self, plan: AsgPlan) -> None:
        """Cancel the refresh in the way (cancel-and-restart) and wait for it to end."""
        blocker = plan.in_the_way
        if plan.policy == InProgressPolicy.CANCEL_AND_RESTART and blocker.status != "Cancelling":
            try:
                self.ctx.clients.autoscaling.cancel_instance_refresh(
                    AutoScalingGroupName=plan.name)
                log_event("asg_refresh_cancelled", group=plan.name, refresh=blocker.refresh_id,
                          heading_to=blocker.heading_to, ami=self.ctx.image.id)
            except ClientError as exc:
                if error_code(exc) != NOT_ACTIVE_ERROR:   # else it ended meanwhile: fine
                    self.fail(plan.name, describe_error(exc, "CancelInstanceRefresh"))
                    return
        self.waiting.append(plan)

    def fail(self, name: str, reason: str) -> None:
        log_event("asg_failed", group=name, reason=reason)
        self.entries[name] = AsgEntry(name, Action.FAILED, reason)

    def poll(self) -> None:
        """One look at the refreshes waited for; the groups they no longer block move on."""
        for plan in list(self.waiting):
            try:
                current = latest_refresh(self.ctx.clients.autoscaling, plan.name)
            except (ClientError, BotoCoreError) as exc:   # look again at the next poll
                log_event("asg_poll_failed", group=plan.name, error=error_text(exc))
                continue
            if current is not None and current.active and \
                    current.id == plan.in_the_way.refresh_id:
                continue
            self.waiting.remove(plan)
            if plan.policy == InProgressPolicy.CANCEL_AND_RESTART and not (
                    current is not None and current.active):
                self.advance(replace(plan, blocker_ended=True))
            else:   # waited for it (the group may have moved on), or another one started
                self.replan(plan.name)
        self.record()

    def still_waiting(self) -> None:
        for plan in self.waiting:
            blocker = plan.in_the_way
            cancelling = plan.policy == InProgressPolicy.CANCEL_AND_RESTART
            verb = "cancelled" if cancelling else "waiting for"
            self.entries[plan.name] = AsgEntry(plan.name, Action.SKIPPED, (
                f"{verb} {blocker.describe()}, which has not ended yet; the refresh toward "
                f"{self.ctx.image.id} starts in a follow-up invocation"), details={
                    "active_refresh": {"id": blocker.refresh_id, "status": blocker.status,
                                       "heading_to": blocker.heading_to},
                    "on_refresh_in_progress": plan.policy})
            log_event("asg_waiting", group=plan.name, refresh=blocker.refresh_id,
                      policy=plan.policy)


def start_asgs(ctx: RunContext, plans: Sequence[AsgPlan]) -> _Run:
    """Start the planned refreshes; cancel (or note) the refreshes in their way.

    Quick by design: the waiting is left to ``finish_asgs``, so that the engine can
    replace standalone instances meanwhile instead of spending the invocation polling.
    """
    run = _Run(ctx)
    for plan in plans:
        if plan.action != Action.PLANNED:
            run.entries[plan.name] = plan.entry()
            if plan.record_failed_ami:
                _remember_failed(ctx, plan)
            if plan.transient:
                run.retry.append(plan.name)
        elif not ctx.deadline.has_time_for(START_BUDGET_SECONDS):
            run.deferred.append(plan.name)
            run.entries[plan.name] = AsgEntry(plan.name, Action.SKIPPED, (
                "not started: too little time left in this invocation; continues in a "
                "follow-up invocation"))
        else:
            run.advance(plan)
    if run.waiting:
        run.poll()     # a cancelled refresh with nothing in flight has ended already
    run.record()
    run.order = tuple(p.name for p in plans)
    return run


def finish_asgs(run: _Run) -> Outcome[AsgEntry]:
    """Wait, within the deadline, for the refreshes in the way; then report every group.

    What is still blocked then is left to a follow-up invocation (the engine sends
    it when ``continue_reason`` is set).
    """
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
    if run.retry:
        reasons.append("transient errors on " + ", ".join(run.retry))
    return Outcome(tuple(run.entries[name] for name in run.order),
                   "; ".join(reasons) if reasons else None)


@dataclass(frozen=True)
class _Started:
    """A refresh started, to be recorded on its group (``_Run.record``)."""

    name: str
    refresh_id: str
    ami: str
    alias: bool          # its template resolves the parameter: record it at once
    clear: bool          # the group's failed-ami memory (an older AMI) is done


def _start(ctx: RunContext, plan: AsgPlan, written: dict[tuple[str, int], int]
           ) -> tuple[AsgEntry, _Started]:
    """Write the version (unless it exists), start the refresh; the record is the caller's."""
    ami = ctx.image.id
    version = plan.version
    if version is None:
        key = (plan.base.template_id, plan.base.number)
        if key not in written:
            written[key] = create_version(ctx.clients.ec2, plan.base, ami)
            log_event("asg_version_created", group=plan.name, template=plan.template_id,
                      version=written[key], source_version=plan.base.number, ami=ami)
        version = written[key]
    request: dict[str, Any] = {   # the settings' strings, checked when they were read
        "AutoScalingGroupName": plan.name, "Strategy": plan.strategy,
        "DesiredConfiguration": plan.desired_configuration(version),
        "Preferences": plan.preferences}
    try:
        refresh_id = ctx.clients.autoscaling.start_instance_refresh(**request)[
            "InstanceRefreshId"]
    except ClientError as exc:
        if error_code(exc) == IN_PROGRESS_ERROR:
            raise _Raced() from None
        raise
    log_event("asg_refresh_started", group=plan.name, refresh=refresh_id, version=version,
              ami=ami, preferences=plan.preferences, strategy=plan.strategy)
    return AsgEntry(plan.name, Action.REFRESH_STARTED, (
        f"instance refresh toward launch template {plan.template_name or plan.template_id} "
        f"version {version} ({ami})"), refresh_id=refresh_id,
        launch_template_version=str(version), details=plan.details(version)), _Started(
            plan.name, refresh_id, ami, plan.base.alias is not None, plan.clear_failed_ami)


def _remember_failed(ctx: RunContext, plan: AsgPlan) -> None:
    """Tag the group with the AMI its refresh rolled back from; drop the refresh record, so
    that removing ``failed-ami`` is all an operator does to retry."""
    reason = plan.notes[0] if plan.notes else plan.reason
    if _tag(ctx, plan.name, {FAILED_AMI: ctx.image.id, FAILURE_REASON: reason[:256]}):
        _tag(ctx, plan.name, {REFRESH_ID: "", REFRESH_AMI: ""}, delete=True)
        log_event("asg_failed_ami_recorded", group=plan.name, reason=reason)


def _tag(ctx: RunContext, name: str, tags: dict[str, str], delete: bool = False) -> bool:
    """Write (or delete) engine tags on a group; a failure is logged: the run goes on."""
    return not _write_tags(ctx, {name: tags}, delete=delete)


def _write_tags(ctx: RunContext, tags: Mapping[str, Mapping[str, str]], delete: bool = False,
                failed_event: str = "asg_tag_failed") -> list[str]:
    """Write (or delete) engine tags on groups, ``RECORD_BATCH`` groups a call; the groups
    whose tags failed (logged: the run goes on). A batch refused is retried group by
    group, so one group (deleted meanwhile, say) does not cost the others their tags."""
    operation = "DeleteTags" if delete else "CreateOrUpdateTags"
    names = list(tags)
    failed: list[str] = []
    for start in range(0, len(names), RECORD_BATCH):
        batch = names[start:start + RECORD_BATCH]
        items: list[Any] = [{"ResourceId": name, "ResourceType": "auto-scaling-group",
                             "Key": key, "Value": value, "PropagateAtLaunch": False}
                            for name in batch for key, value in tags[name].items()]
        try:
            if delete:
                ctx.clients.autoscaling.delete_tags(Tags=items)
            else:
                ctx.clients.autoscaling.create_or_update_tags(Tags=items)
            continue
        except ClientError as exc:
            if len(batch) == 1:
                log_event(failed_event, group=batch[0], tags=dict(tags[batch[0]]),
                          error=describe_error(exc, operation))
                failed.append(batch[0])
                continue
        for name in batch:
            failed += _write_tags(ctx, {name: tags[name]}, delete, failed_event)
    return failed
