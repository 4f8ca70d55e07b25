"""Auto Scaling groups, the apply: start the planned refreshes, handle the ones in the way.

Write the planned version (the one in use with only ImageId changed; a deterministic
ClientToken makes a repeat return the same version), start the refresh, and treat a
refresh already running on the group per its ``OnRefreshInProgress`` policy:
cancel it and restart, wait for it, or skip the group (decided in ``plan.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws import describe_error, error_code, is_transient
from ..batch import chunks, together_or_alone
from ..log import log_event
from ..outcomes import Code
from ..planning import error_text
from ..report import AsgEntry
from ..run import Action, Outcome, RunContext
from ..settings import InProgressPolicy
from ..tags import FAILED_AMI, FAILURE_REASON, REFRESH_AMI, REFRESH_ID
from .launch_templates import create_version
from .plan import AsgPlan, Fail, RememberRollback, StartRefresh, plan_asgs
from .refreshes import IN_PROGRESS_ERROR, NOT_ACTIVE_ERROR, RefreshStatus, latest_refresh

POLL_SECONDS = 30.0            # between checks of a refresh the engine waits for
START_BUDGET_SECONDS = 30.0    # time writing a version and starting a refresh may take
RECORD_BATCH = 20              # groups whose refresh records share one CreateOrUpdateTags
START_WORKERS = 4              # groups whose version and refresh are written at once
"""Refreshes started concurrently (``start_asgs``). Each group costs two calls of
~0.1-0.2 s, so 4 workers ask at most ~40 calls a second, near what EC2's
CreateLaunchTemplateVersion bucket (100 at once, then 5 a second) and Auto Scaling's
shared bucket serve in a burst; past the burst those buckets bound any engine, and
botocore's retries (``handler/aws.py``) back off a throttled call instead of failing the
group. More workers would only queue on the same buckets and throttle the account's
other callers. 1 gives the plan's exact call order (the crash and order tests)."""


class _Raced(Exception):
    """StartInstanceRefresh met a refresh started since planning (InstanceRefreshInProgress)."""


