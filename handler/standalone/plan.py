"""Standalone instances, the plan: which to replace with which strategy, which to resume.

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
relaunch instead). Each instance's own reads (its shape) wait until the runner starts it
(:func:`complete_at_start`, from what planning read: ``InstancePlan.unchecked``), so an
instance left to a later invocation costs no read now. Then the preflight
(``preflight.py``, a few batched reads for all planned replacements): what would make
the launch fail after the stop (key pair, instance profile, subnet and free IPs,
security groups, instance type in the zone for the new image, room for the progress
tags) skips the instance with the fix; what a relaunch would drop (target groups,
classic load balancers, routes to its interface, a launch-assigned public IP, a second
interface) replaces its root volume in place instead, or skips it.

Applying (``runner.py``) runs the per-instance state machines (``relaunch.Relaunch``,
``replace_root_volume.RootVolumeReplacement``: one module per strategy, listed in
``registry.py``) round-robin in one thread: each round
reads the state of every replacement in flight in a few batched calls, then
each machine makes its mutating calls one at a time, as far as it knows their effect
without reading again (``runner.py``). So at most
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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..ami import AmiError, check_owner, current_image, describe_images, incompatibility
from ..aws import describe, describe_instances, tag_map
from ..log import log_event
from ..outcomes import Code
from ..run import RunContext
from ..scope import exclusion_reason, out_of_scope_reason, owner_reason
from ..settings import Exclusions, Settings
from ..tags import (
    ASG_MEMBER,
    FAILED_AMI,
    FAILURE_REASON,
    IN_FLIGHT,
    INSTANCE_ID_RE,
    PARAMETER,
    REPLACED_BY,
    STRATEGY,
    malformed_tag,
)
from . import retry
from .core import InstancePlan, PlanAction, PlanInputs, Unchecked, held_reason, hold_of
from .observation import LIVE_STATES
from .preflight import Facts, complete, read_facts, review
from .registry import IN_FLIGHT_FALLBACK, STRATEGIES

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client

    from .shape import InstanceShape


def in_flight_replacements(ec2: EC2Client, parameter: str, held: bool = True
                           ) -> dict[str, str]:
    """Old instance ID -> strategy, for every replacement this deployment has in flight.

    The old instance's own tags say which strategy (or the fallback); a resource
    another strategy made or moved (a new instance, a volume) only points at it.
    ``held=False`` leaves out replacements held for an operator (``operator-hold`` on
    the old instance): in flight, but nothing the follow-up rule could move.
    """
    found: dict[str, str] = {}
    claimed: dict[str, str] = {}   # by a resource other than the old instance
    holds: set[str] = set()
    marked = [{"Name": f"tag:{IN_FLIGHT}", "Values": [parameter]}]
    for data in describe_instances(ec2, [*marked, {"Name": "instance-state-name",
                                                   "Values": [*LIVE_STATES, "shutting-down"]}]):
        tags = tag_map(data.get("Tags"))
        if hold_of(tags):
            holds.add(data["InstanceId"])
        claim = _claim(tags)
        if claim is not None:
            claimed.setdefault(*claim)
        else:
            found[data["InstanceId"]] = next(
                (s.name for s in STRATEGIES.values()
                 if s.name != IN_FLIGHT_FALLBACK and s.recognises(tags)), IN_FLIGHT_FALLBACK)
    for volume in describe(ec2, "describe_volumes", "Volumes", filters=marked):
        claim = _claim(tag_map(volume.get("Tags")))
        if claim is not None:
            claimed.setdefault(*claim)
    found = {**_proven(ec2, parameter, claimed, set(found)), **found}
    return found if held else {k: v for k, v in found.items() if k not in holds}


def _proven(ec2: EC2Client, parameter: str, claimed: dict[str, str], marked: set[str]
            ) -> dict[str, str]:
    """The claims (old instance -> strategy) made by other resources that the old instance
    itself confirms: it carries the in-flight tag (terminated instances still show their
    tags) or is not visible at all. A resource claiming a live instance that is not in
    flight proves nothing: anyone who may tag that resource can write the claim."""
    unconfirmed = sorted(set(claimed) - marked)
    if not unconfirmed:
        return claimed
    refused = {i["InstanceId"] for i in describe_instances(ec2, ids=unconfirmed)
               if tag_map(i.get("Tags")).get(IN_FLIGHT) != parameter}
    for old_id in sorted(refused):
        log_event("replacement_claim_refused", old_instance=old_id,
                  reason="claimed by a resource, but the instance is not in flight")
    return {k: v for k, v in claimed.items() if k not in refused}


def _claim(tags: dict[str, str]) -> tuple[str, str] | None:
    """(old instance, strategy) when these are the tags of a resource pointing at one."""
    for strategy in STRATEGIES.values():
        old_id = strategy.claims(tags)
        if old_id and INSTANCE_ID_RE.match(old_id):   # anything else names no instance
            return old_id, strategy.name
    return None


def inconsistent_record(old_id: str, tags: dict[str, str]) -> str | None:
    """Why an old instance's engine tags do not form a record the engine wrote (a value
    not in the engine's form, or one a strategy derives otherwise), or None."""
    return malformed_tag(tags) or next(
        (why for why in (s.inconsistent(old_id, tags) for s in STRATEGIES.values()) if why),
        None)


