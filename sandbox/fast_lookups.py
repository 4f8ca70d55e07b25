"""Emulation (speed only): moto's look-ups by ID without scanning the whole account.

moto reads one resource's tags by filtering every tag in the account (``describe_tags``
with a ``resource-id`` filter), and finds instances by ID by shallow-copying every
reservation first. Each look-up costs the size of the estate, so a run over thousands
of resources is quadratic (most of the time of a 1,000-group benchmark). These give the
same answers read straight from moto's own dictionaries; nothing AWS shows changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

from .core import EmbeddedAws, patch_method


def install(aws: EmbeddedAws) -> Callable[[], None]:
    def get_tags(self: Any) -> list[dict[str, Any]]:
        """What ``describe_tags(filters={"resource-id": [id]})`` answers, in the same order."""
        resource_id = getattr(self, "id", None)
        tags = self.ec2_backend.tags.get(resource_id) if resource_id else None
        if not tags:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": key, "value": value,
                 "resource_type": kind} for key, value in list(tags.items())]

    def newest_first(backend: InstanceBackend) -> Iterator[Instance]:
        """Every instance, the latest launched first (look-ups are mostly of new ones)."""
        for reservation in reversed(list(backend.reservations.values())):
            yield from reservation.instances

    def get_instance(self: InstanceBackend, instance_id: str) -> Instance:
        for instance in newest_first(self):
            if instance.id == instance_id:
                return instance
        raise InvalidInstanceIdError(instance_id)

    def get_multi_instances_by_id(self: InstanceBackend, instance_ids: list[str],
                                  filters: Any = None) -> list[Instance]:
        wanted, known = set(instance_ids), {}
        for instance in newest_first(self):
            if instance.id in wanted:
                known[instance.id] = instance
                if len(known) == len(wanted):
                    break
        missing = [i for i in instance_ids if i not in known]
        if missing:
            raise InvalidInstanceIdError(missing)
        return [known[i] for i in instance_ids if known[i].applies(filters)]

    undo = [patch_method(TaggedEC2Resource, "get_tags", get_tags),
            patch_method(InstanceBackend, "get_instance", get_instance),
            patch_method(InstanceBackend, "get_multi_instances_by_id",
                         get_multi_instances_by_id)]

    def restore() -> None:
        for step in reversed(undo):
            step()
    return restore
