"""Emulation: ``AttachVolume`` refuses a volume that is attached, as AWS does.

AWS answers ``VolumeInUse`` ("vol-... is already attached to an instance") when the
volume has an attachment (attaching, attached or detaching) and is not Multi-Attach
enabled. moto instead moves the volume to the new instance and resets its
``DeleteOnTermination``, so two invocations racing on one volume both "succeed" there
and fail in AWS: the interleaving tests must meet AWS's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_block_store import EBSBackend

from .core import EmbeddedAws, patch_method


def install(aws: EmbeddedAws) -> Callable[[], None]:
    original = EBSBackend.attach_volume

    def attach_volume(self: EBSBackend, volume_id: str, instance_id: str, device_path: str,
                      delete_on_termination: bool = False) -> Any:
        volume = self.get_volume(volume_id)
        if volume is not None and volume.attachment is not None and not getattr(
                volume, "multi_attach_enabled", False):
            raise EC2ClientError("VolumeInUse",
                                 f"{volume_id} is already attached to an instance")
        return original(self, volume_id, instance_id, device_path, delete_on_termination)

    return patch_method(EBSBackend, "attach_volume", attach_volume)