@dataclass
class _Run:
    """Apply-time state of one invocation."""

    ctx: RunContext
    entries: dict[str, AsgEntry] = field(default_factory=dict)
    waiting: list[StartRefresh] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)      # failed by a transient error
    written: dict[tuple[str, int], int] = field(default_factory=dict)   # groups sharing a
                                                                        # source share a version
    order: tuple[str, ...] = ()          # the groups in plan order, for the report
    unrecorded: list[_Started] = field(default_factory=list)   # refreshes not yet tagged

    def advance(self, plan: StartRefresh, may_replan: bool = True) -> None:
        """Start the plan's refresh, or hold it behind the refresh in its way."""
        if plan.blocker is not None:
            self.hold(plan)
            return
        self.started(plan, _started(self.ctx, plan, _written(plan, self.written)),
                     may_replan)

    def started(self, plan: StartRefresh, result: Future, may_replan: bool = True) -> None:
        """The bookkeeping of one ``_start`` (done, maybe on a worker): in this thread."""
        try:
            entry, started, created = result.result()
        except _Raced:
            if may_replan:
                self.replan(plan.name, may_replan=False)
            else:
                self.fail(plan.name, Code.START_RACED,
                          "StartInstanceRefresh failed: InstanceRefreshInProgress")
        except (ClientError, BotoCoreError) as exc:   # a network error too: this group only
            self.fail(plan.name, Code.START_FAILED, describe_error(exc, "the refresh's start"))
            if is_transient(exc):
                self.retry.append(plan.name)
        else:
            if created is not None:
                self.written[_key(plan)] = created
            self.entries[plan.name] = entry
            self.unrecorded.append(started)
            if len(self.unrecorded) >= RECORD_BATCH:
                self.record()

    def record(self) -> None:
        """Tag the groups whose refresh started with it and its AMI, many groups a call.

        Batched, so a crash between a StartInstanceRefresh and its record leaves up to
        ``RECORD_BATCH - 1`` more refreshes unrecorded than one at a time would. Such a
        refresh still converges: the next run sees it heading to the AMI through its
        template version and leaves it running; unrecorded, ``cancel`` does not offer it
        and a rollback of it is not remembered. Workers keep that bound: ``start_asgs``
        records before a batch could take the unrecorded past ``RECORD_BATCH``. A
        template that resolves the parameter does not say where its refresh heads, so
        those groups are recorded as soon as their batch ends (unrecorded, a next run
        cancelling refreshes in the way would cancel it): at most ``RECORD_BATCH`` of
        them are ever unrecorded, as for the others, and they share one call.
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
            fresh = plan_asgs(self.ctx, [name], busy=True)
        except (ClientError, BotoCoreError) as exc:
            self.fail(name, Code.READ_FAILED, error_text(exc))
            if is_transient(exc):
                self.retry.append(name)
            return
        if not fresh:
            self.entries[name] = AsgEntry(name, Action.SKIPPED, Code.GROUP_GONE,
                                          "the group no longer exists")
        elif not isinstance(fresh[0], StartRefresh):
            self.entries[name] = fresh[0].entry()
        else:
            self.advance(fresh[0], may_replan)

    def hold(self, plan: StartRefresh) -> None:
        """Cancel the refresh in the way (cancel-and-restart) and wait for it to end."""
        blocker = plan.in_the_way
        if _cancels(plan) and blocker.status != RefreshStatus.CANCELLING:
            try:
                self.ctx.clients.autoscaling.cancel_instance_refresh(
                    AutoScalingGroupName=plan.name)
                log_event("asg_refresh_cancelled", group=plan.name, refresh=blocker.refresh_id,
                          heading_to=blocker.heading_to, ami=self.ctx.goal.id)
            except (ClientError, BotoCoreError) as exc:
                ended = isinstance(exc, ClientError) and error_code(exc) == NOT_ACTIVE_ERROR
                if not ended:   # it ended meanwhile: fine
                    self.fail(plan.name, Code.CANCEL_FAILED,
                              describe_error(exc, "CancelInstanceRefresh"))
                    if is_transient(exc):
                        self.retry.append(plan.name)
                    return
        self.waiting.append(plan)

    def fail(self, name: str, code: Code, reason: str) -> None:
        log_event("asg_failed", group=name, reason=reason, code=code)
        self.entries[name] = AsgEntry(name, Action.FAILED, code, reason)

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
            if _cancels(plan) and not (current is not None and current.active):
                self.advance(plan.blocker_ended())
            else:   # waited for it (the group may have moved on), or another one started
                self.replan(plan.name)
        self.record()

    def still_waiting(self) -> None:
        for plan in self.waiting:
            blocker = plan.in_the_way
            verb = "cancelled" if _cancels(plan) else "waiting for"
            foreign = "" if blocker.cancellable else (
                " (not started by this function and heading to another template, so not "
                "cancelled)")
            self.entries[plan.name] = AsgEntry(plan.name, Action.SKIPPED,
                                               Code.REFRESH_IN_PROGRESS_WAIT, (
                f"{verb} {blocker.describe()}{foreign}, which has not ended yet; the refresh "
                f"toward {self.ctx.goal.id} starts in a follow-up invocation"), details={
                    "active_refresh": blocker.summary(),
                    "on_refresh_in_progress": plan.policy})
            log_event("asg_waiting", group=plan.name, refresh=blocker.refresh_id,
                      policy=plan.policy)


def start_asgs(ctx: RunContext, plans: Sequence[AsgPlan], workers: int | None = None
               ) -> _Run:
    """Start the planned refreshes; cancel (or note) the refreshes in their way.

    Quick by design: the waiting is left to ``finish_asgs``, so that the engine can
    replace standalone instances meanwhile instead of spending the invocation polling.
    Up to ``RECORD_BATCH`` groups in a row that need nothing but ``_start`` (and no
    version another of them writes) are handed at once to ``workers`` threads (default
    ``START_WORKERS``), which keep busy until the batch is done (no lockstep behind one
    throttled call); everything
    else (entries, versions written, records, replans) is done here, in plan order, so
    the report and the records do not depend on which call ends first.
    """
    workers = max(1, START_WORKERS if workers is None else workers)
    run = _Run(ctx)
    batch: list[StartRefresh] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="start-asg") as pool:
        def flush() -> None:
            if len(run.unrecorded) + len(batch) > RECORD_BATCH:
                run.record()   # a crash leaves at most RECORD_BATCH unrecorded, as ever
            if len(batch) == 1:   # nothing to overlap: this thread, as one at a time
                plan = batch[0]
                run.started(plan, _started(ctx, plan, _written(plan, run.written)))
            else:
                # each in a copy of this context: the log lines keep the request's fields
                futures = [pool.submit(copy_context().run, _start, ctx, plan,
                                       _written(plan, run.written)) for plan in batch]
                for plan, future in zip(batch, futures, strict=True):
                    run.started(plan, future)
            if any(s.alias for s in run.unrecorded):
                run.record()
            batch.clear()

        for plan in plans:
            if not isinstance(plan, StartRefresh | RememberRollback):
                run.entries[plan.name] = plan.entry()   # no call: the batch goes on
                if isinstance(plan, Fail) and plan.transient:
                    run.retry.append(plan.name)
                if plan.action == Action.DEFERRED:
                    run.deferred.append(plan.name)
                continue
            if batch and not _joins(batch, plan, run.written):
                flush()
            if isinstance(plan, RememberRollback):
                run.entries[plan.name] = plan.entry()
                _remember_failed(ctx, plan)
            elif not batch and not ctx.deadline.has_time_for(
                    ctx.deadline.budget(START_BUDGET_SECONDS)):
                run.deferred.append(plan.name)
                run.entries[plan.name] = AsgEntry(plan.name, Action.DEFERRED, Code.START_DEFERRED, (
                    "not started: too little time left in this invocation; continues in a "
                    "follow-up invocation"))
            elif plan.blocker is not None:
                run.hold(plan)
            else:
                batch.append(plan)
                if len(batch) == (RECORD_BATCH if workers > 1 else 1):
                    flush()
        if batch:
            flush()
    if run.waiting:
        run.poll()     # a cancelled refresh with nothing in flight has ended already
    run.record()
    run.order = tuple(p.name for p in plans)
    return run


def _cancels(plan: StartRefresh) -> bool:
    """Whether the plan cancels the refresh in its way: cancel-and-restart, and a refresh
    the engine may cancel (``plan.may_cancel``); any other is waited for."""
    return (plan.policy == InProgressPolicy.CANCEL_AND_RESTART and plan.blocker is not None
            and plan.blocker.cancellable)


def _joins(batch: list[StartRefresh], plan: AsgPlan, written: Mapping[tuple[str, int], int]
           ) -> bool:
    """Whether ``plan`` can start alongside ``batch``: a plain start, and no version to
    write that one of them writes too (groups sharing a source share its version)."""
    if not isinstance(plan, StartRefresh) or plan.blocker is not None:
        return False
    return plan.version is not None or _key(plan) in written or all(
        other.version is not None or _key(other) != _key(plan) for other in batch)


def _key(plan: StartRefresh) -> tuple[str, int]:
    """The source version a planned version copies: groups sharing it share the version."""
    return plan.source.template_id, plan.source.number


def _written(plan: StartRefresh, written: Mapping[tuple[str, int], int]) -> int | None:
    """The version written this run from the plan's source, if it needs one."""
    return None if plan.version is not None else written.get(_key(plan))


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
                   "; ".join(reasons) if reasons else None, waiting=len(run.waiting))


