"""Standalone instances, the apply: drive the planned replacements, round-robin.

Each round reads the state of every replacement in flight in a few batched calls
(the shared observation, only what some machine can use, plus what each strategy
reads for its own machines), then each machine makes its calls one at a time, going
on only while it knows the last one's effect from the call itself, and calls asking
the same of several resources are made as one (see :meth:`_Runner.round`). While every
replacement only waits for status checks, those alone are polled. See ``plan.py`` for
why, and for the limits (parallelism, ``max_per_run``, the deadline) that leave work
to the next invocation. The runner knows machines only through :class:`~.core.Machine` and
strategies only through the registry.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..ami import describe_images
from ..aws import describe, describe_error, describe_instances, is_transient, tag_list
from ..batch import together_or_alone
from ..log import log_event
from ..outcomes import Code
from ..report import InstanceEntry
from ..run import Action, Outcome, RunContext
from ..tags import RETRY
from . import retry
from .core import ROLL_BACK, Call, Finish, InstancePlan, Machine, PlanAction, Step, Strategy, Wait
from .observation import Observation, instance_statuses, observe
from .plan import complete_at_start
from .registry import STRATEGIES

START_BUDGET_SECONDS = 240      # a typical stop + launch + status checks
POLL_SECONDS = 15
# Status checks take minutes (AWS's run every minute); polled alone, for every replacement
# waiting on them, at most twice a minute.
HEALTH_POLL_SECONDS = 30
MAX_CALLS_PER_REPLACEMENT = 400   # a machine that keeps calling without finishing is a bug
MAX_CHAIN = 6   # calls one machine makes in a round on effects it knows from the calls
# EC2's reads lag its writes: a call decided again, unchanged, after AWS answered it is
# waited for (its answer is the truth), then sent again at most every 15 s, 30 s, ...
LAG_FIRST_SECONDS = 15.0
LAG_CAP_SECONDS = 240.0


@dataclass
class _Sent:
    """A machine's last call AWS answered, and how long a repeat of it waits."""

    signature: str
    at: float
    wait: float = LAG_FIRST_SECONDS


def _signature(step: Call) -> str:
    return json.dumps([step.operation, step.kwargs], sort_keys=True, default=str)


