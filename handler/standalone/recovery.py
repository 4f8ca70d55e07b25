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
from ..aws import describe_instances
from ..log import log_event
from ..report import InstanceEntry
from ..run import Outcome, RunContext
from ..settings import AMI_ID_RE
from .plan import in_flight_replacements, in_flight_work, recorded_target, resume_plan
from .runner import apply_instances

if TYPE_CHECKING:
    from ..settings import Exclusions
    from .plan import InFlight


def _foreign(ctx: RunContext, image: Image | None) -> str | None:
    """Why a recorded target image is not one a run may move onto (its owner), or None."""
    if image is None:
        return None
    try:
        check_owner(image, ctx.settings.allowed_ami_owners, ctx.account)
    except AmiError as exc:
        return str(exc)
    return None


def _why_roll_back(ctx: RunContext, work: InFlight, images: dict[str, Image], why: str
                   ) -> str | None:
    """Why ``work`` rolls back instead of going on: its recorded target is another owner's,
    or no longer available; None when it goes on."""
    image = images.get(work.target)
    foreign = _foreign(ctx, image)
    if foreign:
        return f"its recorded target {foreign} ({why})"
    if work.target and (image is None or image.state != "available"):
        state = "does not exist or is not visible" if image is None else f"is {image.state}"
        return f"its target AMI {work.target} {state} ({why})"
    return None


def recover_in_flight(ctx: RunContext, exclusions: Exclusions, why: str,
                      durable_follow_up: bool = False) -> Outcome[InstanceEntry]:
    """Resume or roll back every replacement this deployment has in flight.

    The replacements run with no image of the run's own (``image`` None): each plan
    carries its recorded target, checked here, or rolls back; one with none recorded is
    only finished or rolled back, never started. ``why`` is the run's failure.
    """
    ec2 = ctx.clients.ec2
    in_flight = in_flight_replacements(ec2, ctx.settings.parameter_name)
    if not in_flight:
        return Outcome()
    instances = {i["InstanceId"]: i for i in describe_instances(ec2, ids=sorted(in_flight))}
    targets = {recorded_target(instances.get(old_id)) for old_id in in_flight}
    # A target that is not an AMI ID is refused below (inconsistent_record), unread.
    images = describe_images(ec2, {t for t in targets if AMI_ID_RE.match(t)})
    refused, resumes = in_flight_work(ctx, exclusions, in_flight, instances)
    plans = list(refused)
    for work in resumes:
        plans.append(resume_plan(work, _why_roll_back(ctx, work, images, why),
                                 work.target or None))
        log_event("in_flight_recovered", instance=work.old_id, action=plans[-1].action,
                  reason=plans[-1].reason)
    plans.sort(key=lambda p: p.instance_id)
    recovery = replace(ctx, image=None, exclusions=exclusions)
    return apply_instances(recovery, tuple(plans), durable_follow_up=durable_follow_up)
