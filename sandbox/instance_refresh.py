"""Emulation: instance refresh on moto's Auto Scaling state (moto 5.2.5 raises NotImplementedError).

``StartInstanceRefresh``, ``DescribeInstanceRefreshes``, ``CancelInstanceRefresh`` and
``RollbackInstanceRefresh`` are added to moto's ``AutoScalingResponse``, with AWS's
documented behaviour:

- one active refresh per group (``InstanceRefreshInProgress``); cancelling or
  rolling back without one is ``ActiveInstanceRefreshNotFound``; a rollback the
  group cannot undo is ``IrreversibleInstanceRefresh``;
- statuses ``Pending`` -> ``InProgress`` -> (``Baking``) -> ``Successful``, or
  ``Cancelling`` -> ``Cancelled``, ``Failed``, ``RollbackInProgress`` ->
  ``RollbackSuccessful``; ``PercentageComplete``, ``InstancesToUpdate``,
  ``StartTime``/``EndTime``, ``Preferences`` and ``DesiredConfiguration`` echoed;
- instances really replaced through moto's EC2 backend, batch by batch: without
  ``MaxHealthyPercentage`` an old instance is terminated as its replacement is
  launched, keeping ``MinHealthyPercentage`` (default 90) of the desired capacity
  healthy; with it, replacements launch first, up to that share of the desired
  capacity. A new instance counts as updated once ``InstanceWarmup`` (default: the
  group's health-check grace period) has passed. ``SkipMatching`` leaves instances
  already on the desired launch template version and instance type alone;
  ``CheckpointPercentages``/``CheckpointDelay`` pause, ``BakeTime`` bakes;
  protected and Standby instances follow ``ScaleInProtectedInstances`` and
  ``StandbyInstances`` (``Wait``: fail after an hour); ``ReplaceRootVolume`` swaps
  the image in place;
- a launch from an image that does not exist or is not available fails the
  refresh (rolled back when ``AutoRollback``); on success the desired
  configuration is written to the group.

Time is the sandbox's emulated clock: nothing moves until ``aws.advance`` (or an
engine's ``clock.sleep``) moves it. A refresh that ends as time moves is recorded in
``aws.state[ENDED_KEY]``, the event EC2 Auto Scaling emits then
(``sandbox.routing.refresh_ended_entry`` shapes it). CloudWatch alarms (``AlarmSpecification``) and
warm pools are accepted and echoed but not acted on.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import (
    ASG_NAME_TAG,
    AutoScalingBackend,
    FakeAutoScalingGroup,
    InstanceState,
)
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.ec2.models.instances import Instance
from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateVersion
from moto.moto_api._internal import mock_random as random

from handler.refresh_preferences import check_preferences
from handler.schema import SettingsError

from .core import EmbeddedAws, patch_method
from .launch_templates import SSM_ALIAS, resolve_image_alias

STATE_KEY = "instance_refreshes"

ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
DEFAULT_MIN_HEALTHY = 90
DEFAULT_CHECKPOINT_DELAY = 3600
WAIT_LIMIT_SECONDS = 3600       # ScaleInProtectedInstances/StandbyInstances "Wait"
MOVING_VERSIONS = ("$latest", "$default")


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"
    message = ("An Instance Refresh is already in progress and blocks the execution of this "
               "Instance Refresh.")


class ActiveInstanceRefreshNotFound(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


class IrreversibleInstanceRefresh(AutoscalingClientError):
    code = "IrreversibleInstanceRefresh"


# ----------------------------------------------------------------------- launch targets


@dataclass
class Target:
    """What replacements are launched from: a template version (maybe mixed) or a config."""

    template: LaunchTemplate | None = None
    version: str | None = None                 # as named: "3", "$Latest", "$Default"
    mixed_policy: dict | None = None
    launch_config: Any = None

    @classmethod
    def of_group(cls, group: FakeAutoScalingGroup) -> Target:
        if group.ec2_launch_template is not None:
            return cls(group.ec2_launch_template, str(group.launch_template_version),
                       copy.deepcopy(group.mixed_instances_policy))
        return cls(launch_config=group.launch_config)

    @classmethod
    def of_desired(cls, group: FakeAutoScalingGroup, desired: dict) -> Target:
        if "MixedInstancesPolicy" in desired:
            policy = copy.deepcopy(desired["MixedInstancesPolicy"])
            spec = (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification") or {}
            return cls(_template(group, spec), str(spec.get("Version") or "$Default"), policy)
        spec = desired.get("LaunchTemplate") or {}
        return cls(_template(group, spec), str(spec.get("Version") or "$Default"))

    def template_version(self) -> LaunchTemplateVersion | None:
        return self.template.get_version(self.version) if self.template else None

    def image_id(self, group: FakeAutoScalingGroup) -> str:
        version = self.template_version()
        image = version.image_id if version else self.launch_config.image_id
        return resolve_image_alias(image, group.account_id, group.region)

    def instance_types(self) -> list[str]:
        overrides = ((self.mixed_policy or {}).get("LaunchTemplate") or {}).get("Overrides") or []
        types = [o["InstanceType"] for o in overrides if o.get("InstanceType")]
        if types:
            return types
        version = self.template_version()
        kind = version.instance_type if version else self.launch_config.instance_type
        return [kind or "m1.small"]

    def matches(self, instance: Instance) -> bool:
        """SkipMatching: already on this template version and one of its instance types."""
        if instance.instance_type not in self.instance_types():
            return False
        version = self.template_version()
        if version is None:
            return instance.image_id == self.launch_config.image_id
        tags = {t["key"]: t["value"] for t in instance.get_tags()}
        return (tags.get("aws:ec2launchtemplate:id") == self.template.id
                and tags.get("aws:ec2launchtemplate:version") == str(version.number))

    def reversible(self) -> str | None:
        """Why a rollback to this configuration is impossible, or None."""
        if self.template is None:
            return "the Auto Scaling group does not use a launch template"
        if (self.version or "").lower() in MOVING_VERSIONS:
            return f"the Auto Scaling group uses the launch template's {self.version} version"
        if self.template.get_version(self.version).image_id.startswith(SSM_ALIAS):
            return ("the launch template uses a Systems Manager parameter instead of an AMI ID "
                    "for ImageId")
        return None


def _template(group: FakeAutoScalingGroup, spec: dict) -> LaunchTemplate:
    template_id, name = spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName")
    if bool(template_id) == bool(name):
        raise ValidationError("Valid requests must contain either launchTemplateId or "
                              "LaunchTemplateName")
    backend = group.ec2_backend
    try:
        template = (backend.get_launch_template(template_id) if template_id
                    else backend.get_launch_template_by_name(name))
        template.get_version(spec.get("Version") or "$Default")
    except Exception:   # moto raises its EC2 errors; AutoScaling answers with a ValidationError
        raise ValidationError(f"The launch template {template_id or name} version "
                              f"{spec.get('Version') or '$Default'} does not exist.") from None
    return template


# -------------------------------------------------------------------------- a refresh


@dataclass
class Replacement:
    old_id: str | None      # still running when the replacement launched first
    new_id: str
    ready_at: dt.datetime


@dataclass
class Refresh:
    id: str
    group: FakeAutoScalingGroup
    backend: AutoScalingBackend
    strategy: str
    preferences: dict
    desired: dict | None
    original: Target
    target: Target
    start_time: dt.datetime
    status: str = "Pending"
    status_reason: str | None = None
    end_time: dt.datetime | None = None
    queue: list[str] = field(default_factory=list)
    in_flight: list[Replacement] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)
    total: int = 0
    done: int = 0
    checkpoints: list[int] = field(default_factory=list)
    paused_until: dt.datetime | None = None
    bake_until: dt.datetime | None = None
    waiting_since: dt.datetime | None = None
    rollback: dict | None = None

    # ---------------------------------------------------------------- reading
    @property
    def percentage(self) -> int:
        return 100 if not self.total else int(self.done * 100 / self.total)

    def to_dict(self) -> dict:
        progress = {"PercentageComplete": self.percentage,
                    "InstancesToUpdate": self.total - self.done}
        out: dict[str, Any] = {
            "InstanceRefreshId": self.id, "AutoScalingGroupName": self.group.name,
            "Status": self.status, "StartTime": self.start_time, **progress,
            "ProgressDetails": {"LivePoolProgress": progress},
            "Preferences": copy.deepcopy(self.preferences), "Strategy": self.strategy,
        }
        if self.status_reason:
            out["StatusReason"] = self.status_reason
        if self.end_time:
            out["EndTime"] = self.end_time
        if self.desired:
            out["DesiredConfiguration"] = copy.deepcopy(self.desired)
        if self.rollback:
            out["RollbackDetails"] = dict(self.rollback)
        return out

    # ---------------------------------------------------------------- helpers
    def _alive(self) -> bool:
        return self.backend.autoscaling_groups.get(self.group.name) is self.group

    def _state(self, instance_id: str) -> InstanceState | None:
        return next((s for s in self.group.instance_states if s.instance.id == instance_id), None)

    def _end(self, status: str, reason: str | None, now: dt.datetime) -> None:
        self.status, self.status_reason, self.end_time = status, reason, now
        self.in_flight.clear()

    def _warmup(self) -> int:
        warmup = self.preferences.get("InstanceWarmup")
        return int(warmup if warmup is not None else self.group.health_check_grace_period or 0)

    def build_queue(self) -> None:
        """The instances to replace, decided when the refresh starts."""
        prefs = self.preferences
        queue = []
        for state in self.group.instance_states:
            if state.lifecycle_state not in ("InService", "Standby"):
                continue
            if state.lifecycle_state == "Standby" and prefs.get("StandbyInstances") == "Ignore":
                continue
            if state.protected_from_scale_in and \
                    prefs.get("ScaleInProtectedInstances") == "Ignore":
                continue
            if prefs.get("SkipMatching") and self.target.matches(state.instance):
                continue
            queue.append(state.instance.id)
        self.queue, self.total, self.done = queue, len(queue), 0
        self.checkpoints = list(prefs.get("CheckpointPercentages") or [])

    def _blocked(self, state: InstanceState) -> str | None:
        prefs = self.preferences
        if state.lifecycle_state == "Standby" and \
                prefs.get("StandbyInstances", "Wait") == "Wait":
            return f"instance {state.instance.id} is in Standby"
        if state.protected_from_scale_in and \
                prefs.get("ScaleInProtectedInstances", "Wait") == "Wait":
            return f"instance {state.instance.id} is protected from scale in"
        return None

    # ---------------------------------------------------------------- instances
    def _launchable(self) -> str:
        """The image replacements launch from; LaunchFailed when it cannot be launched."""
        image_id = self.target.image_id(self.group)
        image = self.group.ec2_backend.amis.get(image_id)
        if image is None or image.state != "available":
            raise LaunchFailed(
                f"Launching a new EC2 instance. Status Reason: The image id '[{image_id}]' does "
                "not exist or is not available. Launching EC2 instance failed.")
        return image_id

    def _launch(self, now: dt.datetime) -> Instance:
        group, target = self.group, self.target
        image_id = self._launchable()
        version = target.template_version()
        tags = {**group.get_propagated_tags(), ASG_NAME_TAG: group.name}
        launch_template = None
        if version is not None:
            tags.update(version.instance_tags)
            launch_template = {"LaunchTemplateId": target.template.id,
                               "Version": str(version.number)}
        subnet_id = group.vpc_zone_identifier.split(",")[0] if group.vpc_zone_identifier \
            else None
        reservation = group.ec2_backend.run_instances(
            image_id, 1, version.user_data if version else target.launch_config.user_data,
            version.security_groups if version else target.launch_config.security_groups,
            instance_type=target.instance_types()[0], tags={"instance": tags},
            placement=random.choice(group.availability_zones),
            launch_config=None if version else target.launch_config,
            launch_template=launch_template, is_instance_type_default=False,
            associate_public_ip=None, subnet_id=subnet_id)
        instance = reservation.instances[0]
        instance.autoscaling_group = group  # type: ignore[attr-defined]
        group.instance_states.append(InstanceState(
            instance, protected_from_scale_in=group.new_instances_protected_from_scale_in))
        self.launched.append(instance.id)
        return instance

    def _terminate(self, instance_id: str) -> None:
        state = self._state(instance_id)
        if state is None:
            return
        self.group.instance_states.remove(state)
        self.group.ec2_backend.terminate_instances([instance_id])

    def _sync_load_balancers(self) -> None:
        self.backend.update_attached_elbs(self.group.name)
        self.backend.update_attached_target_groups(self.group.name)

    def _replace_root_volume(self, instance_id: str, now: dt.datetime) -> None:
        state = self._state(instance_id)
        image_id = self._launchable()
        if state is not None:
            state.instance.image_id = image_id
            version = self.target.template_version()
            if version is not None:
                state.instance.add_tags({"aws:ec2launchtemplate:id": self.target.template.id,
                                         "aws:ec2launchtemplate:version": str(version.number)})
        self.in_flight.append(Replacement(None, instance_id,
                                          now + dt.timedelta(seconds=self._warmup())))

    # ---------------------------------------------------------------- progress
    def step(self, now: dt.datetime) -> None:
        """Move this refresh as far as ``now`` allows."""
        if self.status not in ACTIVE:
            return
        if not self._alive():
            self._end("Failed" if self.status != "Cancelling" else "Cancelled",
                      "The Auto Scaling group was deleted.", now)
            return
        try:
            self._step(now)
        except LaunchFailed as exc:
            self._fail(str(exc), now)
        self._sync_load_balancers()

    def _step(self, now: dt.datetime) -> None:
        if self.status == "Pending":
            self.status, self.status_reason = "InProgress", None
        if self.status == "Cancelling":
            self._finish_transitions()
            self._end("Cancelled", None, now)
            return
        if self.status == "Baking":
            if now >= self.bake_until:
                self._succeed(now)
            return
        self._finish_ready(now)
        if self.paused_until is not None:
            if now < self.paused_until:
                return
            self.paused_until = None
        if not self.queue and not self.in_flight:
            self._complete(now)
            return
        if self._at_checkpoint(now):
            return
        self._start_replacements(now)
        if self.in_flight:
            self.status_reason = ("Waiting for instances to warm up before continuing. For "
                                  f"example: {self.in_flight[0].new_id} is warming up.")

    def _finish_ready(self, now: dt.datetime) -> None:
        for item in [r for r in self.in_flight if r.ready_at <= now]:
            if item.old_id is not None:
                self._terminate(item.old_id)
            self.in_flight.remove(item)
            self.done += 1

    def _at_checkpoint(self, now: dt.datetime) -> bool:
        if not self.checkpoints or self.in_flight or self.percentage < self.checkpoints[0]:
            return False
        reached = self.checkpoints.pop(0)
        while self.checkpoints and self.percentage >= self.checkpoints[0]:
            reached = self.checkpoints.pop(0)
        if not self.queue:
            return False
        delay = int(self.preferences.get("CheckpointDelay", DEFAULT_CHECKPOINT_DELAY))
        self.paused_until = now + dt.timedelta(seconds=delay)
        self.status_reason = f"Waiting at checkpoint {reached}% for {delay} seconds."
        return True

    def _checkpoint_cap(self) -> int:
        """Replacements allowed before the next checkpoint must be reached."""
        if not self.checkpoints or not self.total:
            return len(self.queue)
        target = math.ceil(self.total * self.checkpoints[0] / 100)
        return max(0, target - self.done - len(self.in_flight))

    def _next_old(self, now: dt.datetime) -> str | None:
        blocked = None
        for instance_id in list(self.queue):
            state = self._state(instance_id)
            if state is None:               # gone meanwhile (scale-in, termination): done
                self.queue.remove(instance_id)
                self.done += 1
                continue
            blocked = self._blocked(state)
            if blocked is None:
                self.waiting_since = None
                return instance_id
        if blocked is not None:
            self.waiting_since = self.waiting_since or now
            if (now - self.waiting_since).total_seconds() >= WAIT_LIMIT_SECONDS:
                raise LaunchFailed(f"Instance refresh failed: {blocked} and was not released "
                                   "within one hour.")
            self.status_reason = f"Waiting: {blocked}."
        return None

    def _start_replacements(self, now: dt.datetime) -> None:
        desired = self.group.desired_capacity or len(self.group.instance_states)
        min_pct = int(self.preferences.get("MinHealthyPercentage", DEFAULT_MIN_HEALTHY))
        max_pct = self.preferences.get("MaxHealthyPercentage")
        min_in_service = math.ceil(desired * min_pct / 100)
        max_total = math.floor(desired * int(max_pct) / 100) if max_pct is not None else desired
        warmup = dt.timedelta(seconds=self._warmup())
        cap = self._checkpoint_cap()
        while cap > 0:
            warming = {r.new_id for r in self.in_flight}
            members = [s for s in self.group.instance_states if s.lifecycle_state == "InService"]
            total = len(members)
            healthy = sum(s.instance.id not in warming for s in members)
            launch_first = max_pct is not None and total + 1 <= max_total
            terminate_first = healthy - 1 >= min_in_service
            forced = not self.in_flight and not (launch_first or terminate_first)
            if not (launch_first or terminate_first or forced):
                return
            old_id = self._next_old(now)
            if old_id is None:
                return
            self.queue.remove(old_id)
            cap -= 1
            if self.strategy == "ReplaceRootVolume":
                self._replace_root_volume(old_id, now)
                continue
            if launch_first or (forced and max_pct is not None):
                new = self._launch(now)
                self.in_flight.append(Replacement(old_id, new.id, now + warmup))
            else:
                self._launchable()          # a launch that cannot happen terminates nothing
                self._terminate(old_id)
                new = self._launch(now)
                self.in_flight.append(Replacement(None, new.id, now + warmup))

    def _complete(self, now: dt.datetime) -> None:
        if self.status == "RollbackInProgress":
            self._end("RollbackSuccessful", "Rollback completed successfully.", now)
            return
        bake = int(self.preferences.get("BakeTime") or 0)
        if bake:
            self.status, self.bake_until = "Baking", now + dt.timedelta(seconds=bake)
            self.status_reason = f"Baking for {bake} seconds."
            return
        self._succeed(now)

    def _succeed(self, now: dt.datetime) -> None:
        if self.desired:
            _apply_desired(self.group, self.desired)
        self._end("Successful", None, now)

    def _fail(self, reason: str, now: dt.datetime) -> None:
        if (self.status == "InProgress" and self.preferences.get("AutoRollback")
                and self.desired and self.original.reversible() is None):
            self.start_rollback(f"Automatic rollback: {reason}", now)
            return
        self._end("RollbackFailed" if self.status == "RollbackInProgress" else "Failed",
                  reason, now)

    # ---------------------------------------------------------------- operations
    def _finish_transitions(self) -> None:
        """In-flight replacements complete (the old instance of a launch-first one goes)."""
        for item in self.in_flight:
            if item.old_id is not None:
                self._terminate(item.old_id)
        self.in_flight.clear()

    def cancel(self, wait_for_transitioning: bool, now: dt.datetime) -> None:
        """No new replacement starts; in-flight ones finish (at the next tick when waiting)."""
        self.queue.clear()
        if wait_for_transitioning and self.in_flight and \
                self.status in ("InProgress", "RollbackInProgress"):
            self.status, self.status_reason = "Cancelling", None
            return
        self._finish_transitions()
        self._end("Cancelled", None, now)

    def start_rollback(self, reason: str, now: dt.datetime) -> None:
        self.rollback = {
            "RollbackReason": reason, "RollbackStartTime": now,
            "PercentageCompleteOnRollback": self.percentage,
            "InstancesToUpdateOnRollback": self.total - self.done,
            "ProgressDetailsOnRollback": {"LivePoolProgress": {
                "PercentageComplete": self.percentage,
                "InstancesToUpdate": self.total - self.done}},
        }
        self.queue = [i for i in self.launched if self._state(i) is not None]
        self.in_flight.clear()
        self.target, self.total, self.done = self.original, len(self.queue), 0
        self.checkpoints, self.paused_until, self.bake_until = [], None, None
        self.status, self.status_reason = "RollbackInProgress", reason


class LaunchFailed(Exception):
    """A replacement could not be launched: the refresh fails (or rolls back)."""


def _apply_desired(group: FakeAutoScalingGroup, desired: dict) -> None:
    """On success, as AWS does: the group's launch settings become the desired configuration."""
    if "MixedInstancesPolicy" in desired:
        policy = copy.deepcopy(desired["MixedInstancesPolicy"])
        group.mixed_instances_policy = policy
        group._set_launch_configuration(None, {}, policy)   # type: ignore[arg-type]
    else:
        group.mixed_instances_policy = None
        group._set_launch_configuration(None, copy.deepcopy(desired["LaunchTemplate"]),  # type: ignore[arg-type]
                                        None)
    group.launch_config = None  # type: ignore[assignment]
    group.launch_configuration_name = None