@dataclass
class _Runner:
    ctx: RunContext
    durable_follow_up: bool = False
    entries: list[InstanceEntry] = field(default_factory=list)
    continue_reasons: list[str] = field(default_factory=list)
    root_devices: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    started: int = 0
    behind: bool = False    # a replacement ended on an older AMI: continue at once
    backing_off: bool = False
    owners: dict[str, Strategy] = field(default_factory=dict)   # old id -> its strategy
    # Backoff after transient errors: old id -> the retry (also in its tag, when written),
    # and the replacements whose last decision was to wait for one.
    retries: dict[str, retry.Retry] = field(default_factory=dict)
    plans: dict[str, InstancePlan] = field(default_factory=dict)
    gated: dict[str, retry.Retry] = field(default_factory=dict)
    statuses_read: dict[str, tuple[str, str]] | None = None   # by the last health poll
    unobserved_error: str = ""   # the read that stopped the rounds, if one did
    unobserved_refused: bool = False   # ... and AWS refused it (retrying at once cannot help)
    sent: dict[str, _Sent] = field(default_factory=dict)       # old id -> its last call
    profile_roles: dict[str, str | None] = field(default_factory=dict)  # plans' memo

    def root_device_for(self, ami_id: str) -> str:
        goal = self.ctx.image   # None on a recovery run: every target is read
        if goal is not None and ami_id == goal.id:
            return goal.root_device_name
        if ami_id not in self.root_devices:
            image = describe_images(self.ctx.clients.ec2, [ami_id]).get(ami_id)
            self.root_devices[ami_id] = image.root_device_name if image else ""
        return self.root_devices[ami_id]

    def machine(self, plan: InstancePlan) -> Machine:
        self.plans[plan.instance_id] = plan
        strategy = STRATEGIES[plan.strategy]
        self.owners[plan.instance_id] = strategy
        return strategy.machine(self.ctx, plan, self.root_device_for)

    def finish(self, machine: Machine, result: Finish) -> None:
        log_event("instance_result", **result.entry.to_dict())
        self.entries.append(result.entry)
        if result.entry.action == Action.IN_PROGRESS and self.durable_follow_up:
            # ended for now, tried again later: the rule stays enabled until then
            self.continue_reasons.append(f"{machine.old_id} is tried again later")
        current = self.ctx.image   # None on a recovery run: no current AMI to be behind
        if result.ami_id and current is not None and result.ami_id != current.id:
            self.behind = True
            self.continue_reasons.append(
                f"{machine.old_id} finished on {result.ami_id}, not the current {current.id}")

    def run(self, plans: list[InstancePlan]) -> None:
        queue = deque(plans)
        active: list[Machine] = []
        try:
            self.drive(queue, active)
        except (ClientError, BotoCoreError) as error:
            self.unobserved(error)
        self.yield_unfinished(active, queue)

    def unobserved(self, error: ClientError | BotoCoreError) -> None:
        """A read the rounds rest on failed (their observation, a status poll): no machine
        can decide without it, so the run stops here. Every replacement keeps its tags
        and is resumed by the next run; the entries and the continuation say why."""
        text = describe_error(error)
        self.unobserved_error = text
        self.unobserved_refused = not is_transient(error)
        log_event("observation_failed", error=text, transient=is_transient(error))
        self.continue_reasons.append(f"observing the replacements failed: {text}")

    def drive(self, queue: deque[InstancePlan], active: list[Machine]) -> None:
        """Start plans and run rounds until none is left, the deadline, or only waits."""
        ctx, settings = self.ctx, self.ctx.settings.standalone
        started = self.started = 0
        while True:
            fresh = False
            while queue and len(active) < settings.parallelism and not ctx.deadline.expired():
                if queue[0].action == PlanAction.REPLACE and (
                        started >= settings.max_per_run
                        or (started and not ctx.deadline.has_time_for(START_BUDGET_SECONDS))):
                    break   # the first start always happens, so short timeouts still progress
                plan = self.completed_plan(queue.popleft())
                if plan is None:
                    continue
                started = self.started = started + (plan.action == PlanAction.REPLACE)
                active.append(self.machine(plan))
                fresh = True
            if not active or ctx.deadline.expired():
                break
            if not fresh and self.health_only(active):   # poll the status checks alone
                if not ctx.deadline.has_time_for(HEALTH_POLL_SECONDS):
                    break
                ctx.clock.sleep(HEALTH_POLL_SECONDS)
                if not self.health_settled(active):
                    continue
            if not self.round(active) and not self.health_only(active):
                if not ctx.deadline.has_time_for(POLL_SECONDS) or self.all_gated_beyond(
                        active, queue):
                    break
                ctx.clock.sleep(POLL_SECONDS)

    def completed_plan(self, plan: InstancePlan) -> InstancePlan | None:
        """``plan`` made whole when it starts (its strategy's reads and the checks on
        them); None when that skips it, or cannot be read now (the next invocation
        plans it again)."""
        if plan.unchecked is None:
            return plan
        try:
            whole = complete_at_start(self.ctx, plan, self.profile_roles)
        except (ClientError, BotoCoreError) as error:
            reason = describe_error(error)
            log_event("instance_planning_failed", instance=plan.instance_id, reason=reason)
            if is_transient(error):
                self.entries.append(InstanceEntry(plan.instance_id, Action.IN_PROGRESS,
                                                  Code.NOT_STARTED, f"not started: {reason}; "
                                                  "continues in the next invocation"))
                self.continue_reasons.append(f"{plan.instance_id} could not be read")
            else:
                self.entries.append(InstanceEntry(plan.instance_id, Action.SKIPPED,
                                                  Code.UNREADABLE, f"could not be read: "
                                                  f"{reason}; nothing was changed"))
            return None
        if whole.action == PlanAction.SKIP:
            self.entries.append(whole.entry())
            return None
        return whole

    @staticmethod
    def health_only(active: list[Machine]) -> bool:
        """True when every replacement waits for status checks, and nothing else."""
        return all(m.waiting is not None and m.waiting.health and m.health_pending()
                   for m in active)

    def health_settled(self, active: list[Machine]) -> bool:
        """While every replacement only waits for status checks: one read of those
        (instead of a whole round); True when a round is due (a check passed or
        failed, a wait reached its bound, or something else is waited for)."""
        self.statuses_read = None
        now = self.ctx.clock.monotonic()
        pending: list[str] = []
        for m in active:
            if m.waiting is None or not m.waiting.health:
                return True
            m.note_health_wait(now)
            ids = m.health_pending()
            if not ids:
                return True
            pending += ids
        statuses = self.statuses_read = instance_statuses(self.ctx.clients.ec2, pending)
        return any(statuses.get(i) == ("ok", "ok") or "impaired" in statuses.get(i, ())
                   for i in pending)

    def all_gated_beyond(self, active: list[Machine], queue: deque[InstancePlan]) -> bool:
        """True when nothing can move before the deadline: every replacement waits for a
        retry time later than this invocation can wait, and none is left to start."""
        if not self.durable_follow_up or queue or any(m.old_id not in self.gated
                                                      for m in active):
            return False
        soonest = min(self.gated[m.old_id].next_at for m in active)
        return (soonest - self.ctx.clock.now()).total_seconds() > max(
            self.ctx.deadline.remaining() - self.ctx.deadline.margin_seconds, 0)

    def round(self, active: list[Machine]) -> bool:
        """Every machine steps from one shared observation; True when any made progress.

        The round goes in phases: in each, every machine still stepping decides its next
        step, and the calls are made in machine order, those that take several resources
        and ask the same (the same tags, stopping or terminating instances) as one call
        (``MERGED``). A machine goes on to the next phase only while it knows its last
        call's effect from the call itself (``Machine.effect``: its own tag writes, a
        detach or attach begun), up to ``MAX_CHAIN`` calls; anything that depends on AWS
        moving on (a stop, a boot) waits for the next round.
        """
        ec2 = self.ctx.clients.ec2
        observed = observe(ec2, [m.old_id for m in active], with_addresses=any(
            self.owners[m.old_id].needs_addresses for m in active),
            needs={m.old_id: m.needs() for m in active}, statuses_read=self.statuses_read)
        self.statuses_read = None
        records: dict[str, list[dict[str, Any]]] = {}
        for strategy in STRATEGIES.values():
            records.update(strategy.read(ec2, [m.old_id for m in active
                                               if self.owners[m.old_id] is strategy]))
        progressed = False
        now = self.ctx.clock.monotonic()
        for m in active:
            if m.waiting is not None and m.waiting.health:
                m.note_health_wait(now)
        going = {m.old_id: (m, observed[m.old_id]) for m in active}
        chained: dict[str, int] = {}
        while going:
            calls: list[tuple[Machine, Observation, Call]] = []
            for m, obs in list(going.values()):
                step = m.step(obs, records.get(m.old_id, []))
                if isinstance(step, Finish) and step.no_trace:
                    obs, step = self.confirm_no_trace(m, step)
                self.gated.pop(m.old_id, None)
                if isinstance(step, Call):
                    gate = self.gate(m, step, obs)
                    if gate is not None:
                        self.gated[m.old_id] = gate
                        step = Wait(gate.describe())
                    else:
                        step = self.unless_lagging(m, step)
                if isinstance(step, Wait):
                    m.waiting = step
                    if step.health:
                        m.note_health_wait(now)
                    del going[m.old_id]
                    continue
                progressed = True
                m.waiting = None
                if isinstance(step, Call):
                    calls.append((m, obs, step))
                    continue
                self.finish(m, step)
                active.remove(m)
                del going[m.old_id]
            for batch in _merged(calls):
                for (m, _, _), (result, after) in zip(batch, self.call_all(batch),
                                                      strict=True):
                    chained[m.old_id] = chained.get(m.old_id, 0) + 1
                    if result is not None:
                        self.finish(m, result)
                        active.remove(m)
                        del going[m.old_id]
                    elif after is None or chained[m.old_id] >= MAX_CHAIN:
                        del going[m.old_id]
                    else:
                        going[m.old_id] = (m, after)
        return progressed

    def call_all(self, batch: list[tuple[Machine, Observation, Call]]
                 ) -> list[tuple[Finish | None, Observation | None]]:
        """The calls of ``batch`` (one step each) as one call; if AWS refuses it, each
        alone (so a refusal is that machine's only)."""
        if len(batch) == 1:
            m, obs, step = batch[0]
            return [self.call(m, step, obs)]
        over = [self.over_limit(m) for m, _, _ in batch]
        if any(over):
            return [(finish, None) if finish is not None else self.call(m, step, obs)
                    for finish, (m, obs, step) in zip(over, batch, strict=True)]
        operation = batch[0][2].operation
        key = MERGED[operation]

        def together(calls: Sequence[tuple[Machine, Observation, Call]]) -> Any:
            kwargs = {**calls[0][2].kwargs, key: [r for _, _, step in calls
                                                  for r in step.kwargs[key]]}
            for m, _, step in calls:
                log_event("replacement_step", instance=m.old_id, step=step.step,
                          operation=step.operation, merged=len(calls))
            return getattr(self.ctx.clients.ec2, operation)(**kwargs)

        def answered(calls: Sequence[tuple[Machine, Observation, Call]], response: Any
                     ) -> list[tuple[Finish | None, Observation | None]]:
            results: list[tuple[Finish | None, Observation | None]] = []
            for m, obs, step in calls:
                self.answered(m, step)
                finished = m.succeeded(step, obs, response)
                results.append((finished, None) if finished is not None
                               else (None, m.effect(step, obs, response)))
            return results

        def refused(calls: Sequence[tuple[Machine, Observation, Call]],
                    error: ClientError | BotoCoreError) -> None:
            log_event("merged_call_failed", operation=operation,
                      instances=[m.old_id for m, _, _ in calls], error=str(error))
            for m, _, _ in calls:    # counted again when made alone
                self.calls[m.old_id] -= 1

        return together_or_alone(batch, together, answered,
                                 lambda call: self.call(call[0], call[2], call[1]), refused)

    def unless_lagging(self, m: Machine, step: Call) -> Call | Wait:
        """``step``, or a Wait when it repeats the machine's last answered call before
        that call's effect could show (EC2's reads lag its writes): the answer said it
        was done. Sent again once the wait is over, each wait twice the last."""
        sent = self.sent.get(m.old_id)
        if sent is None or sent.signature != _signature(step):
            return step
        if self.ctx.clock.monotonic() - sent.at < sent.wait:
            log_event("replacement_effect_not_visible", instance=m.old_id, step=step.step)
            return Wait(f"'{step.step}' was answered; waiting for its effect to show (EC2's "
                        "reads lag its writes)")
        sent.wait = min(sent.wait * 2, LAG_CAP_SECONDS)
        return step

    def answered(self, m: Machine, step: Call) -> None:
        """Note ``step`` as ``m``'s last call AWS answered (see ``unless_lagging``)."""
        sent, signature = self.sent.get(m.old_id), _signature(step)
        wait = sent.wait if sent is not None and sent.signature == signature \
            else LAG_FIRST_SECONDS
        self.sent[m.old_id] = _Sent(signature, self.ctx.clock.monotonic(), wait)

    def over_limit(self, m: Machine) -> Finish | None:
        """Counts one more call of ``m``; the failure when it exceeds the bound."""
        count = self.calls[m.old_id] = self.calls.get(m.old_id, 0) + 1
        if count > MAX_CALLS_PER_REPLACEMENT:
            return Finish(InstanceEntry(m.old_id, Action.FAILED, Code.PROGRESS_TAGS_KEPT,
                                        f"no progress after {count - 1} calls; progress tags "
                                        "kept for inspection"))
        return None

    def call(self, m: Machine, step: Call, obs: Observation
             ) -> tuple[Finish | None, Observation | None]:
        """Make ``step``'s call: the finish it led to, or the observation with its known
        effect (None when the machine must observe again before its next step)."""
        over = self.over_limit(m)
        if over is not None:
            return over, None
        log_event("replacement_step", instance=m.old_id, step=step.step,
                  operation=step.operation)
        try:
            response = getattr(self.ctx.clients.ec2, step.operation)(**step.kwargs)
        except (ClientError, BotoCoreError) as error:
            if is_transient(error):
                return self.retry_later(m, step, error, obs), None
            return m.refused(step, _client_error(error, step.operation), obs), None
        self.answered(m, step)
        finished = m.succeeded(step, obs, response)
        if finished is not None:
            return finished, None
        return None, m.effect(step, obs, response)

    def confirm_no_trace(self, m: Machine, step: Finish) -> tuple[Observation, Step]:
        """Before concluding from an absence (another invocation may have been midway
        when this round read): observe again; if still no trace, report where the
        volumes are, which names the instance that finished it."""
        ec2 = self.ctx.clients.ec2
        owner = self.owners[m.old_id]
        obs = observe(ec2, [m.old_id], with_addresses=owner.needs_addresses)[m.old_id]
        again = m.step(obs, owner.read(ec2, [m.old_id]).get(m.old_id, []))
        if not isinstance(again, Finish) or not again.no_trace or again.ami_id:
            return obs, again
        volumes = sorted({*self.plans[m.old_id].volumes, *m.seen_volumes()})
        holders = {a.get("InstanceId") for v in (describe(
            ec2, "describe_volumes", "Volumes", ids=volumes, id_filter="volume-id")
            if volumes else []) for a in v.get("Attachments", [])}
        holders.discard(m.old_id)
        if len(holders) != 1 or None in holders:
            return obs, again
        (holder,) = holders
        found = describe_instances(ec2, ids=[str(holder)])
        if not found or found[0]["State"]["Name"] not in ("pending", "running"):
            return obs, again
        image = found[0].get("ImageId", "")
        return obs, Finish(InstanceEntry(
            m.old_id, Action.REPLACED, Code.REPLACED, f"replaced by {holder} on {image} "
            "(finished by another invocation)", new_instance_id=str(holder),
            volumes=tuple(volumes)), ami_id=image)

    def gate(self, m: Machine, step: Call, obs: Observation) -> retry.Retry | None:
        """The backoff this very step is under, while its time has not come."""
        pending = retry.recorded(obs) or self.retries.get(m.old_id)
        if pending is None or pending.step != step.step:
            return None
        return pending if self.ctx.clock.now() < pending.next_at else None

    def retry_later(self, m: Machine, step: Call, error: ClientError | BotoCoreError,
                    obs: Observation) -> Finish | None:
        """A transient error: the same step again after a backoff, recorded in a tag; past
        the bound, while the old instance is down, the replacement rolls back (the
        machine sees the transient code, so it records no failed AMI)."""
        reason = describe_error(error, step.operation)
        prior = retry.recorded(obs) or self.retries.get(m.old_id)
        pending = retry.next_retry(prior, step.step, reason, self.ctx.clock.now())
        if (pending.attempt > retry.MAX_FORWARD_ATTEMPTS and step.on_error == ROLL_BACK
                and not retry.in_rollback(obs) and retry.down(obs)):
            log_event("transient_error_persisted", instance=m.old_id, step=step.step,
                      attempts=pending.attempt - 1, reason=reason)
            return m.refused(step, _client_error(error, step.operation, f" (transient, "
                                                 f"{pending.attempt - 1} attempts)"), obs)
        self.retries[m.old_id] = self.gated[m.old_id] = pending
        m.waiting = Wait(pending.describe())
        log_event("replacement_retry_scheduled", instance=m.old_id, step=step.step,
                  attempt=pending.attempt, next_at=retry.iso(pending.next_at), reason=reason)
        where = retry.holder(obs)
        if where is not None:
            try:
                tags: Any = tag_list({RETRY: pending.value()})
                self.ctx.clients.ec2.create_tags(Resources=[where[0]], Tags=tags)
            except (ClientError, BotoCoreError) as failed:   # kept in memory for this run
                log_event("retry_not_recorded", instance=m.old_id, error=str(failed))
        return None

    def yield_unfinished(self, active: list[Machine], queue: deque[InstancePlan]) -> None:
        for m in active:
            tag = m.health_tag()
            if tag is not None:
                try:
                    getattr(self.ctx.clients.ec2, tag.operation)(**tag.kwargs)
                except ClientError as error:   # next invocation waits the full time again
                    log_event("health_wait_not_recorded", instance=m.old_id, error=str(error))
            entry = m.progress_entry()
            if self.unobserved_error:
                entry = replace(entry, reason=f"{entry.reason}; stopped: {self.unobserved_error}"
                                              "; resumed from its tags by the next run")
            self.entries.append(entry)
        if active:
            self.continue_reasons.append(f"{len(active)} replacement(s) still in flight")
        # Only waiting for retry times left (an immediate continuation would not move it),
        # or a refused read: the rule runs it, not a continuation.
        self.backing_off = (not queue and not self.behind
                            and all(m.old_id in self.gated for m in active)
                            ) or self.unobserved_refused
        for plan in queue:
            why = ("max_per_run reached" if plan.action == PlanAction.REPLACE and self.started
                   >= self.ctx.settings.standalone.max_per_run else "deadline reached")
            self.entries.append(InstanceEntry(plan.instance_id, Action.IN_PROGRESS,
                                              Code.NOT_STARTED, f"not started yet ({why}); "
                                              "continues in the next invocation",
                                              volumes=plan.volumes))
        if queue:
            self.continue_reasons.append(f"{len(queue)} replacement(s) not started yet")


