"""Standalone instances, the apply: drive the planned replacements, round-robin.

Each round reads the state of every replacement in flight in a few batched calls
(the shared observation, plus what each strategy reads for its own machines), then
each machine makes at most one mutating call; see ``plan.py`` for why, and for the
limits (parallelism, ``max_per_run``, the deadline) that leave work to the next
invocation. The runner knows machines only through :class:`~.core.Machine` and
strategies only through the registry.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..ami import describe_images
from ..log import log_event
from ..report import InstanceEntry
from ..run import Action, Outcome, RunContext
from .core import Call, Finish, InstancePlan, Machine, PlanAction, Strategy, Wait
from .observation import Observation, observe
from .registry import STRATEGIES

START_BUDGET_SECONDS = 240      # a typical stop + launch + status checks
POLL_SECONDS = 15
MAX_CALLS_PER_REPLACEMENT = 400   # a machine that keeps calling without finishing is a bug


@dataclass
class _Runner:
    ctx: RunContext
    entries: list[InstanceEntry] = field(default_factory=list)
    continue_reasons: list[str] = field(default_factory=list)
    root_devices: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    started: int = 0
    owners: dict[str, Strategy] = field(default_factory=dict)   # old id -> its strategy

    def root_device_for(self, ami_id: str) -> str:
        if ami_id == self.ctx.image.id:
            return self.ctx.image.root_device_name
        if ami_id not in self.root_devices:
            image = describe_images(self.ctx.clients.ec2, [ami_id]).get(ami_id)
            self.root_devices[ami_id] = image.root_device_name if image else ""
        return self.root_devices[ami_id]

    def machine(self, plan: InstancePlan) -> Machine:
        strategy = STRATEGIES[plan.strategy]
        self.owners[plan.instance_id] = strategy
        return strategy.machine(self.ctx, plan, self.root_device_for)

    def finish(self, machine: Machine, result: Finish) -> None:
        log_event("instance_result", **result.entry.to_dict())
        self.entries.append(result.entry)
        if result.ami_id and result.ami_id != self.ctx.image.id:
            self.continue_reasons.append(
                f"{machine.old_id} finished on {result.ami_id}, not the current "
                f"{self.ctx.image.id}")

    def run(self, plans: list[InstancePlan]) -> None:
        ctx, settings = self.ctx, self.ctx.settings.standalone
        queue = deque(plans)
        active: list[Machine] = []
        started = self.started = 0
        while True:
            while queue and len(active) < settings.parallelism and not ctx.deadline.expired():
                if queue[0].action == PlanAction.REPLACE and (
                        started >= settings.max_per_run
                        or (started and not ctx.deadline.has_time_for(START_BUDGET_SECONDS))):
                    break   # the first start always happens, so short timeouts still progress
                plan = queue.popleft()
                started = self.started = started + (plan.action == PlanAction.REPLACE)
                active.append(self.machine(plan))
            if not active or ctx.deadline.expired():
                break
            if not self.round(active):
                if not ctx.deadline.has_time_for(POLL_SECONDS):
                    break
                ctx.clock.sleep(POLL_SECONDS)
        self.yield_unfinished(active, queue)

    def round(self, active: list[Machine]) -> bool:
        """Each machine makes at most one call; True when any made progress."""
        ec2 = self.ctx.clients.ec2
        observed = observe(ec2, [m.old_id for m in active], with_addresses=any(
            self.owners[m.old_id].needs_addresses for m in active))
        records: dict[str, list[dict[str, Any]]] = {}
        for strategy in STRATEGIES.values():
            records.update(strategy.read(ec2, [m.old_id for m in active
                                               if self.owners[m.old_id] is strategy]))
        progressed = False
        now = self.ctx.clock.monotonic()
        for m in active:
            if m.waiting is not None and m.waiting.health:
                m.note_health_wait(now)
        for m in list(active):
            obs: Observation = observed[m.old_id]
            step = m.step(obs, records.get(m.old_id, []))
            if isinstance(step, Wait):
                m.waiting = step
                if step.health:
                    m.note_health_wait(now)
                continue
            progressed = True
            m.waiting = None
            if isinstance(step, Call):
                result = self.call(m, step, obs)
                if result is None:
                    continue
                step = result
            self.finish(m, step)
            active.remove(m)
        return progressed

    def call(self, m: Machine, step: Call, obs: Observation) -> Finish | None:
        count = self.calls[m.old_id] = self.calls.get(m.old_id, 0) + 1
        if count > MAX_CALLS_PER_REPLACEMENT:
            return Finish(InstanceEntry(m.old_id, Action.FAILED, f"no progress after {count - 1} "
                                        "calls; progress tags kept for inspection"))
        log_event("replacement_step", instance=m.old_id, step=step.step,
                  operation=step.operation)
        try:
            response = getattr(self.ctx.clients.ec2, step.operation)(**step.kwargs)
        except ClientError as error:
            return m.refused(step, error, obs)
        return m.succeeded(step, obs, response)

    def yield_unfinished(self, active: list[Machine], queue: deque[InstancePlan]) -> None:
        for m in active:
            tag = m.health_tag()
            if tag is not None:
                try:
                    getattr(self.ctx.clients.ec2, tag.operation)(**tag.kwargs)
                except ClientError as error:   # next invocation waits the full time again
                    log_event("health_wait_not_recorded", instance=m.old_id, error=str(error))
            self.entries.append(m.progress_entry())
        if active:
            self.continue_reasons.append(f"{len(active)} replacement(s) still in flight")
        for plan in queue:
            why = ("max_per_run reached" if plan.action == PlanAction.REPLACE and self.started
                   >= self.ctx.settings.standalone.max_per_run else "deadline reached")
            self.entries.append(InstanceEntry(plan.instance_id, Action.IN_PROGRESS,
                                              f"not started yet ({why}); continues in the "
                                              "next invocation", volumes=plan.volumes))
        if queue:
            self.continue_reasons.append(f"{len(queue)} replacement(s) not started yet")


def apply_instances(ctx: RunContext, plans: tuple[InstancePlan, ...]
                    ) -> Outcome[InstanceEntry]:
    runner = _Runner(ctx)
    work = [p for p in plans if p.action != PlanAction.SKIP]
    runner.run(work)
    skipped = [p.entry() for p in plans if p.action == PlanAction.SKIP]
    order = {p.instance_id: n for n, p in enumerate(plans)}
    entries = sorted([*runner.entries, *skipped], key=lambda e: order.get(e.id, len(order)))
    reason = "; ".join(runner.continue_reasons) or None
    return Outcome(tuple(entries), reason)

