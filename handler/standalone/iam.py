"""The IAM a standalone strategy needs, as plain data (no AWS, no Pulumi).

Each strategy module declares its :class:`Permissions`; ``components/policy.py``
renders them from the registry into the role's policy, so a new strategy brings
its IAM with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Grant:
    """One IAM statement a strategy needs; ``components/policy.py`` renders it.

    ``resources`` are EC2 resource types (``"instance/*"``; ``image/`` and ``snapshot/``
    are rendered without an account) or ARN templates naming ``{partition}`` and
    ``{account}``. Condition keys and values may name ``{parameter}``, ``{scope_tag}``
    and ``{in_flight_tag}``; a value that is exactly ``{ami_owners}`` becomes the list of
    allowed image owners (``allowedAmiOwners``, ``self`` as the account ID).
    ``scope``: only in that SCOPE (``tagged`` or ``all``).
    """

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]] | None = None
    scope: str | None = None


@dataclass(frozen=True)
class Permissions:
    """The IAM a strategy adds to the role, beyond what every run needs."""

    describe: tuple[str, ...] = ()       # read-only, on every resource
    on_instances: tuple[str, ...] = ()   # on instance/*, in tagged scope only tagged ones
    on_volumes: tuple[str, ...] = ()     # on volume/* (the instance authorises the call)
    # on instance/* and volume/* both carrying the engine's in-flight tag for the
    # parameter: what only ever happens to resources the engine marked as its own first
    while_in_flight: tuple[str, ...] = ()
    tag_on_create: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # ^ creating call -> resource types it tags at creation (TagSpecifications)
    # resource types beyond instances and volumes whose engine tags it writes and removes
    progress_tags_on: tuple[str, ...] = ()
    statements: tuple[Grant, ...] = ()
