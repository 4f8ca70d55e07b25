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
(``InstancePlan.completion``), so an instance left to a later invocation costs no
read now. Then the preflight (``preflight.py``, a few batched reads for all
planned replacements): what would make the launch fail after the stop (key pair,
instance profile, subnet and free IPs, security groups, instance type in the zone for
the new image, room for the progress tags) skips the instance with the fix; what a
relaunch would drop (target groups, classic load balancers, routes to its interface,
a launch-assigned public IP, a second interface) replaces its root volume in place
instead, or skips it.

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

from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ..ami import AmiError, check_owner, current_image, describe_images, incompatibility
from ..aws import describe, describe_instances, tag_map
from ..log import log_event
from ..run import RunContext
from ..scope import skip_reason
from ..settings import Exclusions, Settings
from ..tags import (
    ASG_MEMBER,
    ATTEMPT,
    FAILED_AMI,
    FAILURE_REASON,
    IN_FLIGHT,
    INSTANCE_ID_RE,
    LAUNCH_TOKEN,
    PARAMETER,
    REPLACED_BY,
    STRATEGY,
    TARGET_AMI,
    malformed_tag,
)
from . import retry
from .core import InstancePlan, PlanAction, PlanInputs, held_reason, hold_of
from .observation import LIVE_STATES
from .preflight import Facts, complete, interfaces_dropped, not_relaunched, read_facts, review
from .registry import IN_FLIGHT_FALLBACK, STRATEGIES
from .relaunch import NAME as RELAUNCH
from .relaunch import launch_token

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client


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
    not in the engine's form, or a launch token that is not the one the engine derives
    from the instance, the target AMI and the attempt), or None."""
    problem = malformed_tag(tags)
    if problem:
        return problem
    token = tags.get(LAUNCH_TOKEN)
    if token is not None and token != launch_token(old_id, tags.get(TARGET_AMI, ""),
                                                   tags.get(ATTEMPT, "1")):
        return (f"tag {LAUNCH_TOKEN} holds {token[:64]!r}, which is not the token the engine "
                f"derives from {old_id}, its {TARGET_AMI} and {ATTEMPT}; nothing is launched "
                "for it and it is not touched (resolve by hand)")
    return None


def not_ours(settings: Settings, exclusions: Exclusions, inst: dict[str, Any] | None
             ) -> str | None:
    """Why an instance found in flight is not acted on: excluded or out of scope by the
    configuration (the lists, the exclusions parameter, the scope and exclude tags),
    whatever its progress tags say; None when it may be driven."""
    if inst is None:
        return None
    tags = tag_map(inst.get("Tags"))
    out = (f"belongs to Auto Scaling group {tags[ASG_MEMBER]}" if ASG_MEMBER in tags else
           skip_reason(settings, exclusions, "instance", inst["InstanceId"], tags, inst))
    if out is None:
        return None
    return (f"{out}: tagged as in flight, but an instance outside the configured scope is "
            "never acted on, whatever its tags say; bring it back into scope to finish the "
            "replacement, or resolve by hand")


def _candidates(ec2: EC2Client, settings: Settings) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-state-name", "Values": [*LIVE_STATES, "shutting-down"]}]
    if settings.scope == "tagged":
        filters.append({"Name": f"tag:{PARAMETER}", "Values": [settings.parameter_name]})
    return sorted(describe_instances(ec2, filters), key=lambda i: i["InstanceId"])


def evaluate(inputs: PlanInputs, inst: dict[str, Any], deep: bool = True) -> InstancePlan:
    """The checks every strategy shares, then the chosen strategy's own (not ``deep``:
    a deferred plan instead, when the shared checks pass)."""
    ctx = inputs.ctx
    settings = ctx.settings
    goal = ctx.image
    iid, tags = inst["InstanceId"], tag_map(inst.get("Tags"))
    state = inst["State"]["Name"]

    def skip(reason: str) -> InstancePlan:
        return inputs.skip(iid, reason)

    if ASG_MEMBER in tags:
        return skip(f"belongs to Auto Scaling group {tags[ASG_MEMBER]} (the group's entry "
                    "says what happens to it)")
    out = skip_reason(settings, ctx.exclusions, "instance", iid, tags, inst)
    if out:
        return skip(out)
    problem = inconsistent_record(iid, tags)
    if problem:
        return skip(problem)
    if state == "shutting-down":
        return skip("terminating")
    if REPLACED_BY in tags:
        return skip(f"kept stopped after being replaced by {tags[REPLACED_BY]}")
    if inst["ImageId"] == goal.id:
        return skip(f"already on {goal.id}")
    if inst["ImageId"] not in inputs.images:   # deregistered: checked from the instance
        log_event("current_image_gone", instance=iid, image=inst["ImageId"])
    why = incompatibility(current_image(inputs.images, inst), inst["ImageId"], goal)
    if why:
        return skip(why)
    if tags.get(FAILED_AMI) == goal.id:
        return skip(f"an earlier replacement onto {goal.id} failed and was rolled back "
                    f"({tags.get(FAILURE_REASON, 'no reason recorded')}); remove tag "
                    f"{FAILED_AMI} to retry")
    if state != "running":
        return skip(f"state is {state}: only running instances are replaced")
    again = retry.deferred_until(tags, ctx.clock.now())
    if again is not None:   # rolled back after transient errors: not before its time
        return InstancePlan(iid, PlanAction.SKIP, again.deferred(),
                            retry_at=retry.iso(again.next_at))
    name = (tags.get(STRATEGY) or settings.standalone.strategy).strip()
    strategy = inputs.strategies.get(name)
    if strategy is None:
        return skip(f"tag {STRATEGY} has unknown value {name!r} (expected "
                    f"{' or '.join(inputs.strategies)})")
    dropped = interfaces_dropped(inst) if name == RELAUNCH else None
    if dropped:     # what a relaunch cannot carry over (more in preflight.review)
        return not_relaunched(inputs, inst, dropped)
    if not deep:
        return InstancePlan(iid, PlanAction.REPLACE, f"{name} onto {goal.id}, checked when "
                            "it starts", name, completion=lambda: strategy.plan(inputs, inst))
    return strategy.plan(inputs, inst)


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
    resumes, refused = [], []
    for old_id, name in sorted(in_flight.items()):
        inst = by_id.get(old_id)
        problem = (inconsistent_record(old_id, tag_map(inst.get("Tags")) if inst else {})
                   or not_ours(ctx.settings, ctx.exclusions, inst))
        if problem:
            refused.append(InstancePlan(old_id, PlanAction.SKIP, problem))
            log_event("instance_planned", instance=old_id, action=PlanAction.SKIP,
                      reason=problem)
            continue
        strategy = STRATEGIES[name]
        alive = inst is not None and inst["State"]["Name"] in LIVE_STATES
        shape = strategy.resume_shape(ec2, inst) if inst is not None and alive else None
        tags = tag_map(inst.get("Tags")) if inst else {}
        target = next((tags[s.target_tag] for s in STRATEGIES.values()
                       if tags.get(s.target_tag)), "")
        resumes.append((old_id, name, inst, shape, target))
    considered = [(inst, evaluate(inputs, inst, deep=False)) for inst in candidates
                  if inst["InstanceId"] not in in_flight
                  and inst["InstanceId"] not in made_in_flight]
    # Preflight: what the replacements need, read once for all of them (see preflight.py).
    checked = [inst for inst, plan in considered if plan.action == PlanAction.REPLACE]
    resumed = [inst for _, _, inst, shape, _ in resumes if shape is not None and inst]
    facts = (read_facts(ctx, [*checked, *resumed],
                        {ctx.image.id, *(r[4] for r in resumes if r[3] is not None)})
             if checked or resumed else Facts())
    # Read with the facts for every instance a strategy plans (relaunch_blocker asks).
    inputs.instance_store = {t for t, info in facts.types.items()
                             if info.get("InstanceStorageSupported")}
    plans = refused
    untrusted = _untrusted_targets(ctx, {r[4] for r in resumes})
    for old_id, name, inst, shape, target in resumes:
        hold = hold_of(tag_map(inst.get("Tags"))) if inst else None
        if hold:   # nothing to drive until an operator removes the tag
            plans.append(InstancePlan(old_id, PlanAction.SKIP, held_reason(old_id, hold),
                                      name, held=True))
            continue
        if shape is not None and inst is not None:   # the same launch request as planned
            shape = complete(shape, inst, facts, target)
        volumes = tuple(v.volume_id for v in shape.data_volumes) if shape else ()
        if target in untrusted:      # back to where it came from, never onto that image
            plans.append(InstancePlan(old_id, PlanAction.ROLL_BACK, untrusted[target], name,
                                      shape, volumes, target))
            continue
        plans.append(InstancePlan(old_id, PlanAction.RESUME, f"resume the {name} onto "
                                  f"{target or 'its target AMI'} already in flight", name,
                                  shape, volumes))
    # Each instance's own reads (its shape: one GetLaunchTemplateData) and the checks that
    # need them are made when it starts (``InstancePlan.completion``): an instance this
    # invocation does not start costs nothing (a dry run, which reports them, makes all).
    inputs.volumes = facts.volumes
    for inst, plan in considered:
        if plan.deferred and ctx.dry_run:
            plan = _complete(inputs, facts, inst)
        elif plan.deferred:
            plan = replace(plan, completion=partial(_complete, inputs, facts, inst))
        else:
            plan = review(inputs, facts, inst, plan)
        log_event("instance_planned", instance=inst["InstanceId"], action=plan.action,
                  reason=plan.reason)
        plans.append(plan)
    return tuple(plans)


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
    others = {t for t in targets if t and t != ctx.image.id}
    found: dict[str, str] = {}
    for image in describe_images(ctx.clients.ec2, others).values():
        try:
            check_owner(image, ctx.settings.allowed_ami_owners, ctx.account)
        except AmiError as exc:
            found[image.id] = f"rolled back instead of resumed: its recorded target {exc}"
    return found


def _complete(inputs: PlanInputs, facts: Facts, inst: dict[str, Any]) -> InstancePlan:
    """A deferred plan made whole: the strategy's plan (its reads), then the preflight."""
    plan = review(inputs, facts, inst, evaluate(inputs, inst))
    if not inputs.ctx.dry_run:
        log_event("instance_planned", instance=inst["InstanceId"], action=plan.action,
                  reason=plan.reason)
    return plan
