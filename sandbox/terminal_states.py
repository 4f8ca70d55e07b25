"""Emulation: a terminated instance cannot be stopped or started (moto lets it).

AWS answers ``IncorrectInstanceState`` to ``StopInstances``/``StartInstances`` on an
instance that is terminated or shutting down; moto moves it to stopped or running.
The difference matters when two invocations interleave: the late one must meet
AWS's refusal, not resurrect an instance the other one retired.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import Instance

from .core import EmbeddedAws, patch_method

GONE = ("terminated", "shutting-down")


def install(aws: EmbeddedAws) -> Callable[[], None]:
    original_stop, original_start = Instance.stop, Instance.start

    def refuse(instance: Instance, action: str) -> None:
        if instance._state.name in GONE:
            raise EC2ClientError("IncorrectInstanceState",
                                 f"This instance '{instance.id}' is not in a state from which "
                                 f"it can be {action}.")

    def stop(self: Instance) -> Any:
        refuse(self, "stopped")
        return original_stop(self)

    def start(self: Instance) -> Any:
        refuse(self, "started")
        return original_start(self)

    undo = [patch_method(Instance, "stop", stop), patch_method(Instance, "start", start)]

    def uninstall() -> None:
        for step in reversed(undo):
            step()
    return uninstall


def forget_terminated(aws: EmbeddedAws, instance_id: str) -> None:
    """AWS stops showing a terminated instance (and its tags) after about an hour; moto
    shows it for ever. Drops ``instance_id``, which must be terminated, from the embedded
    AWS, as a run an hour later would find it."""
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[aws.account_id][aws.region]
    for reservation in list(backend.reservations.values()):
        for instance in reservation.instances:
            if instance.id == instance_id and instance._state.name != "terminated":
                raise ValueError(f"{instance_id} is {instance._state.name}, not terminated")
        reservation.instances = [i for i in reservation.instances if i.id != instance_id]
    backend.tags.pop(instance_id, None)