@dataclass(frozen=True)
class _Started:
    """A refresh started, to be recorded on its group (``_Run.record``)."""

    name: str
    refresh_id: str
    ami: str
    alias: bool          # its template resolves the parameter: record it with its batch
    clear: bool          # the group's failed-ami memory (an older AMI) is done


def _started(ctx: RunContext, plan: StartRefresh, version: int | None) -> Future:
    """``_start`` in this thread, its outcome as a ``Future`` (as a worker's would be)."""
    future: Future = Future()
    try:
        future.set_result(_start(ctx, plan, version))
    except (_Raced, ClientError, BotoCoreError) as exc:
        future.set_exception(exc)
    return future


def _start(ctx: RunContext, plan: StartRefresh, written: int | None
           ) -> tuple[AsgEntry, _Started, int | None]:
    """Write the version (unless ``written``, by a group sharing the source), start the
    refresh; the version this wrote (for the caller to share), the record the caller's.
    Runs on a worker: reads ``ctx`` and ``plan`` (frozen), changes nothing of the run."""
    ami = ctx.goal.id
    version = plan.version if plan.version is not None else written
    created = None
    if version is None:
        version = created = create_version(ctx.clients.ec2, plan.source, ami)
        log_event("asg_version_created", group=plan.name, template=plan.template_id,
                  version=version, source_version=plan.source.number, ami=ami)
    request: dict[str, Any] = {   # the settings' strings, checked when they were read
        "AutoScalingGroupName": plan.name, "Strategy": plan.strategy,
        "DesiredConfiguration": plan.desired_configuration(version),
        "Preferences": plan.preferences.request()}
    try:
        refresh_id = ctx.clients.autoscaling.start_instance_refresh(**request)[
            "InstanceRefreshId"]
    except ClientError as exc:
        if error_code(exc) == IN_PROGRESS_ERROR:
            raise _Raced() from None
        raise
    log_event("asg_refresh_started", group=plan.name, refresh=refresh_id, version=version,
              ami=ami, preferences=request["Preferences"], strategy=plan.strategy)
    cancelled = f"cancelled {plan.cancelled.describe()}, then started " if plan.cancelled \
        else ""
    code = Code.REFRESH_RESTARTED if plan.cancelled else Code.REFRESH_STARTED
    return AsgEntry(plan.name, Action.REFRESH_STARTED, code, (
        f"{cancelled}instance refresh toward launch template "
        f"{plan.template_name or plan.template_id} version {version} ({ami})"),
        refresh_id=refresh_id,
        launch_template_version=str(version), details=plan.details(version)), _Started(
            plan.name, refresh_id, ami, plan.source.alias is not None, plan.clear_failed_ami
        ), created


