"""Emulation: a launch template shows the tags written on it after its creation.

moto copies a launch template's tags once, at creation, so ``CreateTags`` on an
``lt-...`` afterwards never shows in ``DescribeLaunchTemplates``; AWS shows it. The
engine records progress (time waited, retry times) on the template that keeps a
terminated instance's shape, so the sandbox must show it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.models.launch_templates import LaunchTemplate

from .core import EmbeddedAws, patch_method


def install(aws: EmbeddedAws) -> Callable[[], None]:
    def get(self: LaunchTemplate) -> Any:
        return self.get_tags()

    def ignore(self: LaunchTemplate, value: Any) -> None:
        """moto assigns the snapshot in ``__init__``: the live tags are read instead."""

    return patch_method(LaunchTemplate, "tags", property(get, ignore))