# --------------------------------------------------------------------------- registry


ENDED_KEY = "instance_refreshes_ended"


@dataclass(frozen=True)
class Ended:
    """A refresh that reached an end status, as its EventBridge event names it."""

    account: str
    region: str
    group: str
    refresh_id: str
    status: str          # Successful, Failed, Cancelled, RollbackSuccessful, RollbackFailed
    time: dt.datetime


class Registry:
    """Every refresh, by account, region and group; advanced by the emulated clock. A
    refresh that ends is announced as AWS announces it (:class:`Ended`)."""

    def __init__(self, aws: EmbeddedAws) -> None:
        self.aws = aws
        self.refreshes: dict[tuple[str, str, str], list[Refresh]] = {}

    def of_group(self, account: str, region: str, name: str) -> list[Refresh]:
        return self.refreshes.setdefault((account, region, name), [])

    def active(self, account: str, region: str, name: str) -> Refresh | None:
        return next((r for r in self.of_group(account, region, name) if r.status in ACTIVE),
                    None)

    def tick(self, now: dt.datetime) -> None:
        for (account, region, name), refreshes in self.refreshes.items():
            for refresh in refreshes:
                was = refresh.status
                refresh.step(now)
                if was in ACTIVE and refresh.status not in ACTIVE:
                    self.ended(account, region, name, refresh)

    def ended(self, account: str, region: str, name: str, refresh: Refresh) -> None:
        """AWS's event for a refresh that ended (EventBridge, ``aws.autoscaling``), kept in
        ``aws.state[ENDED_KEY]`` for whoever routes the account's default bus."""
        self.aws.state.setdefault(ENDED_KEY, []).append(Ended(
            account, region, name, refresh.id, refresh.status,
            refresh.end_time or self.aws.clock.now()))


