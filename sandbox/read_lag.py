"""Emulation: EC2's reads lag its writes, on cue (``lag(aws, seconds)``).

AWS's EC2 API is eventually consistent: for a few seconds (sometimes longer) after
``RunInstances`` answered, ``DescribeInstances`` may not list the new instance, and
after ``AttachVolume`` answered, ``DescribeVolumes`` may still show the volume
``available``. moto shows every write at once. With a lag set, instances launched and
volumes attached less than ``seconds`` of emulated time ago are shown as before the
call (not listed; available, no attachment), so the engine's handling of lag (wait,
never re-send in a loop nor report a failure) can be tested.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses import EC2Response

from .core import EmbeddedAws, patch_method

STATE_KEY = "read_lag"


def lag(aws: EmbeddedAws, seconds: float) -> None:
    """From now on, launches and attachments show ``seconds`` after they happened."""
    aws.state[STATE_KEY]["seconds"] = float(seconds)


def install(aws: EmbeddedAws) -> Callable[[], None]:
    state: dict[str, Any] = aws.state.setdefault(
        STATE_KEY, {"seconds": 0.0, "launched": {}, "attached": {}})
    clock = aws.clock

    def hidden(kind: str, resource_id: str) -> bool:
        at = state[kind].get(resource_id)
        return at is not None and clock.monotonic() - at < state["seconds"]

    original_run = EC2Response.run_instances
    original_attach = EBSBackend.attach_volume
    original_instances = InstanceBackend.describe_instances
    original_volumes = EBSBackend.describe_volumes

    def run_instances(self: EC2Response) -> ActionResult:
        result = original_run(self)
        if state["seconds"]:
            for instance in result.result.instances:
                state["launched"].setdefault(instance.id, clock.monotonic())
        return result

    def attach_volume(self: EBSBackend, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        answer = original_attach(self, volume_id, *args, **kwargs)
        if state["seconds"]:
            state["attached"][volume_id] = clock.monotonic()
        return answer

    def describe_instances(self: InstanceBackend, filters: Any = None) -> Any:
        reservations = original_instances(self, filters)
        for reservation in reservations:
            reservation.instances = [i for i in reservation.instances
                                     if not hidden("launched", i.id)]
        return [r for r in reservations if r.instances]

    def describe_volumes(self: EBSBackend, volume_ids: Any = None, filters: Any = None) -> Any:
        volumes = []
        for volume in original_volumes(self, volume_ids, filters):
            if hidden("attached", volume.id):
                volume = copy.copy(volume)
                volume.attachment = None
            volumes.append(volume)
        return volumes

    undo = [patch_method(EC2Response, "run_instances", run_instances),
            patch_method(EBSBackend, "attach_volume", attach_volume),
            patch_method(InstanceBackend, "describe_instances", describe_instances),
            patch_method(EBSBackend, "describe_volumes", describe_volumes)]

    def uninstall() -> None:
        for step in reversed(undo):
            step()
    return uninstall
