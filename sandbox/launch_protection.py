"""Emulation: ``RunInstances`` keeps ``DisableApiTermination``, as AWS does.

AWS launches an instance with termination protection when the request (or its launch
template's data) sets ``DisableApiTermination``; ``TerminateInstances`` then answers
``OperationNotPermitted`` until it is turned off. moto drops the flag at launch (it
honours it only when set by ``ModifyInstanceAttribute``), so a launch that copies it
would look terminable in the sandbox and not in AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

from .core import EmbeddedAws, patch_method


def _requested(response: EC2Response) -> bool:
    """True when the request, or the launch template it names, asks for protection."""
    if str(response._get_param("DisableApiTermination", "")).lower() == "true":
        return True
    template = response._get_param("LaunchTemplate", {}) or {}
    ident = template.get("LaunchTemplateId") or template.get("LaunchTemplateName")
    if not ident:
        return False
    backend: Any = response.ec2_backend
    try:
        found = (backend.get_launch_template(ident) if template.get("LaunchTemplateId")
                 else backend.get_launch_template_by_name(ident))
    except EC2ClientError:   # an unknown template: moto answers it itself
        return False
    version = found.get_version(template.get("Version") or "$Default")
    return bool(version.data.get("DisableApiTermination"))


STATE_KEY = "launch_protection"


def install(aws: EmbeddedAws) -> Callable[[], None]:
    launched: dict[str, bool] = aws.state.setdefault(STATE_KEY, {})   # flag applied once
    original = EC2Response.run_instances

    def run_instances(self: EC2Response) -> ActionResult:
        result = original(self)
        if self._get_param("DryRun"):
            return result
        protect = _requested(self)
        for instance in result.result.instances:
            if instance.id not in launched:      # a repeated ClientToken: as it is now
                launched[instance.id] = protect
                instance.disable_api_termination = protect or instance.disable_api_termination
        return result

    return patch_method(EC2Response, "run_instances", run_instances)
