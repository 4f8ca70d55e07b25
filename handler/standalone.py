"""Standalone instances: plan their replacement, then drive the replacements.

Planning (reads only) finds the instances in scope and the replacements already
in flight. In-flight work is found by its tags (``ami-upgrade:in-flight`` on the
old instance, the new one and moved volumes), so it is resumed even when the old
instance no longer looks in scope or was excluded meanwhile (stopping halfway
would leave it down). Every other instance gets a reason when it is skipped
(terminated instances are not reported): Auto Scaling member, excluded, out of
scope, terminating, kept after an earlier replacement, already on the AMI, other
architecture or platform, an earlier failure on this AMI, not running,
instance-store data, Spot, several network interfaces, protection flags; for
``replace-root-volume``, AWS's preconditions (with ``fallback_to_relaunch``, a
relaunch instead).

Applying runs the per-instance state machines (``replacement.Relaunch``,
``root_volume.RootVolumeReplacement``) round-robin in one thread: each round
reads the state of every replacement in flight in a few batched calls, then
each machine makes at most one mutating call. So at most
``StandaloneSettings.parallelism`` replacements are in flight, the order of
calls is deterministic (fault injection and crash points are reproducible),
and stopping between any two calls is safe. After the first, new replacements
start only while ``START_BUDGET_SECONDS`` remain before the deadline's margin,
and up to ``max_per_run`` per invocation; what is left is reported
``in_progress`` and continues in the follow-up invocation the engine sends.
Two invocations running at once could both drive the same replacement; the
deterministic ClientToken keeps that from launching twice, but the function is
meant to run one invocation at a time (reserved concurrency 1).

Private IP preservation (``preserve_private_ip``): the new instance can take the
old one's primary private IP only once the old instance is terminated, which
removes the way back. So the order changes: after the volumes are detached, the
launch request (the captured shape with the IP) is kept in a launch template
``ami-upgrade-<old id>``, the old instance is terminated, then the new one is
launched from that request. Up to the termination a failure still rolls back;
after it, a failure cannot: the replacement rolls forward (a failed launch is
retried by the next invocation, from the template; a new instance that fails its
status checks keeps the volumes and is reported for an operator). Without it (the
default) the old instance stays stopped, with its IP, until the new one is
healthy, and every failure rolls back. ``replace-root-volume`` keeps the instance
and so every IP, with no such trade-off.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .ami import Image, describe_images, incompatibility
from .instance_shape import InstanceShape, capture, relaunch_blocker
from .log import log_event
from .observation import LIVE_STATES, Observation, describe_instances, observe
from .replacement import Call, Finish, Relaunch, Wait
from .report import ACTION_FAILED, IN_PROGRESS, PLANNED, SKIPPED, InstanceEntry
from .root_volume import RootVolumeReplacement, describe_tasks, precondition_failure
from .scope import skip_reason
from .tags import (
    ASG_MEMBER,
    FAILED_AMI,
    FAILURE_REASON,
    HOME_INSTANCE,
    IN_FLIGHT,
    PARAMETER,
    REPLACED_BY,
    REPLACES,
    ROOT_VOLUME_AMI,
    STRATEGY,
    TARGET_AMI,
    tag_map,
)

if TYPE_CHECKING:   # engine imports this module
    from .engine import Outcome, RunContext

RELAUNCH, ROOT_VOLUME = "relaunch", "replace-root-volume"
REPLACE, RESUME, SKIP = "replace", "resume", "skip"
START_BUDGET_SECONDS = 240      # a typical stop + launch + status checks
POLL_SECONDS = 15
MAX_CALLS_PER_REPLACEMENT = 400   # a machine that keeps calling without finishing is a bug


@dataclass(frozen=True)
class InstancePlan:
    instance_id: str
    action: str                      # REPLACE, RESUME or SKIP
    reason: str
    strategy: str = RELAUNCH
    shape: InstanceShape | None = None
    volumes: tuple[str, ...] = ()

    def entry(self) -> InstanceEntry:
        if self.action == SKIP:
            return InstanceEntry(self.instance_id, SKIPPED, self.reason)
        return InstanceEntry(self.instance_id, PLANNED, self.reason, volumes=self.volumes,
                             details={"strategy": self.strategy})


# --------------------------------------------------------------------------- planning


def _in_flight(ec2, parameter: str) -> dict[str, str]:
    """Old instance ID -> strategy, for every replacement this deployment has in flight."""
    found: dict[str, str] = {}
    for data in describe_instances(ec2, [{"Name": f"tag:{IN_FLIGHT}", "Values": [parameter]},
                                         {"Name": "instance-state-name",
                                          "Values": [*LIVE_STATES, "shutting-down"]}]):
        tags = tag_map(data.get("Tags"))
        if REPLACES in tags:
            found.setdefault(tags[REPLACES], RELAUNCH)
        elif ROOT_VOLUME_AMI in tags:
            found[data["InstanceId"]] = ROOT_VOLUME
        else:
            found[data["InstanceId"]] = RELAUNCH
    pages = ec2.get_paginator("describe_volumes").paginate(
        Filters=[{"Name": f"tag:{IN_FLIGHT}", "Values": [parameter]}])
    for page in pages:
        for volume in page["Volumes"]:
            home = tag_map(volume.get("Tags")).get(HOME_INSTANCE)
            if home:
                found.setdefault(home, RELAUNCH)
    return found


def _candidates(ec2, settings) -> list[dict]:
    filters = [{"Name": "instance-state-name", "Values": [*LIVE_STATES, "shutting-down"]}]
    if settings.scope == "tagged":
        filters.append({"Name": f"tag:{PARAMETER}", "Values": [settings.parameter_name]})
    return sorted(describe_instances(ec2, filters), key=lambda i: i["InstanceId"])


def _instance_store_types(ec2, types: set[str]) -> set[str]:
    if not types:
        return set()
    found = set()
    pages = ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=sorted(types))
    for page in pages:
        for t in page["InstanceTypes"]:
            if t.get("InstanceStorageSupported"):
                found.add(t["InstanceType"])
    return found


@dataclass
class _Planner:
    ctx: RunContext
    images: dict[str, Image] = field(default_factory=dict)
    instance_store: set[str] = field(default_factory=set)

    def evaluate(self, inst: dict) -> InstancePlan:
        ctx = self.ctx
        settings = ctx.settings
        goal = ctx.image
        iid, tags = inst["InstanceId"], tag_map(inst.get("Tags"))
        state = inst["State"]["Name"]

        def skip(reason: str) -> InstancePlan:
            return InstancePlan(iid, SKIP, reason)

        if ASG_MEMBER in tags:
            return skip(f"belongs to Auto Scaling group {tags[ASG_MEMBER]} (the group's entry "
                        "says what happens to it)")
        out = skip_reason(settings, ctx.exclusions, "instance", iid, tags)
        if out:
            return skip(out)
        if state == "shutting-down":
            return skip("terminating")
        if REPLACED_BY in tags:
            return skip(f"kept stopped after being replaced by {tags[REPLACED_BY]}")
        if inst["ImageId"] == goal.id:
            return skip(f"already on {goal.id}")
        why = incompatibility(self.images.get(inst["ImageId"]), inst["ImageId"], goal)
        if why:
            return skip(why)
        if tags.get(FAILED_AMI) == goal.id:
            return skip(f"an earlier replacement onto {goal.id} failed and was rolled back "
                        f"({tags.get(FAILURE_REASON, 'no reason recorded')}); remove tag "
                        f"{FAILED_AMI} to retry")
        if state != "running":
            return skip(f"state is {state}: only running instances are replaced")
        strategy = (tags.get(STRATEGY) or settings.standalone.strategy).strip()
        if strategy not in (RELAUNCH, ROOT_VOLUME):
            return skip(f"tag {STRATEGY} has unknown value {strategy!r} (expected {RELAUNCH} "
                        f"or {ROOT_VOLUME})")
        note = ""
        if strategy == ROOT_VOLUME:
            failure = precondition_failure(inst, self.images.get(inst["ImageId"]), goal)
            if failure is None:
                return InstancePlan(iid, REPLACE, f"replace the root volume in place from "
                                    f"{goal.id}", ROOT_VOLUME)
            if not settings.standalone.fallback_to_relaunch:
                return skip(failure)
            note = f" (fallback: {failure})"
        shape = capture(ctx.clients.ec2, inst)
        blocker = relaunch_blocker(inst, shape, inst["InstanceType"] in self.instance_store,
                                   settings.standalone.keep_old_instance,
                                   goal.root_device_name)
        if blocker:
            return skip(blocker)
        if settings.standalone.preserve_private_ip and not shape.private_ip:
            return skip("preserve_private_ip is set but the instance has no private IP")
        volumes = tuple(v.volume_id for v in shape.data_volumes)
        return InstancePlan(iid, REPLACE, f"relaunch on {goal.id}, moving "
                            f"{len(volumes)} data volume(s){note}", RELAUNCH, shape, volumes)


def plan_instances(ctx: RunContext) -> tuple[InstancePlan, ...]:
    """Resumes of replacements in flight first, then every other instance considered."""
    ec2 = ctx.clients.ec2
    in_flight = _in_flight(ec2, ctx.settings.parameter_name)
    candidates = _candidates(ec2, ctx.settings)
    by_id = {i["InstanceId"]: i for i in candidates}
    missing = sorted(set(in_flight) - set(by_id))
    if missing:   # in flight but no longer in scope (or gone): still ours to finish
        for data in describe_instances(ec2, [{"Name": "instance-id", "Values": missing}]):
            by_id.setdefault(data["InstanceId"], data)
    new_in_flight = {i["InstanceId"] for i in candidates
                     if tag_map(i.get("Tags")).get(IN_FLIGHT) == ctx.settings.parameter_name
                     and REPLACES in tag_map(i.get("Tags"))}
    planner = _Planner(ctx)
    planner.images = describe_images(ec2, {i["ImageId"] for i in by_id.values()})
    planner.instance_store = _instance_store_types(ec2, {i["InstanceType"]
                                                         for i in candidates})
    plans = []
    for old_id, strategy in sorted(in_flight.items()):
        inst = by_id.get(old_id)
        alive = inst is not None and inst["State"]["Name"] in LIVE_STATES
        shape = capture(ec2, inst) if alive and strategy == RELAUNCH else None
        tags = tag_map(inst.get("Tags")) if inst else {}
        target = tags.get(TARGET_AMI) or tags.get(ROOT_VOLUME_AMI) or "its target AMI"
        plans.append(InstancePlan(old_id, RESUME, f"resume the {strategy} onto {target} "
                                  "already in flight", strategy, shape,
                                  tuple(v.volume_id for v in shape.data_volumes) if shape
                                  else ()))
    for inst in candidates:
        iid = inst["InstanceId"]
        if iid in in_flight or iid in new_in_flight:
            continue
        plan = planner.evaluate(inst)
        log_event("instance_planned", instance=iid, action=plan.action, reason=plan.reason)
        plans.append(plan)
    return tuple(plans)


# --------------------------------------------------------------------------- applying


@dataclass
class _Runner:
    ctx: RunContext
    entries: list[InstanceEntry] = field(default_factory=list)
    continue_reasons: list[str] = field(default_factory=list)
    root_devices: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    started: int = 0

    def root_device_for(self, ami_id: str) -> str:
        if ami_id == self.ctx.image.id:
            return self.ctx.image.root_device_name
        if ami_id not in self.root_devices:
            image = describe_images(self.ctx.clients.ec2, [ami_id]).get(ami_id)
            self.root_devices[ami_id] = image.root_device_name if image else ""
        return self.root_devices[ami_id]

    def machine(self, plan: InstancePlan):
        s = self.ctx.settings
        resume = plan.action == RESUME
        if plan.strategy == ROOT_VOLUME:
            return RootVolumeReplacement(plan.instance_id, s.parameter_name, self.ctx.image.id,
                                         resume=resume)
        return Relaunch(plan.instance_id, s.parameter_name, self.ctx.image.id, plan.shape,
                        self.root_device_for, keep_old_instance=s.standalone.keep_old_instance,
                        health_timeout=float(s.standalone.health_check_timeout_seconds),
                        resume=resume, preserve_private_ip=s.standalone.preserve_private_ip)

    def finish(self, machine, result: Finish) -> None:
        log_event("instance_result", **result.entry.to_dict())
        self.entries.append(result.entry)
        if result.ami_id and result.ami_id != self.ctx.image.id:
            self.continue_reasons.append(
                f"{machine.old_id} finished on {result.ami_id}, not the current "
                f"{self.ctx.image.id}")

    def run(self, plans: list[InstancePlan]) -> None:
        ctx, settings = self.ctx, self.ctx.settings.standalone
        queue = deque(plans)
        active: list = []
        started = self.started = 0
        while True:
            while queue and len(active) < settings.parallelism and not ctx.deadline.expired():
                if queue[0].action == REPLACE and (
                        started >= settings.max_per_run
                        or (started and not ctx.deadline.has_time_for(START_BUDGET_SECONDS))):
                    break   # the first start always happens, so short timeouts still progress
                plan = queue.popleft()
                started = self.started = started + (plan.action == REPLACE)
                active.append(self.machine(plan))
            if not active or ctx.deadline.expired():
                break
            if not self.round(active):
                if not ctx.deadline.has_time_for(POLL_SECONDS):
                    break
                ctx.clock.sleep(POLL_SECONDS)
        self.yield_unfinished(active, queue)

    def round(self, active: list) -> bool:
        """Each machine makes at most one call; True when any made progress."""
        ec2 = self.ctx.clients.ec2
        relaunches = [m.old_id for m in active if isinstance(m, Relaunch)]
        in_place = [m.old_id for m in active if isinstance(m, RootVolumeReplacement)]
        observed = observe(ec2, [m.old_id for m in active], with_addresses=bool(relaunches))
        tasks = describe_tasks(ec2, in_place)
        progressed = False
        now = self.ctx.clock.monotonic()
        for m in active:
            if m.waiting is not None and m.waiting.health:
                m.note_health_wait(now)
        for m in list(active):
            obs: Observation = observed[m.old_id]
            if isinstance(m, Relaunch):
                step = m.decide(obs)
            else:
                step = m.decide(obs.old, tasks.get(m.old_id, []))
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

    def call(self, m, step: Call, obs: Observation) -> Finish | None:
        count = self.calls[m.old_id] = self.calls.get(m.old_id, 0) + 1
        if count > MAX_CALLS_PER_REPLACEMENT:
            return Finish(InstanceEntry(m.old_id, ACTION_FAILED, f"no progress after {count - 1} "
                                        "calls; progress tags kept for inspection"))
        log_event("replacement_step", instance=m.old_id, step=step.step,
                  operation=step.operation)
        try:
            response = getattr(self.ctx.clients.ec2, step.operation)(**step.kwargs)
        except ClientError as error:
            return (m.failed(step, error, obs) if isinstance(m, Relaunch)
                    else m.failed(step, error, obs.old))
        return (m.completed(step, obs, response) if isinstance(m, Relaunch)
                else m.completed(step, obs.old, response))

    def yield_unfinished(self, active: list, queue: deque) -> None:
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
            why = ("max_per_run reached" if plan.action == REPLACE and self.started
                   >= self.ctx.settings.standalone.max_per_run else "deadline reached")
            self.entries.append(InstanceEntry(plan.instance_id, IN_PROGRESS,
                                              f"not started yet ({why}); continues in the "
                                              "next invocation", volumes=plan.volumes))
        if queue:
            self.continue_reasons.append(f"{len(queue)} replacement(s) not started yet")


def apply_instances(ctx: RunContext, plans: tuple[InstancePlan, ...]) -> Outcome:
    from .engine import Outcome

    runner = _Runner(ctx)
    work = [p for p in plans if p.action != SKIP]
    runner.run(work)
    skipped = [p.entry() for p in plans if p.action == SKIP]
    order = {p.instance_id: n for n, p in enumerate(plans)}
    entries = sorted([*runner.entries, *skipped], key=lambda e: order.get(e.id, len(order)))
    reason = "; ".join(runner.continue_reasons) or None
    return Outcome(tuple(entries), reason)

