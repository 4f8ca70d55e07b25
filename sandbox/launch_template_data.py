"""Emulation: ``GetLaunchTemplateData`` as AWS answers it (moto 5.2.5 leaves fields out).

AWS answers an instance's configuration, user data included, with each block device
at its device name. Moto omits ``UserData`` and names every device ``"string"``; the
engine reads an instance's user data and protection flags from this one call (instead
of four ``DescribeInstanceAttribute``), so the sandbox must answer them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses.launch_templates import LaunchTemplates

from .core import EmbeddedAws, patch_method


def install(aws: EmbeddedAws) -> Callable[[], None]:
    original = LaunchTemplates.get_launch_template_data

    def get_launch_template_data(self: LaunchTemplates) -> ActionResult:
        answer: Any = original(self)
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        data = answer.result["LaunchTemplateData"]
        if instance.user_data:
            data["UserData"] = instance.user_data
        for mapping, (device, _) in zip(data.get("BlockDeviceMappings", []),
                                        instance.get_block_device_mapping, strict=False):
            mapping["DeviceName"] = device
        return answer

    return patch_method(LaunchTemplates, "get_launch_template_data", get_launch_template_data)
