"""The engine: from a parsed request to a report, through plan-then-apply.

It owns the run-level steps (the AMI, exclusions, continuation, notification)
and delegates the per-resource work to ``asg`` (instance refreshes) and
``standalone`` (instance replacement), which take the :class:`~handler.run.RunContext`
it builds and return :class:`~handler.run.Outcome`s. Clients come through the
constructor.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import asg, log, standalone
from .ami import AmiError, AmiNotReady, check_owner, read_parameter, validate_ami
from .aws import Clients, error_code, is_transient, tag_map
from .events import Request, continuation_event
from .follow_up import FollowUp
from .freshness import check_not_behind
from .log import log_event
from .outcomes import Code
from .planning import PlanningFailure, plan_guarded
from .report import (
    SUMMARY_MAX_BYTES,
    InstanceEntry,
    Report,
    bounded_summary,
    entry_parts,
    failures_first,
    overall_status,
    pending,
    size,
)
from .run import Action, Clock, Deadline, Outcome, RunContext, Status
from .scope import GROUP, skip_reason
from .settings import Exclusions, Settings, SettingsError, parse_exclusions_document
from .standalone.core import PlanAction
from .standalone.plan import in_flight_replacements
from .standalone.recovery import recover_in_flight
from .steps import AMI_CHECK, EXCLUSIONS_READ, IN_FLIGHT_OBSERVATION, StepFailed, step


class Engine:
    def __init__(self, settings: Settings, clients: Clients, clock: Clock, deadline: Deadline,
                 function_arn: str | None = None) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self.deadline = deadline
        self.function_arn = function_arn
        self._read_exclusions: Exclusions | None = None   # once read, for this invocation

    # ------------------------------------------------------------------ the run
    def run(self, request: Request) -> Report:
        # Every line of the run carries these (handler/log.py); the AMI is bound once known.
        with log.scope(parameter=self.settings.parameter_name, attempt=request.attempt):
            return self._run(request)

    def _run(self, request: Request) -> Report:
        dry_run, warning = effective_dry_run(self.settings.dry_run, request.dry_run)
        base = Report(parameter=self.settings.parameter_name, ami_id=None, dry_run=dry_run,
                      status=Status.FAILED, warnings=(warning,) if warning else ())
        if request.ignored_reason:
            log_event("ignored", reason=request.ignored_reason, kind=request.kind)
            return self._finish(replace(base, status=Status.IGNORED, reason=request.ignored_reason,
                                        code=Code.EVENT_IGNORED))
        if request.failure_reason:
            log_event("rejected", reason=request.failure_reason, kind=request.kind)
            return self._finish(replace(base, reason=request.failure_reason,
                                        code=Code.EVENT_REJECTED))
        outside = self._group_out_of_scope(request.group) if request.group else None
        if outside:
            log_event("ignored", reason=outside, kind=request.kind, group=request.group)
            return self._finish(replace(base, status=Status.IGNORED, reason=outside,
                                        code=Code.EVENT_IGNORED))
        follow_up = FollowUp.for_function(self.clients.events, self.function_arn)
        try:
            ctx = self._context(request, dry_run)
        except (AmiError, SettingsError, StepFailed) as exc:
            return self._finish(self._not_started(request, base, exc, dry_run, follow_up))
        base = replace(base, ami_id=ctx.goal.id)
        data_type = ctx.parameter.data_type_warning() if ctx.parameter else None
        if data_type:
            base = replace(base, warnings=(*base.warnings, data_type))
        log.bind(ami=ctx.goal.id)

        asg_plans, instance_plans, failures, base = self._plan(ctx, base)
        if dry_run:
            asg_entries = tuple(p.entry() for p in asg_plans)
            instance_entries = tuple(p.entry() for p in instance_plans)
            log_event("dry_run", asgs=sum(e.action == Action.PLANNED for e in asg_entries),
                      instances=sum(e.action == Action.PLANNED for e in instance_entries))
            return self._finish(_with_status(replace(base, asgs=asg_entries,
                                                     instances=instance_entries), len(failures)))

        # Refreshes first (they run on their own), then the standalone replacements, then
        # whatever waiting the groups need, so a group waited for never starves them.
        if any(p.action != PlanAction.SKIP or p.retry_at for p in instance_plans):
            # Before the first mutating call: a crash after it leaves the rule firing.
            follow_up.ensure(True, "replacements to drive")
        asg_run = asg.start_asgs(ctx, asg_plans)
        instance_outcome = standalone.apply_instances(
            ctx, instance_plans, durable_follow_up=follow_up.enabled)
        asg_outcome = asg.finish_asgs(asg_run)
        asg_entries, instance_entries = tuple(asg_outcome.entries), tuple(instance_outcome.entries)
        report = _with_status(replace(base, asgs=asg_entries, instances=instance_entries),
                              len(failures), asg_outcome.waiting)
        # A planning read that failed transiently is retried by a continuation too.
        retried = [f.sentence() for f in failures if f.transient]
        return self._finish(self._follow_up(request, report, (asg_outcome, instance_outcome),
                                            follow_up, retried))

    def _plan(self, ctx: RunContext, base: Report) -> tuple[
            tuple[asg.AsgPlan, ...], tuple[standalone.InstancePlan, ...], list[PlanningFailure],
            Report]:
        """Both subsystems' plans: one's failing read is reported (in ``base``'s reason)
        and does not stop the other; configuration that names nothing, as warnings."""
        asg_plans, asg_failure = plan_guarded("Auto Scaling groups", asg.plan_asgs, ctx)
        instance_plans, instance_failure = plan_guarded("standalone instances",
                                                        standalone.plan_instances, ctx)
        warnings, warnings_failure = ((), None) if asg_failure else plan_guarded(
            "Auto Scaling groups' configuration",
            lambda c: asg.configuration_warnings(c, asg_plans), ctx)
        failures = [f for f in (asg_failure, instance_failure) if f]
        if failures:
            base = replace(base, reason="; ".join(f.sentence() for f in failures),
                           code=Code.PLANNING_FAILED)
        if warnings or warnings_failure:
            failed = [warnings_failure.sentence()] if warnings_failure else []
            base = replace(base, warnings=(*base.warnings, *warnings, *failed))
        return asg_plans, instance_plans, failures, base

    # ------------------------------------------------------------ work left
    def _not_started(self, request: Request, base: Report,
                     exc: AmiError | SettingsError | StepFailed, dry_run: bool,
                     follow_up: FollowUp) -> Report:
        """The run could not establish its AMI or exclusions: a failed report naming why;
        work in flight still driven; and when a later run may succeed (an AWS error that
        is transient, an image still ``pending``), that run scheduled, the reason saying
        by what. A bad value is not retried: nothing changes until it is fixed."""
        transient = isinstance(exc, StepFailed) and exc.transient
        pending = isinstance(exc, AmiNotReady)
        log_event("step_failed" if isinstance(exc, StepFailed) else "invalid_input",
                  reason=str(exc), retry=transient or pending)
        failed = replace(base, reason=str(exc), code=_not_started_code(exc))
        if dry_run:   # nothing is scheduled for a plan: its caller runs it again
            return failed
        report = self._recover(request, failed, follow_up, retried=[str(exc)] if transient
                               else [], waits=[str(exc)] if pending else [])
        after = _next_run(report, follow_up) if transient or pending else NOT_RETRIED
        return replace(report, reason=f"{report.reason}; {after}")

    def _recover(self, request: Request, failed: Report, follow_up: FollowUp,
                 retried: list[str] | None = None, waits: list[str] | None = None) -> Report:
        """The run cannot go on, but work in flight must still reach an end state:
        resumed toward its recorded AMI, or rolled back when that AMI is gone."""
        static = Exclusions(self.settings.excluded_instances, self.settings.excluded_asgs)
        ctx = RunContext(settings=self.settings, clients=self.clients,
                         image=None,
                         parameter=None, exclusions=static, dry_run=False, clock=self.clock,
                         deadline=self.deadline, attempt=request.attempt,
                         account=self._account())
        try:
            with step(IN_FLIGHT_OBSERVATION):
                if in_flight_replacements(self.clients.ec2, self.settings.parameter_name):
                    follow_up.ensure(True, "replacements in flight while the run failed")
                outcome = recover_in_flight(ctx, static, failed.reason or "the run failed",
                                            durable_follow_up=follow_up.enabled)
        except StepFailed as exc:   # work may be in flight: keep the follow-up firing
            log_event("step_failed", reason=str(exc), retry=True)
            follow_up.ensure(True, str(exc))
            unobserved = replace(failed, reason=f"{failed.reason}; {exc}")
            again = [str(exc)]   # a refusal is not retried at once: the rule runs it
            report = self._follow_up(request, unobserved, (), follow_up,
                                     [*(retried or []), *(again if exc.transient else [])],
                                     [*(waits or []), *([] if exc.transient else again)])
            return replace(report, reason=f"{report.reason}; {_next_run(report, follow_up)}")
        if not outcome.entries:
            return self._follow_up(request, failed, (outcome,), follow_up, retried, waits)
        reason = (f"{failed.reason}; {len(outcome.entries)} replacement(s) in flight were "
                  "driven on regardless (see instances)")
        report = replace(failed, reason=reason, instances=outcome.entries)
        return self._follow_up(request, report, (outcome,), follow_up, retried, waits)

    def _follow_up(self, request: Request, report: Report, outcomes: tuple[Outcome, ...],
                   follow_up: FollowUp, retried: list[str] | None = None,
                   waits: list[str] | None = None) -> Report:
        """Whatever is left is scheduled: the follow-up rule stays enabled while any work
        is in flight (disabled once none is), and a continuation runs work that can move
        now (not work that only waits for a retry time, nor ``waits``, what only time
        brings, such as an image still pending: the rule runs those)."""
        reasons = ([o.continue_reason for o in outcomes if o.continue_reason]
                   + (retried or []) + (waits or []))
        if follow_up.available():
            left = bool(reasons) or self._in_flight_or_unknown(report)
            follow_up.ensure(left, "; ".join(reasons) or ("work in flight" if left
                                                        else "nothing in flight"))
        durable = follow_up.enabled
        ready = [o.continue_reason for o in outcomes if o.continue_reason
                 and not (durable and o.backing_off)] + (retried or [])
        if ready:
            report = replace(report, continuation=self._continue(request, report.dry_run,
                                                                 ready))
        if durable:
            report = replace(report, instances=tuple(_annotated(e, follow_up.note())
                                                     for e in report.instances))
        return report

    def _in_flight_or_unknown(self, report: Report) -> bool:
        """Whether work the rule could move is in flight (a rollback held for an operator
        is not); True when that cannot be read (the rule stays enabled: disabling it on a
        failed read could strand a replacement)."""
        try:
            with step(IN_FLIGHT_OBSERVATION):
                return bool(in_flight_replacements(self.clients.ec2,
                                                   self.settings.parameter_name, held=False))
        except StepFailed as exc:
            log_event("step_failed", reason=str(exc), retry=True)
            return True

    # ------------------------------------------------------------------ steps
    def _context(self, request: Request, dry_run: bool) -> RunContext:
        """The run's context, on the parameter's current value: an event names which
        parameter changed, never the image (an ``ami_id`` it carries must be that value)."""
        with step(AMI_CHECK):
            parameter = read_parameter(self.clients.ssm, self.settings.parameter_name)
            log_event("parameter_read", parameter=parameter.name, value=parameter.value,
                      version=parameter.version, event_version=request.event_version)
            # A read older than the event: raise, so Lambda's async retry runs it again.
            check_not_behind(parameter.name, request.event_version, parameter.version)
            if request.ami_id and request.ami_id != parameter.value:
                raise AmiError(f"the invocation's ami_id {request.ami_id} is not the current "
                               f"value of parameter {parameter.name} ({parameter.value[:100]}): "
                               "an event cannot choose the image")
            image = validate_ami(self.clients.ec2, parameter.value,
                                 f"parameter {parameter.name} (version {parameter.version})")
            check_owner(image, self.settings.allowed_ami_owners, self._account())
        with step(EXCLUSIONS_READ):
            exclusions = self._exclusions()
        return RunContext(settings=self.settings, clients=self.clients, image=image,
                          parameter=parameter, exclusions=exclusions, dry_run=dry_run,
                          clock=self.clock, deadline=self.deadline, attempt=request.attempt,
                          account=self._account())

    def _group_out_of_scope(self, group: str) -> str | None:
        """Why an event of the estate (an instance refresh of ``group`` ended) concerns no
        group of this deployment, or None: then the run re-derives the whole estate. A
        group that cannot be read (gone, a failed read) is not ignored: the run sees."""
        try:
            found = self.clients.autoscaling.describe_auto_scaling_groups(
                AutoScalingGroupNames=[group])["AutoScalingGroups"]
            exclusions = self._exclusions()
        except (ClientError, BotoCoreError, SettingsError):
            return None
        if not found:
            return None
        why = skip_reason(self.settings, exclusions, GROUP, group,
                          tag_map(found[0].get("Tags")))
        return f"an instance refresh of Auto Scaling group {group} ended: {why}" if why else None

    def _account(self) -> str | None:
        """This deployment's account, from the ARN it was invoked by (None: unknown)."""
        parts = (self.function_arn or "").split(":")
        return parts[4] if len(parts) > 4 and parts[4].isdigit() else None

    def _exclusions(self) -> Exclusions:
        """Static lists plus the exclusions parameter, read once per invocation (a failed
        read is not kept: a later step reads again)."""
        if self._read_exclusions is None:
            self._read_exclusions = self._exclusions_now()
        return self._read_exclusions

    def _exclusions_now(self) -> Exclusions:
        static = Exclusions(self.settings.excluded_instances, self.settings.excluded_asgs)
        name = self.settings.exclusions_parameter_name
        if not name:
            return static
        try:
            text = self.clients.ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as exc:
            if is_transient(exc):   # not a bad setting: reported as the step's failure
                raise
            raise SettingsError(f"EXCLUSIONS_PARAMETER_NAME: cannot read {name}: "
                                f"{error_code(exc)}") from None
        dynamic = parse_exclusions_document(text, f"exclusions parameter {name}")
        return Exclusions(static.instances | dynamic.instances, static.asgs | dynamic.asgs)

    def _continue(self, request: Request, dry_run: bool, reasons: list[str]) -> int | None:
        """Invoke our own alias asynchronously so unfinished work is never forgotten."""
        attempt = request.attempt + 1
        if not self.function_arn:
            log_event("continuation_unavailable", reasons=reasons)
            return None
        payload = continuation_event(self.settings.parameter_name, attempt, dry_run)
        self.clients.lambda_.invoke(FunctionName=self.function_arn, InvocationType="Event",
                                    Payload=json.dumps(payload).encode())
        log_event("continuation_sent", attempt=attempt, reasons=reasons,
                  function=self.function_arn)
        return attempt

    def _finish(self, report: Report) -> Report:
        """Log the report and publish its summary, failures (misconfigurations) first.

        A report too big for one log event or SNS message (256 KB) is logged in parts,
        then as a bounded summary (counts, failures first, "N more"), which is published.
        """
        full = report.to_dict()
        message: dict[str, Any] = failures_first(full)
        indent: int | None = 2
        if size(message, indent) <= SUMMARY_MAX_BYTES:
            log_event("report", **full)
        else:
            parts = entry_parts(full)
            for number, part in enumerate(parts, 1):
                log_event("report_part", part=number, parts=len(parts), **part)
            message, indent = bounded_summary(full, len(parts)), None
            log_event("report", **message)
        topic = self.settings.notification_topic_arn
        if topic and report.status != Status.IGNORED:
            try:
                self.clients.sns.publish(
                    TopicArn=topic,
                    Subject=f"ami-upgrade {report.status}: {report.parameter}"[:100],
                    Message=json.dumps(message, indent=indent, default=str))
            except (ClientError, BotoCoreError) as exc:   # the report matters more than the mail
                log_event("notification_failed", topic=topic, error=str(exc))
        self._report_to_hub(report)
        return report

    def _report_to_hub(self, report: Report) -> None:
        """A spoke sends its run's outcome to the hub's bus (the hub promotes on it): the
        status, and how many groups are still refreshing toward the AMI (``hub_counts``).

        Best effort: a report lost here is sent again by the next run (the reconcile).
        """
        bus = self.settings.hub_event_bus_arn
        if not bus or report.status == Status.IGNORED or self.clients.events is None:
            return
        detail = {"region": self.clients.ssm.meta.region_name, "parameter": report.parameter,
                  "ami_id": report.ami_id, "status": str(report.status),
                  "dry_run": report.dry_run, **hub_counts(report)}
        try:
            response = self.clients.events.put_events(Entries=[{
                "EventBusName": bus, "Source": HUB_REPORT_SOURCE,
                "DetailType": HUB_REPORT_DETAIL_TYPE, "Detail": json.dumps(detail)}])
        except (ClientError, BotoCoreError) as exc:
            log_event("hub_report_failed", bus=bus, error=str(exc))
            return
        if response.get("FailedEntryCount"):   # refused by the bus (its policy, a throttle)
            log_event("hub_report_failed", bus=bus,
                      error=str(response["Entries"][0].get("ErrorCode")))


# The event a spoke sends its hub (hub/driver.py reads it).
HUB_REPORT_SOURCE = "ami-upgrade.spoke"
HUB_REPORT_DETAIL_TYPE = "ami-upgrade report"


# A group whose refresh toward the run's AMI rolled back, now or in an earlier run.
ROLLED_BACK_CODES = frozenset({Code.REFRESH_ROLLED_BACK, Code.FAILED_BEFORE})


def hub_counts(report: Report) -> dict[str, int]:
    """What the hub needs beyond the status to count a spoke converged (its estate on
    the AMI): groups whose refresh toward it is started or still running, groups whose
    refresh toward it rolled back, and resources with work left."""
    return {"refreshing": sum(a.refreshing for a in report.asgs),
            "rolled_back": sum(a.code in ROLLED_BACK_CODES for a in report.asgs),
            "pending": sum((report.pending or {}).values())}


# After a bad value (not an AMI, a missing parameter, malformed exclusions) or a refusal:
# nothing new starts, and retrying cannot help until someone fixes it.
NOT_RETRIED = ("nothing new was started; not retried until this is fixed (the next "
               "change of the parameter, or the scheduled reconcile, runs again)")


def _next_run(report: Report, follow_up: FollowUp) -> str:
    """What runs a failed step again, for the report's reason."""
    if report.continuation is not None:
        return f"retried by continuation {report.continuation} now"
    if follow_up.enabled:
        return f"retried when the follow-up rule {follow_up.name} next fires (every 5 minutes)"
    return ("not retried automatically (no follow-up rule): the scheduled reconcile or the "
            "next change of the parameter runs it again")


def effective_dry_run(configured: bool, asked: bool | None) -> tuple[bool, str | None]:
    """The run's dry-run mode and, when the event asked for a real run on a dry-run stack,
    the warning saying it was not given: an event (direct or continuation) may make a run
    drier, never less dry than the stack's ``dryRun``."""
    if configured and asked is False:
        return True, ("the event asked for dry_run false; this deployment is a dry run "
                      "(DRY_RUN), and an event can only make a run drier")
    return configured or bool(asked), None


def _annotated(entry: InstanceEntry, note: str) -> InstanceEntry:
    """An entry still in flight says who runs it next (``next_run``)."""
    if entry.action == Action.IN_PROGRESS or entry.code == Code.PROGRESS_TAGS_KEPT:
        return replace(entry, details={**entry.details, "next_run": note})
    return entry


def _not_started_code(exc: AmiError | SettingsError | StepFailed) -> Code:
    """Why the run could not establish its AMI or exclusions, as the report's ``code``."""
    if isinstance(exc, AmiNotReady):
        return Code.AMI_NOT_READY
    if isinstance(exc, AmiError):
        return Code.AMI_REJECTED
    if isinstance(exc, SettingsError):
        return Code.SETTINGS_INVALID
    return Code.STEP_FAILED


def _with_status(report: Report, planning_failures: int, waiting: int = 0) -> Report:
    """The report with its status, and while work is left its counts (``pending``)."""
    status = overall_status(report.asgs, report.instances, planning_failures, waiting)
    left = pending(report.asgs, report.instances, waiting)
    return replace(report, status=status, pending=left if any(left.values()) else None)
