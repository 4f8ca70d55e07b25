"""The ``replace-root-volume`` strategy: EC2's root volume replacement from the new AMI.

``CreateReplaceRootVolumeTask`` with ``ImageId`` keeps the instance ID, its
network interfaces, IPs and data volumes; AWS restarts the instance on a new
root volume. The replaced root volume is kept (``DeleteReplacedRootVolume``
false, AWS's default), so nothing on it is lost; delete it when no longer
needed.

Preconditions (AWS's): the instance is running and EBS-backed, and the AMI has
the same key characteristics: architecture, virtualization type, platform and
billing product (platform details / usage operation, product codes).
``precondition_failure`` names the first one that fails; the planner then
falls back to relaunching (``fallback_to_relaunch``) or skips with that reason.

Progress tags: ``in-flight`` and ``root-volume-ami`` (intent) and ``attempt``
on the instance; the task is tagged with the attempt, so a resumed invocation
finds it (and the ClientToken makes a repeated request return the same task).

``STRATEGY`` is this module's entry in the registry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..ami import Image, current_image
from ..aws import describe, describe_error, tag_list
from ..outcomes import Code
from ..report import InstanceEntry
from ..run import Action, RunContext
from ..tags import ATTEMPT, FAILED_AMI, FAILURE_REASON, IN_FLIGHT, RETRY, ROOT_VOLUME_AMI
from .core import (
    FAIL,
    Call,
    Finish,
    InstancePlan,
    Machine,
    PlanAction,
    PlanInputs,
    Strategy,
    Wait,
    finished_elsewhere,
    log_refusal,
    record_intent,
    stopped_at,
)
from .iam import Grant, Permissions
from .observation import InstanceView, Observation

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client


NAME = "replace-root-volume"
FALLBACK = "relaunch"    # with fallback_to_relaunch, when AWS's preconditions fail

ACTIVE = ("pending", "in-progress", "failing")
INTENT_KEYS = (IN_FLIGHT, ROOT_VOLUME_AMI, RETRY)


def precondition_failure(instance: dict[str, Any], current: Image | None, new: Image) -> str | None:
    """Why ``instance`` cannot get its root volume replaced from ``new``; None when it can."""
    state = instance["State"]["Name"]
    if state != "running":
        return f"root volume replacement needs a running instance (it is {state})"
    if instance.get("RootDeviceType", "ebs") != "ebs":
        return "root volume replacement needs an EBS-backed instance"
    if current is None:
        return f"current image {instance['ImageId']} is not visible, so cannot be compared"
    for label, mine, theirs in (
            ("architecture", instance.get("Architecture") or current.architecture,
             new.architecture),
            ("virtualization type", instance.get("VirtualizationType"),
             new.virtualization_type),
            ("platform details", instance.get("PlatformDetails") or current.platform_details,
             new.platform_details),
            ("usage operation", instance.get("UsageOperation") or current.usage_operation,
             new.usage_operation)):
        if mine and theirs and mine != theirs:
            return (f"root volume replacement needs the same {label}: the instance has "
                    f"{mine}, {new.id} has {theirs}")
    if set(current.product_codes) != set(new.product_codes):
        return (f"root volume replacement needs the same product codes: "
                f"{sorted(current.product_codes)} vs {sorted(new.product_codes)}")
    return None


def task_token(instance_id: str, ami_id: str, attempt: str) -> str:
    digest = hashlib.sha256(f"root|{instance_id}|{ami_id}|{attempt}".encode()).hexdigest()[:16]
    return f"ami-upgrade-root-{instance_id}-{attempt}-{digest}"


@dataclass
class RootVolumeReplacement(Machine):
    """One instance's root volume replaced in place; resumable through its tags."""

    old_id: str
    parameter: str
    goal_ami: str | None                 # None: a recovery run's, with no target recorded
    pending_failure: str | None = None
    # the code its failure is reported with: a roll-back plan's, or AWS's refusal
    failure_code: Code = Code.REPLACEMENT_FAILED
    resume: bool = False                 # found in flight: never starts a new replacement
    waiting: Wait | None = None
    task_id: str | None = None

    def decide(self, old: InstanceView | None, tasks: Sequence[Mapping[str, Any]]
               ) -> Call | Wait | Finish:
        if old is None:
            return Finish(InstanceEntry(self.old_id, Action.FAILED, Code.REPLACEMENT_FAILED,
                                        "the instance is gone; nothing left in flight"))
        tags = old.tags
        target = tags.get(ROOT_VOLUME_AMI)
        if target is None and self.resume and IN_FLIGHT not in tags:   # ended meanwhile
            if old.image_id == self.goal_ami:
                return Finish(InstanceEntry(self.old_id, Action.REPLACED, Code.REPLACED,
                                            f"root volume already replaced from "
                                            f"{self.goal_ami} (by another invocation)",
                                            details={"strategy": NAME}),
                              ami_id=self.goal_ami, no_trace=True)
            return finished_elsewhere(self.old_id, "nothing of its replacement is in flight "
                                      "any more (another invocation ended it)")
        if target is None:
            if self.pending_failure:
                return Finish(InstanceEntry(self.old_id, Action.FAILED, self.failure_code,
                                            self.pending_failure))
            if self.resume or self.goal_ami is None:   # no goal: only ever resuming
                return Finish(InstanceEntry(self.old_id, Action.FAILED, Code.NEEDS_OPERATOR,
                                            f"tagged as in flight, but records no intent "
                                            f"({ROOT_VOLUME_AMI}); not touched"))
            return record_intent(old, {IN_FLIGHT: self.parameter,
                                       ROOT_VOLUME_AMI: self.goal_ami}, FAIL)
        attempt = tags.get(ATTEMPT, "1")
        mine = [t for t in tasks if t.get("ImageId") == target
                and {"Key": ATTEMPT, "Value": attempt} in (t.get("Tags") or [])]
        task = max(mine, key=lambda t: t.get("StartTime", ""), default=None)
        if self.pending_failure is None and task is None and old.image_id != target:
            if old.state != "running":
                return Wait(f"instance {old.id} is {old.state}")
            return Call("create_replace_root_volume_task", {
                "InstanceId": old.id, "ImageId": target, "DeleteReplacedRootVolume": False,
                "ClientToken": task_token(old.id, target, attempt),
                "TagSpecifications": [{"ResourceType": "replace-root-volume-task",
                                       "Tags": tag_list({ATTEMPT: attempt,
                                                      IN_FLIGHT: self.parameter})}]},
                FAIL, f"replace the root volume from {target}")
        if task is not None:
            self.task_id = task["ReplaceRootVolumeTaskId"]
            if task["TaskState"] in ACTIVE:
                return Wait(f"root volume task {self.task_id} is {task['TaskState']}")
            if task["TaskState"] != "succeeded" and self.pending_failure is None:
                self.pending_failure = (f"root volume replacement task {self.task_id} "
                                        f"{task['TaskState']}")
        if self.pending_failure and tags.get(FAILED_AMI) != target:
            return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
                {FAILED_AMI: target, FAILURE_REASON: self.pending_failure})}, FAIL,
                "record the failure")
        return Call("delete_tags", {"Resources": [old.id],
                                    "Tags": [{"Key": k} for k in INTENT_KEYS]}, FAIL,
                    "remove the progress tags")

    def completed(self, call: Call, old: InstanceView | None, response: Mapping[str, Any]
                  ) -> Finish | None:
        if call.operation != "delete_tags" or old is None:
            return None
        if self.pending_failure:
            return Finish(InstanceEntry(self.old_id, Action.FAILED, self.failure_code,
                                        self.pending_failure))
        return Finish(InstanceEntry(
            self.old_id, Action.REPLACED, Code.REPLACED,
            f"root volume replaced in place from {old.tags.get(ROOT_VOLUME_AMI)} "
            f"(task {self.task_id}); the replaced root volume is kept",
            details={"strategy": NAME}),
            ami_id=old.tags.get(ROOT_VOLUME_AMI))

    def failed(self, call: Call, error: ClientError, old: InstanceView | None) -> Finish | None:
        log_refusal(self.old_id, call, error)
        if call.operation == "create_replace_root_volume_task" and self.pending_failure is None:
            # AWS refused: record it, clear the intent
            self.pending_failure = describe_error(error, call.operation)
            return None
        return stopped_at(self.old_id, call, error)

    def progress_entry(self) -> InstanceEntry:
        return replace(super().progress_entry(), details={"strategy": NAME})

    # No status-check wait (AWS's task reports the outcome) and no other read than the
    # instance and its tasks: the base class's defaults.

    def step(self, obs: Observation, records: Sequence[Mapping[str, Any]]) -> Call | Wait | Finish:
        return self.decide(obs.old, records)

    def succeeded(self, call: Call, obs: Observation,
                  response: Mapping[str, Any]) -> Finish | None:
        return self.completed(call, obs.old, response)

    def refused(self, call: Call, error: ClientError, obs: Observation) -> Finish | None:
        return self.failed(call, error, obs.old)