def _scope_skip(settings: Settings, exclusions: Exclusions, iid: str, tags: Mapping[str, str],
                inst: Mapping[str, Any]) -> tuple[str, Code] | None:
    """Why ``scope.skip_reason`` skips the instance, with its code: excluded (the lists,
    the exclusions parameter, the tag), else out of scope (or another orchestrator's)."""
    excluded = exclusion_reason("instance", iid, tags, exclusions)
    if excluded:
        return excluded, Code.EXCLUDED
    out = out_of_scope_reason(settings, tags) or owner_reason("instance", tags, inst)
    return (out, Code.OUT_OF_SCOPE) if out else None


def not_ours(settings: Settings, exclusions: Exclusions, inst: dict[str, Any] | None
             ) -> tuple[str, Code] | None:
    """Why an instance found in flight is not acted on, with its code: excluded or out of
    scope by the configuration (the lists, the exclusions parameter, the scope and exclude
    tags), whatever its progress tags say; None when it may be driven."""
    if inst is None:
        return None
    tags = tag_map(inst.get("Tags"))
    out = ((f"belongs to Auto Scaling group {tags[ASG_MEMBER]}", Code.ASG_MEMBER)
           if ASG_MEMBER in tags else
           _scope_skip(settings, exclusions, inst["InstanceId"], tags, inst))
    if out is None:
        return None
    return (f"{out[0]}: tagged as in flight, but an instance outside the configured scope is "
            "never acted on, whatever its tags say; bring it back into scope to finish the "
            "replacement, or resolve by hand"), out[1]


def _refusal(settings: Settings, exclusions: Exclusions, old_id: str,
             inst: dict[str, Any] | None) -> tuple[str, Code] | None:
    """Why a replacement found in flight is not driven: its record is not the engine's,
    or its instance is no longer ours; None when it is driven."""
    problem = inconsistent_record(old_id, tag_map((inst or {}).get("Tags")))
    if problem:
        return problem, Code.INCONSISTENT_RECORD
    return not_ours(settings, exclusions, inst)


# ------------------------------------------------------------- work in flight


@dataclass(frozen=True)
class InFlight:
    """A replacement found in flight, as read for its resume."""

    old_id: str
    strategy: str
    instance: dict[str, Any] | None     # None: no longer visible
    shape: InstanceShape | None         # captured from the old instance while it is alive
    target: str                         # its recorded target AMI ("": none recorded)

    @property
    def volumes(self) -> tuple[str, ...]:
        return tuple(v.volume_id for v in self.shape.data_volumes) if self.shape else ()


def recorded_target(inst: Mapping[str, Any] | None) -> str:
    """The target AMI an old instance's tags record for its replacement ("": none)."""
    tags = tag_map((inst or {}).get("Tags"))
    return next((tags[s.target_tag] for s in STRATEGIES.values() if tags.get(s.target_tag)),
                "")


