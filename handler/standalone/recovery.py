"""Work in flight when the run itself cannot go on: driven to an end state anyway.

The run-level checks (the parameter read, the AMI's validation, the exclusions)
come before planning. When one fails (the new AMI deregistered because it is bad,
the parameter deleted, the exclusions parameter broken), nothing new may start,
but a replacement already in flight holds an instance stopped, its volumes
detached: its tags record everything needed to finish it. So the engine calls
:func:`recover_in_flight`, which resumes each one toward the AMI its tags record
when that AMI is still available, and rolls it back when it is not. The report
keeps the run's failure and lists these entries beside it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..ami import AmiError, Image, check_owner, describe_images
from ..aws import describe_instances, tag_map
from ..log import log_event
from ..report import InstanceEntry
from ..run import Outcome, RunContext
from ..settings import AMI_ID_RE
from .core import InstancePlan, PlanAction
from .observation import LIVE_STATES
from .plan import in_flight_replacements, inconsistent_record, not_ours
from .registry import STRATEGIES
from .runner import apply_instances

if TYPE_CHECKING:
    from ..settings import Exclusions


def _foreign(ctx: RunContext, image: Image | None) -> str | None:
    """Why a recorded target image is not one a run may move onto (its owner), or None."""
    if image is None:
        return None
    try:
        check_owner(image, ctx.settings.allowed_ami_owners, ctx.account)
    except AmiError as exc:
        return str(exc)
    return None


def recover_in_flight(ctx: RunContext, exclusions: Exclusions, why: str,
                      durable_follow_up: bool = False) -> Outcome[InstanceEntry]:
    """Resume or roll back every replacement this deployment has in flight.

    ``ctx`` carries no usable image (the run's own could not be established); each
    plan carries its recorded target instead. ``why`` is the run's failure.
    """
    ec2 = ctx.clients.ec2
    in_flight = in_flight_replacements(ec2, ctx.settings.parameter_name)
    if not in_flight:
        return Outcome()
    instances = {i["InstanceId"]: i for i in describe_instances(ec2, ids=sorted(in_flight))}
    targets: dict[str, str] = {}
    for old_id in in_flight:
        tags = tag_map((instances.get(old_id) or {}).get("Tags"))
        targets[old_id] = next((tags[s.target_tag] for s in STRATEGIES.values()
                                if tags.get(s.target_tag)), "")
    # A target that is not an AMI ID is refused below (inconsistent_record), unread.
    images = describe_images(ec2, {t for t in targets.values() if AMI_ID_RE.match(t)})
    plans = []
    for old_id, name in sorted(in_flight.items()):
        strategy, inst, target = STRATEGIES[name], instances.get(old_id), targets[old_id]
        refused = (inconsistent_record(old_id, tag_map((inst or {}).get("Tags")))
                   or not_ours(ctx.settings, exclusions, inst))
        if refused:
            plans.append(InstancePlan(old_id, PlanAction.SKIP, refused, name))
            continue
        alive = inst is not None and inst["State"]["Name"] in LIVE_STATES
        shape = strategy.resume_shape(ec2, inst) if inst is not None and alive else None
        volumes = tuple(v.volume_id for v in shape.data_volumes) if shape else ()
        image = images.get(target)
        foreign = _foreign(ctx, image)
        if foreign:
            plans.append(InstancePlan(old_id, PlanAction.ROLL_BACK, f"its recorded target "
                                      f"{foreign} ({why})", name, shape, volumes, target))
        elif target and (image is None or image.state != "available"):
            state = "does not exist or is not visible" if image is None else \
                f"is {image.state}"
            plans.append(InstancePlan(old_id, PlanAction.ROLL_BACK,
                                      f"its target AMI {target} {state} ({why})", name,
                                      shape, volumes, target))
        else:
            plans.append(InstancePlan(old_id, PlanAction.RESUME,
                                      f"resume the {name} onto {target or 'its target AMI'} "
                                      f"already in flight", name, shape, volumes,
                                      target or None))
        log_event("in_flight_recovered", instance=old_id, action=plans[-1].action,
                  reason=plans[-1].reason)
    recovery = replace(ctx, image=Image(id="", architecture="", platform="", state=""),
                       exclusions=exclusions)
    return apply_instances(recovery, tuple(plans), durable_follow_up=durable_follow_up)