def _preferences(group: FakeAutoScalingGroup, given: dict) -> dict:
    """The preferences as AWS echoes them: what was given plus the documented defaults."""
    prefs = copy.deepcopy(given or {})
    try:   # the very rules the stack and the function check (handler/refresh_preferences.py)
        check_preferences(prefs, "Preferences")
    except SettingsError as exc:
        raise ValidationError(str(exc)) from None
    prefs.setdefault("MinHealthyPercentage", DEFAULT_MIN_HEALTHY)
    if prefs.get("CheckpointPercentages"):
        prefs.setdefault("CheckpointDelay", DEFAULT_CHECKPOINT_DELAY)
    prefs.setdefault("InstanceWarmup", int(group.health_check_grace_period or 0))
    prefs.setdefault("SkipMatching", False)
    prefs.setdefault("AutoRollback", False)
    return prefs


def _strategy_and_desired(strategy: str | None, desired: dict[str, Any] | None
                          ) -> tuple[str, dict[str, Any] | None]:
    """StartInstanceRefresh's Strategy (Rolling when unset) and DesiredConfiguration,
    refused as AWS refuses them."""
    strategy = strategy or "Rolling"
    if strategy not in ("Rolling", "ReplaceRootVolume"):
        raise ValidationError(f"Strategy {strategy} is not valid.")
    desired = desired or None
    if desired is not None and not (desired.get("LaunchTemplate")
                                    or desired.get("MixedInstancesPolicy")):
        raise ValidationError("A desired configuration must specify a LaunchTemplate or a "
                              "MixedInstancesPolicy.")
    return strategy, desired