def in_flight_work(ctx: RunContext, exclusions: Exclusions, in_flight: Mapping[str, str],
                   instances: Mapping[str, dict[str, Any]]
                   ) -> tuple[list[InstancePlan], list[InFlight]]:
    """The replacements in flight (old id -> strategy), in ID order: the skips of those
    whose record is not the engine's or whose instance is no longer ours, and the others
    with what their resume needs (each live old instance's shape, read now)."""
    refused: list[InstancePlan] = []
    found: list[InFlight] = []
    for old_id, name in sorted(in_flight.items()):
        inst = instances.get(old_id)
        why = _refusal(ctx.settings, exclusions, old_id, inst)
        if why is not None:
            refused.append(InstancePlan(old_id, PlanAction.SKIP, why[0], name, code=why[1]))
            continue
        alive = inst is not None and inst["State"]["Name"] in LIVE_STATES
        shape = STRATEGIES[name].resume_shape(ctx.clients.ec2, inst) \
            if inst is not None and alive else None
        found.append(InFlight(old_id, name, inst, shape, recorded_target(inst)))
    return refused, found


def resume_plan(work: InFlight, roll_back: str | None = None, goal: str | None = None
                ) -> InstancePlan:
    """The plan driving ``work`` on: back to where it came from when ``roll_back`` says
    why, otherwise on toward ``goal`` (None: the run's AMI, if it has one: see
    ``RunContext.goal_id``)."""
    if roll_back is not None:
        return InstancePlan(work.old_id, PlanAction.ROLL_BACK, roll_back, work.strategy,
                            work.shape, work.volumes, work.target)
    return InstancePlan(work.old_id, PlanAction.RESUME, f"resume the {work.strategy} onto "
                        f"{work.target or 'its target AMI'} already in flight", work.strategy,
                        work.shape, work.volumes, goal)


# ------------------------------------------------------------------ the plan


def _candidates(ec2: EC2Client, settings: Settings) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-state-name", "Values": [*LIVE_STATES, "shutting-down"]}]
    if settings.scope == "tagged":
        filters.append({"Name": f"tag:{PARAMETER}", "Values": [settings.parameter_name]})
    return sorted(describe_instances(ec2, filters), key=lambda i: i["InstanceId"])


def _first_skip(inputs: PlanInputs, inst: dict[str, Any]) -> InstancePlan | None:
    """The checks every strategy shares: the skip of the first that fails, or None."""
    ctx, goal = inputs.ctx, inputs.ctx.goal
    iid, tags = inst["InstanceId"], tag_map(inst.get("Tags"))
    state = inst["State"]["Name"]
    found = _shared_skip(inputs, inst, iid, tags, state)
    if found is not None:
        return inputs.skip(iid, *found)
    if tags.get(FAILED_AMI) == goal.id:
        return inputs.skip(iid, f"an earlier replacement onto {goal.id} failed and was rolled "
                           f"back ({tags.get(FAILURE_REASON, 'no reason recorded')}); remove "
                           f"tag {FAILED_AMI} to retry", Code.FAILED_BEFORE)
    if state != "running":
        return inputs.skip(iid, f"state is {state}: only running instances are replaced",
                           Code.NOT_RUNNING)
    again = retry.deferred_until(tags, ctx.clock.now())
    if again is not None:   # rolled back after transient errors: not before its time
        return InstancePlan(iid, PlanAction.SKIP, again.deferred(),
                            retry_at=retry.iso(again.next_at), code=Code.RETRY_SCHEDULED)
    return None


def _shared_skip(inputs: PlanInputs, inst: dict[str, Any], iid: str, tags: dict[str, str],
                 state: str) -> tuple[str, Code] | None:
    """Membership, scope, the record, the state, the image: why not, or None."""
    goal = inputs.ctx.goal
    if ASG_MEMBER in tags:
        return (f"belongs to Auto Scaling group {tags[ASG_MEMBER]} (the group's entry says "
                "what happens to it)", Code.ASG_MEMBER)
    out = _scope_skip(inputs.ctx.settings, inputs.ctx.exclusions, iid, tags, inst)
    if out:
        return out
    problem = inconsistent_record(iid, tags)
    if problem:
        return problem, Code.INCONSISTENT_RECORD
    if state == "shutting-down":
        return "terminating", Code.NOT_RUNNING
    if REPLACED_BY in tags:
        return (f"kept stopped after being replaced by {tags[REPLACED_BY]}",
                Code.KEPT_AFTER_REPLACEMENT)
    if inst["ImageId"] == goal.id:
        return f"already on {goal.id}", Code.ALREADY_CURRENT
    if inst["ImageId"] not in inputs.images:   # deregistered: checked from the instance
        log_event("current_image_gone", instance=iid, image=inst["ImageId"])
    why = incompatibility(current_image(inputs.images, inst), inst["ImageId"], goal)
    return (why, Code.INCOMPATIBLE) if why else None


