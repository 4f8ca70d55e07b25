"""Emulation: ``CreateReplaceRootVolumeTask`` / ``DescribeReplaceRootVolumeTasks``.

moto 5.2.5 raises ``NotImplementedError`` for both. The emulation keeps tasks on
the handle (``aws.root_volume``, a :class:`RootVolumeTasks`) and moves them on
with the emulated clock, as AWS does: ``pending`` for ``PENDING_SECONDS``, then
``in-progress`` until ``DURATION_SECONDS`` after creation, then ``succeeded``:
the instance shows the new AMI ID and a new root volume (from the AMI, at the
same device, same DeleteOnTermination) while its data volumes stay attached; the
replaced root volume is deleted when ``DeleteReplacedRootVolume`` was set, else
left ``available``. A task told to fail (``aws.root_volume.fail_next(...)``)
goes ``failing`` for ``FAILING_SECONDS`` then ``failed`` (the original root
volume stays attached) or ``failed-detached`` (it does too, and the replacement
volume is left detached and ``available``).

The request checks AWS documents: the instance exists and is ``running``; the
image exists and matches the instance's architecture and platform; one task
at a time per instance; a repeated ``ClientToken`` returns the first task.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

from .core import EmbeddedAws, patch_method

PENDING_SECONDS = 15
DURATION_SECONDS = 90
FAILING_SECONDS = 30
ACTIVE_STATES = ("pending", "in-progress", "failing")


@dataclass
class Task:
    id: str
    instance_id: str
    image_id: str
    delete_replaced: bool
    client_token: str | None
    created_at: float
    start_time: str
    tags: list[dict]
    fail: str | None = None          # None, "failed" or "failed-detached"
    state: str = "pending"
    complete_time: str | None = None
    failing_since: float | None = None

    def to_aws(self) -> dict:
        out = {"ReplaceRootVolumeTaskId": self.id, "InstanceId": self.instance_id,
               "TaskState": self.state, "StartTime": self.start_time, "Tags": self.tags,
               "ImageId": self.image_id, "DeleteReplacedRootVolume": self.delete_replaced}
        if self.complete_time:
            out["CompleteTime"] = self.complete_time
        return out


@dataclass
class RootVolumeTasks:
    """Root-volume replacement tasks of one embedded AWS (``aws.root_volume``)."""

    aws: EmbeddedAws
    tasks: list[Task] = field(default_factory=list)
    _fail_plan: list[tuple[str | None, str]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, instance_id: str | None = None, detached: bool = False) -> None:
        """The next task created (for ``instance_id``, when given) fails."""
        self._fail_plan.append((instance_id, "failed-detached" if detached else "failed"))

    def _planned_failure(self, instance_id: str) -> str | None:
        for entry in self._fail_plan:
            if entry[0] in (None, instance_id):
                self._fail_plan.remove(entry)
                return entry[1]
        return None

    def _now(self) -> str:
        return self.aws.clock.now().isoformat().replace("+00:00", "Z")

    def advance(self, _now: dt.datetime | None = None) -> None:
        from moto.ec2.models import ec2_backends
        backend = ec2_backends[self.aws.account_id][self.aws.region]
        elapsed_now = self.aws.clock.monotonic()
        for task in self.tasks:
            if task.state not in ACTIVE_STATES:
                continue
            age = elapsed_now - task.created_at
            if task.state == "pending" and age >= PENDING_SECONDS:
                task.state = "in-progress"
            if task.state == "in-progress" and age >= DURATION_SECONDS:
                if task.fail:
                    task.state, task.failing_since = "failing", elapsed_now
                else:
                    _replace_root(backend, task)
                    task.state, task.complete_time = "succeeded", self._now()
            if (task.state == "failing" and task.failing_since is not None
                    and elapsed_now - task.failing_since >= FAILING_SECONDS):
                if task.fail == "failed-detached":
                    instance = backend.get_instance(task.instance_id)
                    backend.create_volume(size=8, zone_name=instance.placement.zone)
                task.state, task.complete_time = task.fail or "failed", self._now()


def _replace_root(backend, task: Task) -> None:
    """What AWS leaves behind a successful task: the new image, a new root volume."""
    instance = backend.get_instance(task.instance_id)
    device = instance.root_device_name
    old = instance.block_device_mapping.get(device)
    size = getattr(old, "size", None) or 8
    delete_on_termination = bool(getattr(old, "delete_on_termination", True))
    new_volume = backend.create_volume(size=size, zone_name=instance.placement.zone)
    if old is not None:
        backend.detach_volume(old.volume_id, instance.id, device)
        if task.delete_replaced:
            backend.delete_volume(old.volume_id)
    backend.attach_volume(new_volume.id, instance.id, device, delete_on_termination)
    instance.image_id = task.image_id


def _check(backend, instance_id: str, image_id: str | None) -> None:
    instance = backend.get_instance(instance_id)   # InvalidInstanceID.NotFound
    if instance.state != "running":
        raise EC2ClientError("IncorrectInstanceState",
                             f"The instance '{instance_id}' is not in a state from which "
                             "its root volume can be replaced (it must be running).")
    if not image_id:
        raise EC2ClientError("InvalidParameterCombination",
                             "This emulation supports ImageId replacements only.")
    image = backend.describe_images(ami_ids=[image_id])[0]   # InvalidAMIID.NotFound
    if image.architecture != instance.architecture:
        raise EC2ClientError("InvalidParameterValue",
                             f"The architecture of {image_id} ({image.architecture}) does not "
                             f"match the instance's ({instance.architecture}).")
    if (image.platform or "") != (instance.platform or ""):
        raise EC2ClientError("InvalidParameterValue",
                             f"The platform of {image_id} does not match the instance's.")


def install(aws: EmbeddedAws) -> Callable[[], None]:
    tasks = RootVolumeTasks(aws)
    aws.root_volume = tasks  # type: ignore[attr-defined]
    stop_listening = aws.clock.on_advance(tasks.advance)

    def create_replace_root_volume_task(self: EC2Response) -> ActionResult:
        instance_id = self._get_param("InstanceId")
        image_id = self._get_param("ImageId")
        token = self._get_param("ClientToken")
        if token:
            known = next((t for t in tasks.tasks if t.client_token == token), None)
            if known is not None:
                return ActionResult({"ReplaceRootVolumeTask": known.to_aws()})
        _check(self.ec2_backend, instance_id, image_id)
        if any(t.instance_id == instance_id and t.state in ACTIVE_STATES for t in tasks.tasks):
            raise EC2ClientError("IncorrectState", f"The instance '{instance_id}' already has "
                                 "a root volume replacement task in progress.")
        self.error_on_dryrun()
        tag_specs = self._get_param("TagSpecifications", [])
        task_tags = [tag for spec in tag_specs
                     if spec.get("ResourceType") == "replace-root-volume-task"
                     for tag in spec.get("Tags", [])]
        task = Task(id=f"replacevol-{random.getrandbits(68):017x}",
                    instance_id=instance_id, image_id=image_id,
                    delete_replaced=bool(self._get_param("DeleteReplacedRootVolume")),
                    client_token=token, created_at=aws.clock.monotonic(),
                    start_time=tasks._now(), tags=task_tags,
                    fail=tasks._planned_failure(instance_id))
        tasks.tasks.append(task)
        return ActionResult({"ReplaceRootVolumeTask": task.to_aws()})

    def describe_replace_root_volume_tasks(self: EC2Response) -> ActionResult:
        ids = self._get_param("ReplaceRootVolumeTaskIds", [])
        filters = {f["Name"]: f.get("Values", []) for f in self._get_param("Filters", [])}
        unknown = sorted(set(ids) - {t.id for t in tasks.tasks})
        if unknown:
            raise EC2ClientError("InvalidReplaceRootVolumeTaskId.NotFound",
                                 f"The task ID '{unknown[0]}' does not exist")
        found = [t for t in tasks.tasks
                 if (not ids or t.id in ids)
                 and ("instance-id" not in filters or t.instance_id in filters["instance-id"])]
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxResults") or 50)
        page = found[start:start + size]
        result: dict = {"ReplaceRootVolumeTasks": [t.to_aws() for t in page]}
        if start + size < len(found):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    undo = [patch_method(EC2Response, "create_replace_root_volume_task",
                         create_replace_root_volume_task),
            patch_method(EC2Response, "describe_replace_root_volume_tasks",
                         describe_replace_root_volume_tasks)]

    def uninstall() -> None:
        for step in reversed(undo):
            step()
        stop_listening()
        del aws.root_volume  # type: ignore[attr-defined]
    return uninstall