def _check_rollback(prefs: dict[str, Any], desired: dict[str, Any] | None, original: Target,
                    target: Target) -> None:
    """AutoRollback needs a desired configuration and both ends reversible."""
    if prefs.get("AutoRollback"):
        why = ("no desired configuration is specified" if not desired
               else original.reversible() or target.reversible())
        if why:
            raise ValidationError(f"AutoRollback is not supported: {why}.")


def _page_start(refreshes: list[Refresh], token: str | None) -> int:
    """Where a page of DescribeInstanceRefreshes starts: at the refresh ``token`` names."""
    if not token:
        return 0
    positions = [i for i, r in enumerate(refreshes) if r.id == token]
    if not positions:
        raise AutoscalingClientError("InvalidNextToken", "The token is not valid.")
    return positions[0]


def install(aws: EmbeddedAws) -> Callable[[], None]:
    registry: Registry = aws.state.setdefault(STATE_KEY, Registry(aws))

    def where(self: AutoScalingResponse) -> tuple[str, str]:
        return self.current_account, self.region

    def group_named(self: AutoScalingResponse, name: str) -> FakeAutoScalingGroup:
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is None:
            raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' "
                                  "not found")
        return group

    def start_instance_refresh(self):  # type: ignore[no-untyped-def]
        name = self._get_param("AutoScalingGroupName")
        group = group_named(self, name)
        if registry.active(*where(self), name) is not None:
            raise InstanceRefreshInProgress()
        strategy, desired = _strategy_and_desired(self._get_param("Strategy"),
                                                  self._get_param("DesiredConfiguration"))
        prefs = _preferences(group, self._get_param("Preferences") or {})
        original = Target.of_group(group)
        target = Target.of_desired(group, desired) if desired else original
        _check_rollback(prefs, desired, original, target)
        refresh = Refresh(id=str(uuid.uuid4()), group=group, backend=self.autoscaling_backend,
                          strategy=strategy, preferences=prefs, desired=desired,
                          original=original, target=target, start_time=aws.clock.now())
        refresh.build_queue()
        registry.of_group(*where(self), name).append(refresh)
        return ActionResult({"InstanceRefreshId": refresh.id})

    def describe_instance_refreshes(self):  # type: ignore[no-untyped-def]
        name = self._get_param("AutoScalingGroupName")
        ids = self._get_param("InstanceRefreshIds") or []
        max_records = int(self._get_param("MaxRecords") or 50)
        if not 1 <= max_records <= 100:
            raise ValidationError("MaxRecords must be from 1 to 100.")
        refreshes = [r for r in reversed(registry.of_group(*where(self), name))
                     if not ids or r.id in ids]
        start = _page_start(refreshes, self._get_param("NextToken"))
        page = refreshes[start:start + max_records]
        rest = refreshes[start + max_records:]
        result: dict[str, Any] = {"InstanceRefreshes": [r.to_dict() for r in page]}
        if rest:
            result["NextToken"] = rest[0].id
        return ActionResult(result)

    def cancel_instance_refresh(self):  # type: ignore[no-untyped-def]
        name = self._get_param("AutoScalingGroupName")
        group_named(self, name)
        refresh = registry.active(*where(self), name)
        if refresh is None or refresh.status == "Cancelling":
            raise ActiveInstanceRefreshNotFound(
                f"No in progress or pending Instance Refresh found for Auto Scaling group {name}")
        wait = self._get_param("WaitForTransitioningInstances")
        refresh.cancel(wait is not False and str(wait).lower() != "false", aws.clock.now())
        if refresh.status not in ACTIVE:
            registry.ended(*where(self), name, refresh)
        return ActionResult({"InstanceRefreshId": refresh.id})

    def rollback_instance_refresh(self):  # type: ignore[no-untyped-def]
        name = self._get_param("AutoScalingGroupName")
        group_named(self, name)
        refresh = registry.active(*where(self), name)
        if refresh is None or refresh.status in ("Cancelling", "RollbackInProgress"):
            raise ActiveInstanceRefreshNotFound(
                f"No in progress or pending Instance Refresh found for Auto Scaling group {name}")
        why = ("no desired configuration was specified for the instance refresh"
               if not refresh.desired else refresh.original.reversible())
        if why:
            raise IrreversibleInstanceRefresh(f"The instance refresh cannot be rolled back: {why}.")
        refresh.start_rollback("Rollback requested by the user.", aws.clock.now())
        return ActionResult({"InstanceRefreshId": refresh.id})

    undo = [patch_method(AutoScalingResponse, method.__name__, method)
            for method in (start_instance_refresh, describe_instance_refreshes,
                           cancel_instance_refresh, rollback_instance_refresh)]
    undo.append(aws.clock.on_advance(registry.tick))

    def uninstall() -> None:
        for step in reversed(undo):
            step()
        aws.state.pop(STATE_KEY, None)
        aws.state.pop(ENDED_KEY, None)
    return uninstall