def _remember_failed(ctx: RunContext, plan: RememberRollback) -> None:
    """Tag the group with the AMI its refresh rolled back from; drop the refresh record, so
    that removing ``failed-ami`` is all an operator does to retry."""
    reason = plan.note
    if _tag(ctx, plan.name, {FAILED_AMI: ctx.goal.id, FAILURE_REASON: reason[:256]}):
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

    def together(names: Sequence[str]) -> None:
        items: list[Any] = [{"ResourceId": name, "ResourceType": "auto-scaling-group",
                             "Key": key, "Value": value, "PropagateAtLaunch": False}
                            for name in names for key, value in tags[name].items()]
        if delete:
            ctx.clients.autoscaling.delete_tags(Tags=items)
        else:
            ctx.clients.autoscaling.create_or_update_tags(Tags=items)

    def alone(name: str) -> str | None:
        try:
            together([name])
        except (ClientError, BotoCoreError) as exc:
            log_event(failed_event, group=name, tags=dict(tags[name]),
                      error=describe_error(exc, operation))
            return name
        return None

    failed: list[str | None] = []
    for batch in chunks(list(tags), RECORD_BATCH):
        failed += together_or_alone(batch, together, lambda names, _: [None] * len(names),
                                    alone, lambda names, error: None)
    return [name for name in failed if name is not None]