def decide_early(inputs: PlanInputs, inst: dict[str, Any]) -> InstancePlan | None:
    """The checks every strategy shares, then what the chosen strategy decides from the
    instance alone; None when its own checks (and reads) are left to decide."""
    skip = _first_skip(inputs, inst)
    if skip is not None:
        return skip
    name = _strategy_name(inputs, inst)
    strategy = inputs.strategies.get(name)
    if strategy is None:
        return inputs.skip(inst["InstanceId"], f"tag {STRATEGY} has unknown value {name!r} "
                           f"(expected {' or '.join(inputs.strategies)})",
                           Code.UNKNOWN_STRATEGY)
    return strategy.precheck(inputs, inst)


def _strategy_name(inputs: PlanInputs, inst: dict[str, Any]) -> str:
    tags = tag_map(inst.get("Tags"))
    return (tags.get(STRATEGY) or inputs.ctx.settings.standalone.strategy).strip()


def evaluate(inputs: PlanInputs, inst: dict[str, Any]) -> InstancePlan:
    """The checks every strategy shares, then the chosen strategy's own (its reads)."""
    early = decide_early(inputs, inst)
    if early is not None:
        return early
    return inputs.strategies[_strategy_name(inputs, inst)].plan(inputs, inst)


def plan_instances(ctx: RunContext) -> tuple[InstancePlan, ...]:
    """Resumes of replacements in flight first, then every other instance considered."""
    ec2 = ctx.clients.ec2
    in_flight = in_flight_replacements(ec2, ctx.settings.parameter_name)
    candidates = _candidates(ec2, ctx.settings)
    by_id = {i["InstanceId"]: i for i in candidates}
    missing = sorted(set(in_flight) - set(by_id))
    if missing:   # in flight but no longer in scope (or gone): still ours to finish
        for data in describe_instances(ec2, ids=missing):
            by_id.setdefault(data["InstanceId"], data)
    made_in_flight = {i["InstanceId"] for i in candidates
                      if tag_map(i.get("Tags")).get(IN_FLIGHT) == ctx.settings.parameter_name
                      and _claim(tag_map(i.get("Tags"))) is not None}
    inputs = PlanInputs(ctx, STRATEGIES)
    inputs.images = describe_images(ec2, _own_images(by_id.values()))
    refused, resumes = in_flight_work(ctx, ctx.exclusions, in_flight, by_id)
    for plan in refused:
        log_event("instance_planned", instance=plan.instance_id, action=plan.action,
                  reason=plan.reason)
    considered = [(inst, decide_early(inputs, inst)) for inst in candidates
                  if inst["InstanceId"] not in in_flight
                  and inst["InstanceId"] not in made_in_flight]
    # Preflight: what the replacements need, read once for all of them (see preflight.py).
    checked = [inst for inst, plan in considered
               if plan is None or plan.action == PlanAction.REPLACE]
    resumed = [r.instance for r in resumes if r.shape is not None and r.instance]
    facts = (read_facts(ctx, [*checked, *resumed],
                        {ctx.goal.id, *(r.target for r in resumes if r.shape is not None)})
             if checked or resumed else Facts())
    # Read with the facts for every instance a strategy plans (relaunch_blocker asks).
    inputs.instance_store = instance_store(facts)
    plans = [*refused, *_resumed(ctx, facts, resumes)]
    # Each instance's own reads (its shape: one GetLaunchTemplateData) and the checks that
    # need them are made when it starts (``InstancePlan.unchecked``): an instance this
    # invocation does not start costs nothing (a dry run, which reports them, makes all).
    inputs.volumes = facts.volumes
    plans += [_considered(inputs, facts, inst, plan) for inst, plan in considered]
    return tuple(plans)


