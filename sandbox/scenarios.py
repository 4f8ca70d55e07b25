"""The failures the demo can inject (``--fault``), and the end state each must lead to.

A fault run succeeds when the system behaves correctly under the fault:

``launch-failure``
    Every ``RunInstances`` answers ``InsufficientInstanceCapacity``: no
    replacement instance can start, so each relaunch must roll back (old
    instance running again with its volumes). Groups are unaffected (their
    instances are launched by Auto Scaling, not by ``RunInstances``).
``attach-failure``
    ``AttachVolume`` to any instance other than the volume's original owner
    fails (``InvalidParameterValue``, device in use): the volumes must go back
    to the old instance, which runs again.
``health-check-failure``
    Instances launched from the new AMI fail their status checks (``impaired``):
    standalone replacements must roll back; an instance refresh may roll back
    too (``AutoRollback``) or finish, but nothing may be lost.
``crash-after:N``
    The invocation dies right after its N-th mutating AWS call (as a killed or
    timed-out Lambda would); Lambda retries the event and the run must recover
    and converge, with nothing lost and nothing replaced twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .convergence import CONVERGE, ROLLBACK
from .core import EmbeddedAws
from .fleet import Estate

NAMES = ("launch-failure", "attach-failure", "health-check-failure", "crash-after:N")


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    expectation: str                          # CONVERGE or ROLLBACK
    arm: Callable[[EmbeddedAws, Estate], None]
    groups_may_roll_back: bool = False


def _launch_failure(aws: EmbeddedAws, estate: Estate) -> None:
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity",
                    "We currently do not have sufficient capacity in the Availability Zone "
                    "you requested (injected by --fault launch-failure).", times=None)


def _attach_failure(aws: EmbeddedAws, estate: Estate) -> None:
    owners = {i.id for i in estate.instances}

    def to_a_new_instance(params: dict) -> bool:
        return params.get("InstanceId") not in owners

    aws.faults.fail("AttachVolume", "InvalidParameterValue",
                    "Attachment point is already in use (injected by --fault attach-failure).",
                    times=None, when=to_a_new_instance)


def _health_check_failure(aws: EmbeddedAws, estate: Estate) -> None:
    aws.faults.status_checks("impaired", after_seconds=60, image_id=estate.new_image)


def _crash_after(n: int) -> Callable[[EmbeddedAws, Estate], None]:
    def arm(aws: EmbeddedAws, estate: Estate) -> None:
        aws.faults.crash_after(n)
    return arm


def scenario(name: str) -> Scenario:
    """The scenario for ``--fault name``; ValueError naming the known faults otherwise."""
    if name == "launch-failure":
        return Scenario(name, "every RunInstances fails with InsufficientInstanceCapacity",
                        ROLLBACK, _launch_failure)
    if name == "attach-failure":
        return Scenario(name, "AttachVolume to a new instance fails", ROLLBACK, _attach_failure)
    if name == "health-check-failure":
        return Scenario(name, "instances on the new AMI fail their status checks", ROLLBACK,
                        _health_check_failure, groups_may_roll_back=True)
    if name.startswith("crash-after:"):
        count = name.split(":", 1)[1]
        if count.isdigit() and int(count) >= 1:
            return Scenario(name, f"the invocation dies after its mutating AWS call #{count}",
                            CONVERGE, _crash_after(int(count)))
    raise ValueError(f"--fault: unknown fault {name!r}; known: {', '.join(NAMES)} "
                     "(N a positive integer)")