def describe_tasks(ec2: EC2Client, instance_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Root volume replacement tasks by instance."""
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in instance_ids}
    for task in describe(ec2, "describe_replace_root_volume_tasks", "ReplaceRootVolumeTasks",
                         ids=instance_ids, id_filter="instance-id"):
        out.setdefault(task["InstanceId"], []).append(task)
    return out


# --------------------------------------------------------------- the strategy


class RootVolumeStrategy(Strategy):
    """Plans in-place root volume replacements and builds their machines."""

    name = NAME
    target_tag = ROOT_VOLUME_AMI
    uses_keys_of = frozenset({"root"})   # it restores the root volume in place, nothing else
    engine_tags = {
        "instance": (IN_FLIGHT, ROOT_VOLUME_AMI, ATTEMPT, FAILED_AMI, FAILURE_REASON, RETRY),
    }
    permissions = Permissions(
        describe=("ec2:DescribeReplaceRootVolumeTasks",),
        on_instances=("ec2:CreateReplaceRootVolumeTask",),
        on_volumes=("ec2:CreateReplaceRootVolumeTask",),
        tag_on_create={"CreateReplaceRootVolumeTask": ("replace-root-volume-task/*",)},
        statements=(
            # Images only of the owners allowedAmiOwners names, as the engine checks.
            Grant("ReplaceRootFromOwnedImages", ("ec2:CreateReplaceRootVolumeTask",),
                  ("image/*",), {"StringEquals": {"ec2:Owner": "{ami_owners}"}}),
            Grant("ReplaceRootVolumeSources", ("ec2:CreateReplaceRootVolumeTask",),
                  ("replace-root-volume-task/*", "snapshot/*")),
        ))

    def plan(self, inputs: PlanInputs, instance: dict[str, Any], note: str = "") -> InstancePlan:
        goal, iid = inputs.ctx.goal, instance["InstanceId"]
        failure = precondition_failure(instance, current_image(inputs.images, instance), goal)
        if failure is None:
            return InstancePlan(iid, PlanAction.REPLACE, f"replace the root volume in place "
                                f"from {goal.id}", NAME)
        if not inputs.ctx.settings.standalone.fallback_to_relaunch:
            return inputs.skip(iid, failure, Code.NOT_SUPPORTED)
        return inputs.strategies[FALLBACK].plan(inputs, instance, f" (fallback: {failure})")

    def read(self, ec2: EC2Client, old_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        return describe_tasks(ec2, old_ids)

    def machine(self, ctx: RunContext, plan: InstancePlan,
                root_device_for: Callable[[str], str]) -> RootVolumeReplacement:
        return RootVolumeReplacement(
            plan.instance_id, ctx.settings.parameter_name, ctx.goal_id(plan.target),
            resume=plan.action in (PlanAction.RESUME, PlanAction.ROLL_BACK),
            pending_failure=plan.reason if plan.action == PlanAction.ROLL_BACK else None,
            failure_code=(Code.ROLLED_BACK if plan.action == PlanAction.ROLL_BACK
                          else Code.REPLACEMENT_FAILED))


STRATEGY = RootVolumeStrategy()