def _considered(inputs: PlanInputs, facts: Facts, inst: dict[str, Any],
                early: InstancePlan | None) -> InstancePlan:
    """A considered instance's plan: decided early, reviewed; else completed now in a dry
    run, or left to its start with what planning read for it."""
    if early is not None:
        plan = review(inputs, facts, inst, early)
    elif inputs.ctx.dry_run:
        plan = _complete(inputs, facts, inst)
    else:
        name = _strategy_name(inputs, inst)
        plan = InstancePlan(inst["InstanceId"], PlanAction.REPLACE, f"{name} onto "
                            f"{inputs.ctx.goal.id}, checked when it starts", name,
                            unchecked=Unchecked(inst, facts, inputs.images))
    log_event("instance_planned", instance=inst["InstanceId"], action=plan.action,
              reason=plan.reason)
    return plan


def _resumed(ctx: RunContext, facts: Facts, resumes: list[InFlight]) -> list[InstancePlan]:
    """The resumes' plans: held for an operator, rolled back from a target this run would
    not move onto, or resumed with the launch request completed from the facts."""
    plans = []
    untrusted = _untrusted_targets(ctx, {r.target for r in resumes})
    for work in resumes:
        hold = hold_of(tag_map(work.instance.get("Tags"))) if work.instance else None
        if hold:   # nothing to drive until an operator removes the tag
            plans.append(InstancePlan(work.old_id, PlanAction.SKIP,
                                      held_reason(work.old_id, hold), work.strategy,
                                      code=Code.HELD_FOR_OPERATOR))
            continue
        if work.shape is not None and work.instance is not None:   # the launch as planned
            work = replace(work, shape=complete(work.shape, work.instance, facts, work.target))
        plans.append(resume_plan(work, untrusted.get(work.target)))
    return plans


def instance_store(facts: Facts) -> set[str]:
    """The instance types with instance storage, among those the facts read."""
    return {t for t, info in facts.types.items() if info.get("InstanceStorageSupported")}


def _own_images(instances: Iterable[dict[str, Any]]) -> set[str]:
    """The images to read: those of instances that are not group members (a member is
    skipped, or refused when found in flight, before its image is looked at; the group's
    own plan checks it)."""
    return {i["ImageId"] for i in instances if ASG_MEMBER not in tag_map(i.get("Tags"))}


def _untrusted_targets(ctx: RunContext, targets: set[str]) -> dict[str, str]:
    """Target AMIs recorded in flight that this run would not move onto (another owner
    than ``allowedAmiOwners`` names), with why: a recorded target is a tag, written by
    whoever may tag the instance, so it passes the run's own image check. The run's
    image passed it already; a target no longer visible is left to the strategy."""
    others = {t for t in targets if t and t != ctx.goal.id}
    found: dict[str, str] = {}
    for image in describe_images(ctx.clients.ec2, others).values():
        try:
            check_owner(image, ctx.settings.allowed_ami_owners, ctx.account)
        except AmiError as exc:
            found[image.id] = f"rolled back instead of resumed: its recorded target {exc}"
    return found


def _complete(inputs: PlanInputs, facts: Facts, inst: dict[str, Any]) -> InstancePlan:
    """A plan left to its start made whole: the strategy's plan (its reads), then the
    preflight."""
    plan = review(inputs, facts, inst, evaluate(inputs, inst))
    if not inputs.ctx.dry_run:
        log_event("instance_planned", instance=inst["InstanceId"], action=plan.action,
                  reason=plan.reason)
    return plan


def complete_at_start(ctx: RunContext, plan: InstancePlan, profile_roles: dict[str, str | None]
                      ) -> InstancePlan:
    """``plan`` (left to its start) made whole from what planning read for it: the
    strategy's own reads and the checks on them. ``profile_roles``: the run's memo of
    instance profiles' roles (one read per profile)."""
    unchecked = plan.unchecked
    if unchecked is None:
        return plan
    inputs = PlanInputs(ctx, STRATEGIES, images=dict(unchecked.images),
                        instance_store=instance_store(unchecked.facts),
                        profile_roles=profile_roles, volumes=unchecked.facts.volumes)
    return _complete(inputs, unchecked.facts, dict(unchecked.instance))
