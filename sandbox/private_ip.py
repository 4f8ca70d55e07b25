"""Emulation: a terminated instance frees its private IP addresses, as in AWS.

moto keeps a terminated instance's private IPs reserved in its subnet (it only
frees them when the Python object is garbage-collected), so a new instance
asking for the same ``PrivateIpAddress`` fails with "IP already in use". AWS
frees them at termination; the engine's private IP preservation relies on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.models.instances import Instance

from .core import EmbeddedAws, patch_method


def install(aws: EmbeddedAws) -> Callable[[], None]:
    original = Instance.terminate

    def terminate(self: Instance) -> Any:
        previous = original(self)
        if self.subnet_id:
            subnet = self.ec2_backend.get_subnet(self.subnet_id)
            for ip in list(self._private_ips):
                if subnet._subnet_ips.get(ip) is self:
                    subnet.del_subnet_ip(ip)
            self._private_ips.clear()
        return previous

    return patch_method(Instance, "terminate", terminate)
