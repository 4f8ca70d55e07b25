"""Emulation: SSM parameters shared through AWS RAM, read by ARN from another account.

moto's RAM refuses to share SSM parameters and its SSM reads a parameter ARN in the
caller's own account. AWS shares advanced-tier parameters (only) through RAM, within
their region; a principal of an active share reads the owner's parameter by its full
ARN, and anyone else is refused. This emulation does that: ``parameter`` is a
shareable RAM type, and ``GetParameter`` with another account's ARN reads the
owner's backend when a share in the owner's account and region names the ARN and the
caller's account, and the parameter is advanced; otherwise AccessDeniedException.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ram.models import ResourceShare, ram_backends
from moto.ssm.models import ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse

from .core import EmbeddedAws, patch_method

ARN_RE = re.compile(r"^arn:aws[a-z-]*:ssm:([a-z0-9-]+):(\d{12}):parameter(/.*)$")


class AccessDenied(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


def shared_with(owner: str, region: str, arn: str, account: str) -> bool:
    """Whether an active share of ``owner`` in ``region`` gives ``account`` the ARN."""
    shares = ram_backends[owner][region].resource_shares
    return any(share.status == "ACTIVE" and arn in share.resource_arns
               and account in share.principals for share in shares)


def install(aws: EmbeddedAws) -> Callable[[], None]:
    original_types = ResourceShare.SHAREABLE_RESOURCES
    ResourceShare.SHAREABLE_RESOURCES = [*original_types, "parameter"]
    original = SimpleSystemManagerResponse.get_parameter

    def get_parameter(self: SimpleSystemManagerResponse) -> Any:
        name = self._get_param("Name")
        match = ARN_RE.match(name or "")
        if not match or match.group(2) == self.current_account:
            return original(self)
        region, owner, path = match.groups()
        parameter = ssm_backends[owner][region].get_parameter(path)
        if (region != self.region or parameter is None or parameter.tier != "Advanced"
                or not shared_with(owner, region, name, self.current_account)):
            raise AccessDenied(f"User: {self.current_account} is not authorized to perform: "
                               f"ssm:GetParameter on resource: {name}")
        return ActionResult({"Parameter": parameter.response_object(False, self.region)})

    undo = patch_method(SimpleSystemManagerResponse, "get_parameter", get_parameter)

    def uninstall() -> None:
        undo()
        ResourceShare.SHAREABLE_RESOURCES = original_types

    return uninstall