def apply_instances(ctx: RunContext, plans: tuple[InstancePlan, ...],
                    durable_follow_up: bool = False) -> Outcome[InstanceEntry]:
    """Drive ``plans``. ``durable_follow_up``: the follow-up rule is enabled, so an
    invocation whose work all waits for retry times later than it can wait stops
    early (the rule runs it at that time) instead of polling until its deadline, and
    replacements to be tried again later keep it enabled (without the rule, the next
    event or the scheduled reconcile tries them; no continuation waits for them)."""
    runner = _Runner(ctx, durable_follow_up=durable_follow_up)
    work = [p for p in plans if p.action != PlanAction.SKIP]
    runner.run(work)
    skipped = [p.entry() for p in plans if p.action == PlanAction.SKIP]
    waiting = [e.id for e in skipped if e.action == Action.IN_PROGRESS]
    if waiting and durable_follow_up:   # a transient rollback's retry time: the rule runs it
        runner.continue_reasons.append(f"{len(waiting)} replacement(s) wait for a retry time")
    order = {p.instance_id: n for n, p in enumerate(plans)}
    entries = sorted([*runner.entries, *skipped], key=lambda e: order.get(e.id, len(order)))
    reason = "; ".join(runner.continue_reasons) or None
    return Outcome(tuple(entries), reason, backing_off=runner.backing_off)


# Calls that take several resources: merged when machines of a round ask the same of each
# (operation -> the list of resources).
MERGED = {"create_tags": "Resources", "delete_tags": "Resources",
          "stop_instances": "InstanceIds", "terminate_instances": "InstanceIds"}


def _merged(calls: list[tuple[Machine, Observation, Call]]
            ) -> list[list[tuple[Machine, Observation, Call]]]:
    """``calls`` in batches to make as one call each, in the order of their first machine:
    the same mergeable operation with the same other parameters and error handling."""
    batches: dict[str, list[tuple[Machine, Observation, Call]]] = {}
    for entry in calls:
        step = entry[2]
        key = MERGED.get(step.operation)
        if key is None:
            batches[f"{len(batches)}"] = [entry]
            continue
        same = json.dumps([step.operation, step.on_error, {
            k: v for k, v in step.kwargs.items() if k != key}], sort_keys=True, default=str)
        batches.setdefault(same, []).append(entry)
    return list(batches.values())


def _client_error(error: ClientError | BotoCoreError, operation: str,
                  note: str = "") -> ClientError:
    """``error`` as the ClientError machines decide from (botocore's own errors too)."""
    if isinstance(error, ClientError) and not note:
        return error
    if isinstance(error, ClientError):
        body: Any = dict(error.response.get("Error", {}))
        body["Message"] = f"{body.get('Message', '')}{note}"
        return ClientError({**error.response, "Error": body}, error.operation_name)
    return ClientError({"Error": {"Code": type(error).__name__, "Message": f"{error}{note}"}},
                       "".join(p.title() for p in operation.split("_")))

