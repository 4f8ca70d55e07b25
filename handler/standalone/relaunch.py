"""The ``relaunch`` strategy: a new instance from the new AMI takes over the data volumes.

``Relaunch`` is one instance's replacement, as a resumable state machine.

Each ``step`` looks at a fresh :class:`~handler.standalone.observation.Observation` and
makes at most one mutating call. The tags written along the way (see
``handler/tags.py``) plus what AWS shows (states, attachments) are the whole
state: an invocation killed after any call leaves a situation from which the
next ``decide`` continues or rolls back. The order of the steps keeps the rule
"a data volume is always attached to an instance or tagged with where it
belongs":

1. intent on the old instance O (``in-flight``, ``target-ami``, ``attempt``), written
   in the same call on O's Elastic IPs (the role moves only addresses in flight);
2. each data volume tagged with its home (O, device, DeleteOnTermination);
3. O stopped; 4. each volume detached (``InstanceId`` always given);
5. ``launch-token`` on O: from here the AMI is fixed, since the launch may have
   happened even if it is not visible yet (a newer AMI never strands it);
6. ``RunInstances`` with the captured shape, the AMI, the original tags plus
   ``replaces`` (applied at launch, atomically) and the deterministic token;
7. source/dest check as before; each volume attached at its original device;
8. status checks ``ok`` (bounded by ``health_check_timeout_seconds``, which
   spans invocations through ``health-waited``); DeleteOnTermination restored;
   the old instance's Elastic IP moved;
9. O terminated (or tagged ``replaced-by`` and kept stopped); the progress tags
   removed from N and the volumes.

Any failure before 9 writes ``rollback`` on O, then: N stopped, the volumes
detached from it and attached back to O at their devices (DeleteOnTermination
restored), O started, N terminated, ``failed-ami`` recorded (that AMI is not
retried for O until the tag is removed), the progress tags removed. An
instance is never terminated while a data volume is attached to it.

With ``preserve_private_ip`` the old instance holds its private IP until it is
terminated, so after step 5 the launch request is kept in a launch template, O
is terminated, and N is launched from the template with O's IP: from the
termination on, failures roll forward instead of back (see ``plan.py``).

``STRATEGY`` is this module's entry in the registry: how it plans an instance
(``relaunch_blocker``), what it resumes with (the captured shape), its IAM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..ami import current_image
from ..aws import describe_error, is_transient, tag_list, tag_map
from ..log import log_event
from ..outcomes import Code
from ..passable import role_blocker
from ..report import InstanceEntry
from ..run import Action, Clock, RunContext, SystemClock
from ..tags import (
    ATTEMPT,
    ELASTIC_IPS,
    FAILED_AMI,
    FAILURE_REASON,
    HEALTH_WAITED,
    HOME_DELETE_ON_TERMINATION,
    HOME_DEVICE,
    HOME_INSTANCE,
    IN_FLIGHT,
    LAUNCH_TOKEN,
    OPERATOR_HOLD,
    REPLACED_BY,
    REPLACES,
    RETRY,
    ROLLBACK,
    SOURCE_DEST_CHECK,
    TARGET_AMI,
    VOLUMES,
    seconds_tag,
)
from . import preflight, retry
from .core import (
    FAIL,
    ROLL_BACK,
    Call,
    Finish,
    InstancePlan,
    Machine,
    OnError,
    PlanAction,
    PlanInputs,
    Strategy,
    Wait,
    finished_elsewhere,
    held_reason,
    hold_of,
    record_intent,
)
from .iam import Grant, Permissions
from .observation import (
    Attachment,
    InstanceView,
    Needs,
    Observation,
    Template,
    VolumeView,
    shape_template_name,
)
from .replace_root_volume import NAME as ROOT_VOLUME
from .replace_root_volume import precondition_failure
from .shape import InstanceShape, capture, from_template_data, relaunch_blocker, to_template_data

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client

NAME = "relaunch"

# Removed from N, the volumes (and a kept O) once a replacement is done.
DONE_KEYS = (IN_FLIGHT, REPLACES, HOME_INSTANCE, HOME_DEVICE, HOME_DELETE_ON_TERMINATION,
             TARGET_AMI, LAUNCH_TOKEN, ATTEMPT, HEALTH_WAITED, ROLLBACK, RETRY, VOLUMES)
# Removed from O and the volumes once a rollback is done (ATTEMPT stays: the next
# attempt gets a new launch token).
ROLLED_BACK_KEYS = (IN_FLIGHT, TARGET_AMI, LAUNCH_TOKEN, HEALTH_WAITED, ROLLBACK, HOME_INSTANCE,
                    HOME_DEVICE, HOME_DELETE_ON_TERMINATION, RETRY, VOLUMES)

# Rollback steps the old instance does not need to run with its volumes: a permanent
# refusal of one is left to an operator, and the rollback finishes without it.
TERMINATE_NEW = "terminate the new instance"
UNPROTECT_NEW = "turn off the new instance's termination protection"
DELETE_TEMPLATE = "delete the launch template that kept the shape"
MOVE_ADDRESS_BACK = "move the Elastic IP back"
ATTEMPT_OFF = "remove the attempt from the Elastic IPs"
RESTORE_DOT = "restore DeleteOnTermination on"


def _not_needed_by_old(step: str) -> bool:
    return step in (TERMINATE_NEW, UNPROTECT_NEW, DELETE_TEMPLATE, MOVE_ADDRESS_BACK,
                    ATTEMPT_OFF) \
        or step.startswith(RESTORE_DOT)


def _by_hand(call: Call) -> str:
    """What an operator does instead of ``call``, which AWS refused for good."""
    kwargs = call.kwargs
    if call.step in (TERMINATE_NEW, UNPROTECT_NEW):
        new_id = kwargs.get("InstanceId") or kwargs["InstanceIds"][0]
        return (f"terminate {new_id} by hand (it holds none of the data volumes; turn off "
                "its termination protection first if it has one)")
    if call.step == DELETE_TEMPLATE:
        return f"delete launch template {kwargs['LaunchTemplateId']} by hand"
    if call.step == MOVE_ADDRESS_BACK:
        return (f"associate Elastic IP {kwargs['AllocationId']} with {kwargs['InstanceId']} "
                "by hand")
    if call.step == ATTEMPT_OFF:
        return f"remove tag {ATTEMPT} from {', '.join(kwargs['Resources'])} by hand"
    return f"set DeleteOnTermination on {kwargs['InstanceId']}'s data volumes by hand"


# A refused rollback step the old instance needs (stop N, detach from N, attach back,
# start O) is recorded on O with what to do, and not tried again until an operator
# removes that tag: the rollback is held, reported failed, and keeps no rule firing.
HOLD = "record that the rollback needs an operator"
MAX_TAG_VALUE = 256


def _by_operator(call: Call) -> str:
    """What an operator does for ``call``, a rollback step the old instance needs."""
    kwargs = call.kwargs
    if call.operation in ("start_instances", "stop_instances"):
        verb = "start" if call.operation == "start_instances" else "stop"
        return f"{verb} {(kwargs.get('InstanceIds') or ['the instance'])[0]}"
    if call.operation == "detach_volume":
        return f"detach {kwargs['VolumeId']} from {kwargs['InstanceId']}"
    if call.operation == "attach_volume":
        return f"attach {kwargs['VolumeId']} to {kwargs['InstanceId']} at {kwargs['Device']}"
    return f"do '{call.step}' by hand"


def template_name(old_id: str) -> str:
    """The launch template that keeps ``old_id``'s shape (private IP preservation)."""
    return shape_template_name(old_id)


def launch_token(old_id: str, ami_id: str, attempt: str) -> str:
    """The ClientToken of attempt ``attempt`` to relaunch ``old_id`` on ``ami_id``."""
    digest = hashlib.sha256(f"{old_id}|{ami_id}|{attempt}".encode()).hexdigest()[:16]
    return f"ami-upgrade-{old_id}-{attempt}-{digest}"   # at most 64 characters


@dataclass
class Relaunch(Machine):
    """The replacement of one old instance by a relaunched one."""

    old_id: str
    parameter: str
    goal_ami: str | None                 # None: a recovery run's, with no target recorded
    shape: InstanceShape | None
    root_device_for: Callable[[str], str]   # AMI ID -> its root device name
    keep_old_instance: bool = False
    health_timeout: float = 600.0
    resume: bool = False                 # found in flight: never starts a new replacement
    preserve_private_ip: bool = False
    health_resource: str | None = None   # where the time waited is recorded (O, or the template)
    pending_rollback: str | None = None
    pending_transient: bool = False      # the rollback is for transient errors: no failed-ami
    clock: Clock | None = None           # wall time for the retry a transient rollback leaves
    health_waited: float | None = None
    waiting: Wait | None = None
    volumes_seen: tuple[str, ...] = ()
    new_id: str | None = None
    health_since: float | None = None    # clock reading when this invocation began waiting
    health_base: float = 0.0             # waited before that (earlier invocations)
    searched: bool = False               # the tag query for its new instance ran once
    launched: bool = False               # a launch may have happened (token, template, O gone)
    template_seen: bool = False
    # Its data volumes' homes once seen tagged (never while resuming before a first read).
    homes: dict[str, tuple[str, bool]] | None = None
    # Rollback steps AWS refused for good that the old instance does not need (the new
    # instance's termination, the kept template, its address, DeleteOnTermination): step
    # -> what to do by hand. The rollback finishes without them and says so.
    left_to_operator: dict[str, str] = field(default_factory=dict)
    unprotected: bool = False            # the new instance's termination protection is off
    # A rollback step the old instance needs, refused for good: the operator-hold tag's
    # value (what to do, then why), written on the old instance before it is reported.
    hold: str | None = None

    # ------------------------------------------------------------ the decision
    def decide(self, obs: Observation) -> Call | Wait | Finish:
        self.volumes_seen = tuple(sorted({*self.volumes_seen, *(v.id for v in obs.volumes)}))
        self.homes = {**(self.homes or {}), **{
            v.id: (v.home_device or "", v.home_delete_on_termination)
            for v in obs.tagged_volumes()}}
        if len(obs.new) > 1:
            return self._fail(f"instances {', '.join(n.id for n in obs.new)} are all tagged as "
                              f"replacing {self.old_id}; resolve by hand (progress tags kept)",
                              Code.PROGRESS_TAGS_KEPT)
        new = obs.new[0] if obs.new else None
        if new is not None:
            self.new_id = new.id
        old = obs.old
        self.template_seen = self.template_seen or obs.template is not None
        self.launched = self.launched or old is None or obs.template is not None or bool(
            old.tags.get(LAUNCH_TOKEN))
        if old is not None and (self.hold or hold_of(old.tags)):
            return self._held(old)
        if old is None or old.state in ("shutting-down", "terminated"):
            return self._old_gone(obs, old, new)
        tags = old.tags
        if self.health_waited is None:
            self.health_waited = seconds_tag(tags.get(HEALTH_WAITED))
        if REPLACED_BY in tags:
            return self._cleanup_kept(obs, old, new)
        if ROLLBACK not in tags and self.pending_rollback and TARGET_AMI in tags:
            return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
                {ROLLBACK: retry.rollback_value(self.pending_rollback, self.pending_transient)})},
                FAIL, "record the rollback")
        if ROLLBACK in tags:
            return self._rollback(obs, old, new, tags[ROLLBACK])
        if self.pending_rollback:     # the intent itself failed: nothing was changed
            return self._fail(self.pending_rollback, Code.REPLACEMENT_FAILED)
        if TARGET_AMI not in tags:
            if (self.resume and IN_FLIGHT not in tags and not obs.new
                    and not obs.tagged_volumes() and obs.template is None):
                return finished_elsewhere(old.id, _ended_elsewhere(tags))   # since planned
            if self.resume or self.goal_ami is None:   # no goal: only ever resuming
                return self._fail(f"tagged as in flight, but {old.id} records no intent "
                                  f"({TARGET_AMI}); not touched", Code.NEEDS_OPERATOR)
            return _with_addresses(record_intent(
                old, {IN_FLIGHT: self.parameter, TARGET_AMI: self.goal_ami,
                      VOLUMES: ",".join(sorted(a.volume_id for a in old.attachments))},
                ROLL_BACK), obs.addresses)
        step = self._forward(obs, old, new, tags)
        if self.pending_rollback:     # decided just now: record it before anything else
            return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
                {ROLLBACK: retry.rollback_value(self.pending_rollback, self.pending_transient)})},
                FAIL, "record the rollback")
        return step

    def _forward(self, obs: Observation, old: InstanceView, new: InstanceView | None,
                 tags: Mapping[str, str]) -> Call | Wait | Finish:
        token = tags.get(LAUNCH_TOKEN)
        if new is None and not token:
            return self._prepare(obs, old, tags)
        if new is None:
            return self._launch(obs, old, tags[TARGET_AMI], token)
        return self._onto_new(obs, old, new)

    def _prepare(self, obs: Observation, old: InstanceView, tags: Mapping[str, str]
                 ) -> Call | Wait | Finish:
        """Before the launch: each volume's home recorded, O stopped, the volumes
        detached, then the AMI and the launch token fixed on O. Without a goal (a recovery
        run that found no target recorded when it planned), nothing moves: it rolls back."""
        if self.goal_ami is None:
            self.pending_rollback = (f"no target AMI was checked for {old.id} when this run "
                                     f"planned it ({TARGET_AMI} was written since); not "
                                     "launched")
            return Wait("rolling back")
        volumes = obs.volumes
        for v in obs.untagged_volumes():
            return Call("create_tags", {"Resources": [v.id], "Tags": tag_list({
                IN_FLIGHT: self.parameter, HOME_INSTANCE: old.id,
                HOME_DEVICE: v.device or "",
                HOME_DELETE_ON_TERMINATION: str(v.home_delete_on_termination).lower()})},
                ROLL_BACK, f"record the home of {v.id}")
        unattachable = [v for v in volumes if old.state == "running"
                        and v.attached_to == old.id and v.state != "in-use"]
        if unattachable:      # checked before the stop: it might not attach again
            v = unattachable[0]
            self.pending_rollback = (f"volume {v.id} is {v.state}, so it might not attach "
                                     f"again once detached; {old.id} was not stopped")
            return Wait("rolling back")
        stopping = _stop(old, "old", ROLL_BACK)
        if stopping is not None:
            return stopping
        for v in volumes:
            if v.attached_to not in (None, old.id):
                return self._fail(f"volume {v.id} is attached to {v.attached_to}, not "
                                  f"{old.id}; resolve by hand (it keeps its tags)",
                                  Code.NEEDS_OPERATOR)
            if v.attached_to == old.id and v.attach_state == "attached":
                return Call("detach_volume", {"VolumeId": v.id, "InstanceId": old.id,
                                              "Device": v.home_device or v.device},
                            ROLL_BACK, f"detach {v.id}")
        # Detaching from the stopped O is enough to fix the AMI and launch: the
        # attach to N waits for the volume to be available.
        busy = [v for v in volumes if v.state != "available"
                and not (v.attached_to == old.id and v.attach_state == "detaching")]
        if busy:
            return Wait(f"volume {busy[0].id} is {busy[0].attach_state or busy[0].state}")
        token = launch_token(old.id, self.goal_ami, tags.get(ATTEMPT, "1"))
        return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
            {TARGET_AMI: self.goal_ami, LAUNCH_TOKEN: token})}, ROLL_BACK,
            "fix the AMI and the launch token")

    def _launch(self, obs: Observation, old: InstanceView, target: str, token: str | None
                ) -> Call | Wait | Finish:
        """No new instance yet, the AMI fixed: the launch (or, preserving the private IP,
        the shape kept and O terminated first); a rollback when it launched and died."""
        died = [d for d in obs.dead_new if token and d.client_token == token]
        if died:      # launched, then gone (e.g. failed to boot)
            self.pending_rollback = (f"new instance {died[0].id} is {died[0].state}"
                                     + (f": {died[0].state_reason}" if died[0].state_reason
                                        else ""))
            return Wait("rolling back")
        if obs.template is not None:      # shape kept: O goes, freeing its private IP
            return self._holding(old, "") or Call(
                "terminate_instances", {"InstanceIds": [old.id]}, ROLL_BACK,
                "terminate the old instance to free its private IP")
        if self.shape is None:
            return self._fail(f"the shape of {old.id} could not be captured",
                                  Code.NEEDS_OPERATOR)
        kwargs = self.shape.run_instances_kwargs(
            target, self.root_device_for(target), token or "",
            {IN_FLIGHT: self.parameter, REPLACES: old.id},
            data_devices=sorted(v.home_device or "" for v in obs.tagged_volumes()),
            preserve_private_ip=self.preserve_private_ip)
        if self.preserve_private_ip:
            return self._keep_shape(old, obs, kwargs, token or "")
        return Call("run_instances", kwargs, ROLL_BACK, f"launch on {target}")

    def _onto_new(self, obs: Observation, old: InstanceView, new: InstanceView
                  ) -> Call | Wait | Finish:
        """N launched: its source/dest check, the volumes moved onto it, its status checks,
        the Elastic IPs; then O kept (tagged) or terminated."""
        volumes = obs.volumes
        if new.state == "pending":
            return Wait(f"new instance {new.id} is pending")
        if new.state != "running":
            self.pending_rollback = (f"new instance {new.id} is {new.state}"
                                     + (f": {new.state_reason}" if new.state_reason else ""))
            return Wait("rolling back")
        if self.shape is not None and new.source_dest_check != self.shape.source_dest_check:
            return Call("modify_instance_attribute", {
                "InstanceId": new.id, "SourceDestCheck": {"Value": self.shape.source_dest_check}},
                ROLL_BACK, "set source/dest check")
        # The status checks are waited for while the volumes attach (both take time).
        step = self._move_volumes(volumes, new, until_attached=False)
        if step is not None:
            return step
        unhealthy = self._health(obs, new)
        if unhealthy is not None:
            if unhealthy.health:
                return unhealthy
            self.pending_rollback = unhealthy.reason
            return Wait("rolling back")
        step = self._move_volumes(volumes, new) or _settle(
            volumes, new, obs.addresses, ROLL_BACK, "move the Elastic IP", self.parameter)
        if step is not None:
            return step
        if self.keep_old_instance:
            return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
                {REPLACED_BY: new.id})}, FAIL, "mark the old instance as replaced")
        return self._holding(old, "the old instance ") or Call(
            "terminate_instances", {"InstanceIds": [old.id]}, FAIL, "terminate the old instance")

    def _holding(self, old: InstanceView, which: str) -> Finish | None:
        """The failure when O still holds a data volume: it is never terminated then."""
        if not old.attachments:
            return None
        return self._fail(f"volume {old.attachments[0].volume_id} is attached to {which}"
                          f"{old.id}, which is therefore not terminated", Code.NEEDS_OPERATOR)

    def _health(self, obs: Observation, new: InstanceView) -> Wait | None:
        """None when N passes its status checks; a health Wait while it may still pass;
        otherwise a Wait (not ``health``) whose reason says why it failed."""
        status = obs.statuses.get(new.id, ("", ""))
        if "impaired" in status:
            return Wait(f"status checks of {new.id} failed: instance {status[0]}, "
                        f"system {status[1]}")
        if status == ("ok", "ok"):
            return None
        if (self.health_waited or 0.0) >= self.health_timeout:
            return Wait(f"status checks of {new.id} did not pass within "
                        f"{int(self.health_timeout)} s (instance {status[0]}, "
                        f"system {status[1]})")
        return Wait(f"status checks of {new.id}: {status[0] or 'unknown'}", health=True)

    def _keep_shape(self, old: InstanceView, obs: Observation, kwargs: dict[str, Any],
                    token: str) -> Call:
        """Private IP preservation: the launch request, kept in a launch template."""
        tags = {IN_FLIGHT: self.parameter, REPLACES: old.id, LAUNCH_TOKEN: token,
                ELASTIC_IPS: ",".join(sorted(a["AllocationId"] for a in obs.addresses
                                             if a.get("AllocationId"))),
                SOURCE_DEST_CHECK: str(old.source_dest_check).lower()}
        return Call("create_launch_template", {
            "LaunchTemplateName": template_name(old.id), "ClientToken": token,
            "LaunchTemplateData": to_template_data(kwargs),
            "TagSpecifications": [{"ResourceType": "launch-template", "Tags": tag_list(tags)}]},
            ROLL_BACK, "keep the shape in a launch template")

    def _move_volumes(self, volumes: tuple[VolumeView, ...], new: InstanceView,
                      until_attached: bool = True) -> Call | Wait | Finish | None:
        """Attach every volume to ``new`` at its home device; None once all are attached
        (not ``until_attached``: once all are attaching)."""
        for v in volumes:
            if v.attached_to == new.id:
                continue
            if v.attached_to == self.old_id and v.attach_state == "detaching":
                return Wait(f"volume {v.id} is detaching")
            if v.attached_to is not None:
                return self._fail(f"volume {v.id} is attached to {v.attached_to}, not "
                                  f"{new.id}; resolve by hand (it keeps its tags)",
                                  Code.NEEDS_OPERATOR)
            if v.state != "available":
                return Wait(f"volume {v.id} is {v.state}")
            return Call("attach_volume", {"VolumeId": v.id, "InstanceId": new.id,
                                          "Device": v.home_device}, ROLL_BACK,
                        f"attach {v.id} at {v.home_device}")
        attaching = [v for v in volumes if v.attach_state != "attached"]
        if attaching and until_attached:
            return Wait(f"volume {attaching[0].id} is {attaching[0].attach_state}")
        return None

    def _nothing_launched(self, obs: Observation, template: Template | None,
                          volumes: tuple[VolumeView, ...]) -> Call | Finish:
        """O terminated and no N found: launch from the kept shape (private IP
        preservation), or report what is left and where."""
        token = template.tags.get(LAUNCH_TOKEN, "") if template is not None else ""
        died = [d for d in obs.dead_new if token and d.client_token == token]
        if died:
            return self._fail(
                f"new instance {died[0].id} is {died[0].state} and the old instance is "
                "terminated (private IP preservation): the volumes are kept, tagged with "
                f"their home, and launch template {template_name(self.old_id)} keeps the "
                "shape", Code.NEEDS_OPERATOR)
        if template is not None:          # private IP preservation: launch, no way back
            unverified = _unverified_shape(template, obs.old_record, self.old_id)
            if unverified:
                return self._fail(unverified, Code.NEEDS_OPERATOR)
            kwargs = from_template_data(dict(template.data),
                                        template.tags.get(LAUNCH_TOKEN, ""))
            return Call("run_instances", kwargs, FAIL,
                        f"launch on {kwargs.get('ImageId')} with the old private IP")
        if volumes:
            return self._fail(
                f"old instance {self.old_id} is gone and no replacement exists; volumes "
                f"{', '.join(v.id for v in volumes)} are kept, tagged with their home",
                Code.NEEDS_OPERATOR)
        return finished_elsewhere(self.old_id, "the instance is gone and nothing of its "
                                  "replacement is in flight any more")

    def _old_gone(self, obs: Observation, old: InstanceView | None,
                  new: InstanceView | None) -> Call | Wait | Finish:
        """O terminated: finish moving onto N, then remove the progress tags."""
        volumes = obs.tagged_volumes()
        template = obs.template
        if old is not None and old.state == "shutting-down" and (new is None
                                                                   or template is not None):
            return Wait(f"old instance {old.id} is shutting down")
        if new is None:
            return self._nothing_launched(obs, template, volumes)
        if template is not None:
            self.health_resource = template.id
            if self.health_waited is None:
                self.health_waited = seconds_tag(template.tags.get(HEALTH_WAITED))
        if new.state == "pending":
            return Wait(f"new instance {new.id} is pending")
        if template is not None and new.state != "running":
            return self._fail(f"new instance {new.id} is {new.state}; the old instance is "
                              "terminated (private IP preservation), so check it by hand",
                              Code.NEEDS_OPERATOR)
        if new.state not in ("running", "stopped"):
            return Wait(f"new instance {new.id} is {new.state}")
        wanted_check = (template.tags.get(SOURCE_DEST_CHECK) != "false" if template is not None
                        else new.source_dest_check)
        if new.source_dest_check != wanted_check:
            return Call("modify_instance_attribute", {
                "InstanceId": new.id, "SourceDestCheck": {"Value": wanted_check}}, FAIL,
                "set source/dest check")
        step = self._move_volumes(volumes, new)
        if step is not None:
            return step
        if template is not None:
            unhealthy = self._health(obs, new)
            if unhealthy is not None and unhealthy.health:
                return unhealthy
            if unhealthy is not None:
                return self._fail(f"{unhealthy.reason}; the old instance is terminated (private "
                                  f"IP preservation), so {new.id} keeps the volumes: check it",
                                  Code.NEEDS_OPERATOR)
        step = _restore_delete_on_termination(volumes, new, FAIL)
        if step is not None:
            return step
        if template is not None:
            moved = {a.get("AllocationId") for a in obs.new_addresses}
            for allocation in filter(None, template.tags.get(ELASTIC_IPS, "").split(",")):
                if allocation not in moved:
                    return _associate(allocation, new.id, FAIL, "move the Elastic IP")
            return Call("delete_launch_template", {"LaunchTemplateId": template.id}, FAIL,
                        "delete the launch template that kept the shape")
        return Call("delete_tags", {"Resources": [new.id, *(v.id for v in volumes),
                                                  *_allocations(obs.new_addresses)],
                                    "Tags": [{"Key": k} for k in DONE_KEYS]}, FAIL,
                    "remove the progress tags")

    def _cleanup_kept(self, obs: Observation, old: InstanceView,
                      new: InstanceView | None) -> Call | Wait | Finish:
        resources = [old.id, *([new.id] if new else []), *(v.id for v in obs.tagged_volumes()),
                     *_allocations((*obs.addresses, *obs.new_addresses))]
        return Call("delete_tags", {"Resources": resources,
                                    "Tags": [{"Key": k} for k in DONE_KEYS]}, FAIL,
                    "remove the progress tags")

    def _rollback(self, obs: Observation, old: InstanceView, new: InstanceView | None,
                  reason: str) -> Call | Wait | Finish:
        volumes = obs.tagged_volumes()
        on_new = [v for v in volumes if new is not None and v.attached_to == new.id]
        if new is not None and on_new:
            stopping = _stop(new, "new", FAIL)
            if stopping is not None:
                return stopping
            for v in on_new:
                if v.attach_state == "attached":
                    return Call("detach_volume", {"VolumeId": v.id, "InstanceId": new.id,
                                                  "Device": v.device}, FAIL,
                                f"detach {v.id} from the new instance")
            return Wait(f"volume {on_new[0].id} is {on_new[0].attach_state}")
        if old.state not in ("running", "stopped"):
            return Wait(f"old instance {old.id} is {old.state}")
        step = self._move_volumes(volumes, old)
        if step is not None:
            return step
        step = _restore_delete_on_termination(volumes, old, FAIL)
        if step is None or step.step in self.left_to_operator:
            step = next((_associate(a["AllocationId"], old.id, FAIL, MOVE_ADDRESS_BACK)
                         for a in obs.new_addresses if a.get("AllocationId")), None)
        if step is not None and step.step not in self.left_to_operator:
            return step
        if old.state == "stopped":
            return Call("start_instances", {"InstanceIds": [old.id]}, FAIL,
                        "start the old instance")
        step = self._retire_new(new, obs)
        if step is not None:
            return step
        step = self._record_outcome(old, reason)
        if step is not None:
            return step
        addresses = (*obs.addresses, *obs.new_addresses)
        step = _attempt_off(addresses)
        if step is not None and step.step not in self.left_to_operator:
            return step
        keys = [k for k in ROLLED_BACK_KEYS
                if not (k == RETRY and retry.transient_rollback(reason))]
        # A new instance left to an operator no longer claims O: later AMIs move O again.
        stray = [new.id] if new is not None else []
        return Call("delete_tags", {"Resources": [old.id, *stray, *(v.id for v in volumes),
                                                  *_allocations(addresses)],
                                    "Tags": [{"Key": k} for k in (*keys, *(
                                        (REPLACES,) if stray else ()))]}, FAIL,
                    "remove the progress tags")

    def _retire_new(self, new: InstanceView | None, obs: Observation) -> Call | None:
        """With O back: N terminated (first undoing the termination protection N was
        launched with, which the engine copied from O), then the kept template deleted;
        a step AWS refused for good is left to the operator (None: nothing left)."""
        if new is not None and TERMINATE_NEW not in self.left_to_operator:
            if self.shape is not None and self.shape.disable_api_termination \
                    and not self.unprotected:
                return Call("modify_instance_attribute", {
                    "InstanceId": new.id, "DisableApiTermination": {"Value": False}}, FAIL,
                    UNPROTECT_NEW)
            return Call("terminate_instances", {"InstanceIds": [new.id]}, FAIL, TERMINATE_NEW)
        if obs.template is not None and DELETE_TEMPLATE not in self.left_to_operator:
            return Call("delete_launch_template", {"LaunchTemplateId": obs.template.id}, FAIL,
                        DELETE_TEMPLATE)
        return None

    def _record_outcome(self, old: InstanceView, reason: str) -> Call | None:
        """A rollback's record on O: ``failed-ami`` for a refusal; for transient errors,
        the time the replacement is tried again (``retry.replace_again``) instead."""
        if retry.transient_rollback(reason):
            attempt = int(old.tags.get(ATTEMPT, "1") or 1)
            recorded = retry.Retry.parse(old.tags.get(RETRY))
            if recorded is not None and (recorded.step, recorded.attempt) == (
                    retry.REPLACE_AGAIN, attempt):
                return None
            now = (self.clock or SystemClock()).now()
            again = retry.replace_again(attempt, reason[len(retry.TRANSIENT_MARK):], now)
            return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
                {RETRY: again.value()})}, FAIL, "record when to try again")
        target = old.tags.get(TARGET_AMI, "")
        if old.tags.get(FAILED_AMI) != target or old.tags.get(FAILURE_REASON) != reason[:256]:
            return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
                {FAILED_AMI: target, FAILURE_REASON: reason})}, FAIL, "record the failure")
        return None

    def _held(self, old: InstanceView) -> Call | Finish:
        """Held for an operator: the hold recorded on the old instance (once), then
        reported failed with what to do; no other call until the tag is removed."""
        if self.hold is not None and old.tags.get(OPERATOR_HOLD) != self.hold:
            return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
                {OPERATOR_HOLD: self.hold})}, FAIL, HOLD)
        return self._fail(held_reason(self.old_id, old.tags.get(OPERATOR_HOLD) or ""),
                          Code.HELD_FOR_OPERATOR)

    def _fail(self, reason: str, code: Code) -> Finish:
        return Finish(InstanceEntry(self.old_id, Action.FAILED, code, reason,
                                    new_instance_id=self.new_id, volumes=self.volumes_seen))

    # ------------------------------------------------------------ the effects
    def step(self, obs: Observation, records: Sequence[Mapping[str, Any]]) -> Call | Wait | Finish:
        return self.decide(obs)

    def succeeded(self, call: Call, obs: Observation,
                  response: Mapping[str, Any]) -> Finish | None:
        if call.operation == "run_instances":   # known by ID from now on: no tag query
            self.new_id = next((i["InstanceId"] for i in response.get("Instances", [])),
                               self.new_id)
        self.unprotected = self.unprotected or call.step == UNPROTECT_NEW
        return self.completed(call, obs, response)

    def health_pending(self) -> tuple[str, ...]:
        if (self.waiting is None or not self.waiting.health or self.new_id is None
                or (self.health_waited or 0.0) >= self.health_timeout):
            return ()
        return (self.new_id,)

    def needs(self) -> Needs:
        """The tag query for its new instance when resumed (it may find one, or two),
        then only while a launch may have happened that it has not seen (a new
        replacement has none before its launch); the launch template only where private
        IP preservation may have made one; the volumes' homes it knows."""
        search = self.new_id is None and ((self.resume and not self.searched) or self.launched)
        self.searched = True
        return Needs(new_ids=(self.new_id,) if self.new_id else (), search=search,
                     template=self.preserve_private_ip or self.resume or self.template_seen,
                     homes=self.homes if self.homes is not None else None if self.resume else {})

    def effect(self, call: Call, obs: Observation,
               response: Mapping[str, Any]) -> Observation | None:
        """Its own tag writes, a detach or an attach begun, O terminating (no template):
        what AWS answered; anything else is observed again."""
        if call.operation == "create_tags":
            return _tagged(obs, call.kwargs["Resources"], tag_map(call.kwargs["Tags"]))
        if call.operation == "detach_volume" and obs.old is not None:
            vid = call.kwargs["VolumeId"]
            old = replace(obs.old, attachments=tuple(
                replace(a, state="detaching") if a.volume_id == vid else a
                for a in obs.old.attachments))
            return replace(obs, old=old, volumes=tuple(
                replace(v, attach_state="detaching") if v.id == vid else v
                for v in obs.volumes))
        if call.operation == "attach_volume":
            vid, iid = call.kwargs["VolumeId"], call.kwargs["InstanceId"]
            return replace(obs, volumes=tuple(
                replace(v, attached_to=iid, device=call.kwargs["Device"],
                        attach_state="attaching", state="in-use") if v.id == vid else v
                for v in obs.volumes))
        if (call.operation == "terminate_instances" and obs.old is not None
                and obs.template is None and call.kwargs["InstanceIds"] == [obs.old.id]):
            return replace(obs, old=replace(obs.old, state="shutting-down"))
        return None

    def refused(self, call: Call, error: ClientError, obs: Observation) -> Finish | None:
        return self.failed(call, error, obs)

    def seen_volumes(self) -> tuple[str, ...]:
        return self.volumes_seen

    def completed(self, call: Call, obs: Observation, response: Mapping[str, Any]
                  ) -> Finish | None:
        """After a successful call: the final entry when that call finished the work."""
        if call.operation != "delete_tags" or call.step == ATTEMPT_OFF:
            return None
        old = obs.old
        if old is not None and ROLLBACK in old.tags and REPLACED_BY not in old.tags:
            again = retry.Retry.parse(old.tags.get(RETRY))
            if retry.transient_rollback(old.tags[ROLLBACK]) and again is not None:
                return Finish(InstanceEntry(self.old_id, Action.IN_PROGRESS,
                                            Code.RETRY_SCHEDULED, again.deferred(),
                                            new_instance_id=self.new_id,
                                            volumes=self.volumes_seen))
            left = "".join(f"; left to an operator: {what}"
                           for what in self.left_to_operator.values())
            return Finish(InstanceEntry(self.old_id, Action.FAILED, Code.ROLLED_BACK,
                                        f"rolled back: {old.tags[ROLLBACK]}{left}",
                                        new_instance_id=self.new_id, volumes=self.volumes_seen))
        new = obs.new[0] if obs.new else None
        ami = new.image_id if new else None
        return Finish(InstanceEntry(
            self.old_id, Action.REPLACED, Code.REPLACED,
            f"replaced by {self.new_id} on {ami}"
            + (f"; {self.old_id} kept stopped" if old is not None
               and old.state not in ("shutting-down", "terminated") else ""),
            new_instance_id=self.new_id, volumes=self.volumes_seen), ami_id=ami)

    def failed(self, call: Call, error: ClientError, obs: Observation) -> Finish | None:
        reason = describe_error(error, call.operation)
        log_event("replacement_call_failed", instance=self.old_id, step=call.step,
                  reason=reason)
        old = obs.old
        in_rollback = old is not None and ROLLBACK in old.tags
        if call.on_error == ROLL_BACK and not in_rollback:
            self.pending_rollback, self.pending_transient = reason, is_transient(error)
            return None
        if in_rollback and _not_needed_by_old(call.step):
            self.left_to_operator[call.step] = (
                f"'{call.step}' was refused ({reason}): {_by_hand(call)}")
            return None
        if in_rollback and call.step != HOLD and not is_transient(error):
            self.hold = (f"{_by_operator(call)} once the cause is fixed ('{call.step}' was "
                         f"refused: {reason})")[:MAX_TAG_VALUE]
            return None
        where = "rollback" if in_rollback else "replacement"
        return self._fail(f"{where} stopped at '{call.step}': {reason}; the next invocation "
                          "resumes it (progress tags kept)", Code.PROGRESS_TAGS_KEPT)

    def progress_entry(self) -> InstanceEntry:
        waiting = self.waiting.reason if self.waiting else "started"
        return InstanceEntry(self.old_id, Action.IN_PROGRESS, Code.IN_PROGRESS,
                             f"in progress ({waiting}); continues in the next invocation",
                             new_instance_id=self.new_id, volumes=self.volumes_seen)

    def note_health_wait(self, now: float) -> None:
        """Count the time waited for status checks by the clock, across rounds."""
        if self.health_since is None:
            self.health_since, self.health_base = now, self.health_waited or 0.0
        self.health_waited = self.health_base + (now - self.health_since)

    def health_tag(self) -> Call | None:
        """When yielding while waiting for status checks: carry the time waited over."""
        if self.waiting is None or not self.waiting.health:
            return None
        return Call("create_tags", {"Resources": [self.health_resource or self.old_id],
                                    "Tags": tag_list({HEALTH_WAITED: str(int(self.health_waited
                                                                          or 0))})}, FAIL,
            "record the time waited for status checks")


_NO = Attachment("", "", False, "")


def _ended_elsewhere(tags: Mapping[str, str]) -> str:
    if tags.get(FAILED_AMI):
        return (f"rolled back by another invocation ({tags.get(FAILURE_REASON, 'no reason')}); "
                f"{FAILED_AMI} is {tags[FAILED_AMI]}")
    return "nothing of its replacement is in flight any more (another invocation ended it)"


def _unverified_shape(template: Template, record: InstanceView | None, old_id: str
                      ) -> str | None:
    """Why the shape kept in ``template`` is not launched from: it is launched only while
    the old instance, still visible terminated, records the same launch token and target
    AMI (anyone who may create a launch template could write its tags and data); None when
    it does."""
    token = template.tags.get(LAUNCH_TOKEN, "")
    image = template.data.get("ImageId")
    if record is not None and token and (record.tags.get(LAUNCH_TOKEN),
                                         record.tags.get(TARGET_AMI)) == (token, image):
        return None
    why = ("is no longer visible, so the template cannot be checked against its record"
           if record is None else
           f"records another launch ({LAUNCH_TOKEN} {record.tags.get(LAUNCH_TOKEN)!r}, "
           f"{TARGET_AMI} {record.tags.get(TARGET_AMI)!r})")
    return (f"launch template {template.id} (tag {REPLACES}={old_id}) keeps a shape for "
            f"{old_id}, which {why}; nothing was launched. If the template is the function's "
            f"own (its CreatedBy is the function's role), launch from it by hand with "
            f"ClientToken {token[:64]!r} and the next run finishes the replacement; otherwise "
            f"delete it and remove tag {HOME_INSTANCE} from the volumes claiming {old_id}")


def _tagged(obs: Observation, resources: Sequence[str], tags: Mapping[str, str]
            ) -> Observation:
    """``obs`` once ``tags`` are on ``resources`` (CreateTags' effect is what it asked)."""
    def instance(view: InstanceView) -> InstanceView:
        return replace(view, tags={**view.tags, **tags}) if view.id in resources else view

    def volume(view: VolumeView) -> VolumeView:
        if view.id not in resources or HOME_INSTANCE not in tags:
            return view
        return replace(view, home_instance=tags[HOME_INSTANCE],
                       home_device=tags.get(HOME_DEVICE),
                       home_delete_on_termination=tags.get(HOME_DELETE_ON_TERMINATION) == "true")

    def address(data: Mapping[str, Any]) -> Mapping[str, Any]:
        if data.get("AllocationId") not in resources:
            return data
        return {**data, "Tags": tag_list({**tag_map(data.get("Tags")), **tags})}

    return replace(obs, old=instance(obs.old) if obs.old is not None else None,
                   new=tuple(map(instance, obs.new)), volumes=tuple(map(volume, obs.volumes)),
                   addresses=tuple(map(address, obs.addresses)),
                   new_addresses=tuple(map(address, obs.new_addresses)))


def _restore_delete_on_termination(volumes: tuple[VolumeView, ...], instance: InstanceView,
                                   on_error: OnError) -> Call | None:
    """Moved volumes get back the DeleteOnTermination they had at home (attach clears it)."""
    restore = [{"DeviceName": v.home_device, "Ebs": {"DeleteOnTermination": True}}
               for v in volumes if v.home_delete_on_termination
               and not (instance.attachment(v.id) or _NO).delete_on_termination]
    if not restore:
        return None
    return Call("modify_instance_attribute", {"InstanceId": instance.id,
                                              "BlockDeviceMappings": restore},
                on_error, f"restore DeleteOnTermination on {instance.id}")


def _stop(instance: InstanceView, which: str, on_error: OnError) -> Call | Wait | None:
    """None once ``instance`` (the ``which`` one, old or new) is stopped."""
    if instance.state == "running":
        return Call("stop_instances", {"InstanceIds": [instance.id]}, on_error,
                    f"stop the {which} instance")
    if instance.state != "stopped":
        return Wait(f"{which} instance {instance.id} is {instance.state}")
    return None


def _settle(volumes: tuple[VolumeView, ...], instance: InstanceView,
            addresses: Sequence[Mapping[str, Any]], on_error: OnError, why: str,
            parameter: str) -> Call | None:
    """With the volumes on ``instance``: their DeleteOnTermination back, then the Elastic
    IPs (held by the other instance) onto it, each marked in flight first if it is not
    (the role moves only addresses so marked); None when nothing is left to do."""
    step = _restore_delete_on_termination(volumes, instance, on_error)
    if step is not None:
        return step
    for address in addresses:
        if address.get("AllocationId"):
            return _mark(address, parameter, on_error) or _associate(
                address["AllocationId"], instance.id, on_error, why)
    return None


def _allocations(addresses: Sequence[Mapping[str, Any]]) -> list[str]:
    """The allocation IDs of ``addresses`` (Elastic IPs of a VPC), sorted, once each."""
    return sorted({a["AllocationId"] for a in addresses if a.get("AllocationId")})


def _with_addresses(step: Call | Finish, addresses: Sequence[Mapping[str, Any]]
                    ) -> Call | Finish:
    """The intent's CreateTags also on the old instance's Elastic IPs: the in-flight tag
    on an address is what lets the role move it (``AssociateAddress``), and it rides in
    the same call, so the intent and the addresses' mark are written together or not."""
    if not isinstance(step, Call):
        return step
    kwargs = step.kwargs
    return replace(step, kwargs={**kwargs, "Resources": [
        *kwargs["Resources"], *_allocations(addresses)]})


def _mark(address: Mapping[str, Any], parameter: str, on_error: OnError) -> Call | None:
    """The in-flight tag on an Elastic IP of the old instance that lacks it (associated
    after the intent was written, or its tag removed); None when it carries it."""
    if tag_map(address.get("Tags")).get(IN_FLIGHT) == parameter:
        return None
    allocation = address["AllocationId"]
    return Call("create_tags", {"Resources": [allocation], "Tags": tag_list(
        {IN_FLIGHT: parameter})}, on_error, f"mark Elastic IP {allocation} in flight")


def _attempt_off(addresses: Sequence[Mapping[str, Any]]) -> Call | None:
    """A rolled-back intent's ``attempt`` off the Elastic IPs it was written on (it stays
    on the old instance, so the final DeleteTags cannot take it); None when none has it."""
    marked = _allocations([a for a in addresses if ATTEMPT in tag_map(a.get("Tags"))])
    if not marked:
        return None
    return Call("delete_tags", {"Resources": marked, "Tags": [{"Key": ATTEMPT}]}, FAIL,
                ATTEMPT_OFF)


def _associate(allocation_id: str, instance_id: str, on_error: OnError, why: str) -> Call:
    return Call("associate_address", {"AllocationId": allocation_id, "InstanceId": instance_id,
                                      "AllowReassociation": True}, on_error, why)


# --------------------------------------------------------------- the strategy

# The instance attributes the engine sets, and those it never sets, for the role's
# ``ec2:Attribute`` conditions on ModifyInstanceAttribute. AWS's EC2 User Guide
# ("Identity-based policies for Amazon EC2", "ec2:Attribute condition key"): ``ec2:Attribute``
# carries the request's primitive ``Attribute`` parameter, and ``ec2:Attribute/<name>`` each
# parameter that is a primitive or an object holding only ``Value``; condition key names
# are not case-sensitive. Its own example compares ``ec2:Attribute`` with "Description"
# where the API's value is "description", so values are listed as the API's enum and as
# the SDK's member name, compared ignoring case. Every other parameter of the request
# (botocore's model: name and wire name) must be absent; tests/infra/test_permissions.py
# checks the list against the model.
ENGINE_SET_ATTRIBUTES = ("blockDeviceMapping", "blockDeviceMappings", "disableApiTermination",
                         "sourceDestCheck")
NEVER_SET_ATTRIBUTES = ("DisableApiStop", "EbsOptimized", "EnaSupport", "EnclaveOptions",
                        "GroupId", "Groups", "InstanceInitiatedShutdownBehavior",
                        "InstanceType", "Kernel", "Ramdisk", "SriovNetSupport", "UserData")


class RelaunchStrategy(Strategy):
    """Plans relaunches and builds their machines (see the module docstring)."""

    name = NAME
    target_tag = TARGET_AMI
    needs_addresses = True      # the old instance's Elastic IPs move to the new one
    # its rollback starts the old instance on its root volume; every data volume moves
    uses_keys_of = frozenset({"root", "data"})
    engine_tags = {
        "instance": (IN_FLIGHT, TARGET_AMI, ATTEMPT, LAUNCH_TOKEN, HEALTH_WAITED, ROLLBACK,
                     REPLACED_BY, FAILED_AMI, FAILURE_REASON, RETRY, VOLUMES, OPERATOR_HOLD),
        "volume": (IN_FLIGHT, HOME_INSTANCE, HOME_DEVICE, HOME_DELETE_ON_TERMINATION),
        # at launch, on top of the inherited tags; RETRY when its health wait meets an error
        "new instance": (IN_FLIGHT, REPLACES, RETRY),
        # the old instance's Elastic IPs: the intent's tags, in its own call
        "elastic-ip": (IN_FLIGHT, TARGET_AMI, ATTEMPT, VOLUMES),
    }
    permissions = Permissions(
        # GetLaunchTemplateData reads through DescribeInstanceAttribute and
        # DescribeInstanceCreditSpecifications, so AWS wants those granted with it.
        describe=("ec2:DescribeAddresses", "ec2:DescribeInstanceAttribute",
                  "ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeInstanceStatus",
                  "ec2:GetLaunchTemplateData"),
        on_instances=("ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances"),
        # O carries in-flight from the intent (1.), N from its launch, each volume from
        # the record of its home (2.), all until the progress tags are removed (9.).
        while_in_flight=("ec2:AttachVolume", "ec2:DetachVolume"),
        tag_on_create={"RunInstances": ("instance/*",),
                       "CreateLaunchTemplate": ("launch-template/*",)},
        # The old instance's Elastic IPs carry the intent's tags while they move.
        progress_tags_on=("elastic-ip/*",),
        statements=(
            # Images only of the owners allowedAmiOwners names, as the engine checks.
            Grant("LaunchOwnedImages", ("ec2:RunInstances",), ("image/*",),
                  {"StringEquals": {"ec2:Owner": "{ami_owners}"}}),
            Grant("LaunchResources", ("ec2:RunInstances",), (
                "snapshot/*", "key-pair/*", "network-interface/*",
                "placement-group/*", "security-group/*", "subnet/*", "volume/*")),
            Grant("LaunchTaggedInstances", ("ec2:RunInstances",), ("instance/*",),
                  {"StringEquals": {"aws:RequestTag/{scope_tag}": "{parameter}"}},
                  scope="tagged"),
            # Auto Scaling checks that whoever starts a group's refresh may launch from its
            # template; AWS does not document whether that check's request carries the
            # template's tags, so the scope tag is required only where a tag is present.
            Grant("LaunchFromTaggedTemplates", ("ec2:RunInstances",), ("instance/*",),
                  {"Null": {"ec2:LaunchTemplate": "false"},
                   "StringEqualsIfExists": {"aws:RequestTag/{scope_tag}": "{parameter}"}},
                  scope="tagged"),
            Grant("LaunchInstances", ("ec2:RunInstances",), ("instance/*",), scope="all"),
            # Block devices, source/dest check and termination protection of an instance
            # in flight, and no other attribute: never its user data, type or kernel.
            Grant("ShapeInFlight", ("ec2:ModifyInstanceAttribute",),
                  ("instance/*", "volume/*"), {
                      "StringEquals": {"aws:ResourceTag/{in_flight_tag}": "{parameter}"},
                      "ForAllValues:StringEqualsIgnoreCase": {"ec2:Attribute": list(
                          ENGINE_SET_ATTRIBUTES)},
                      "Null": {f"ec2:Attribute/{a}": "true" for a in NEVER_SET_ATTRIBUTES}}),
            Grant("MoveElasticIps", ("ec2:AssociateAddress",), ("network-interface/*",)),
            # An Elastic IP moves only if it carries the in-flight tag (written on the old
            # instance's addresses with the intent) and only onto an instance in flight (N,
            # or O in a rollback): IAM checks the condition on each resource of the call.
            Grant("MoveElasticIpsOntoInFlight", ("ec2:AssociateAddress",),
                  ("elastic-ip/*", "instance/*"),
                  {"StringEquals": {"aws:ResourceTag/{in_flight_tag}": "{parameter}"}}),
            # Private-IP preservation keeps the old instance's shape in a launch template of
            # the engine's own, marked in flight for this parameter. It launches from the
            # template's data as a whole request (never naming the template), whose tags
            # carry the scope tag: in tagged scope LaunchTaggedInstances grants it, and the
            # template itself is only ever deleted.
            Grant("CreateShapeTemplates", ("ec2:CreateLaunchTemplate",), ("launch-template/*",),
                  {"StringEquals": {"aws:RequestTag/{in_flight_tag}": "{parameter}"}}),
            Grant("DeleteShapeTemplates", ("ec2:DeleteLaunchTemplate",),
                  ("launch-template/*",),
                  {"StringEquals": {"aws:ResourceTag/{in_flight_tag}": "{parameter}"}}),
            # iam:PassRole: components/policy.py, for the roles in ami-upgrade:instanceRoles.
        ))

    def claims(self, tags: Mapping[str, str]) -> str | None:
        return tags.get(REPLACES) or tags.get(HOME_INSTANCE) or None

    def inconsistent(self, old_id: str, tags: Mapping[str, str]) -> str | None:
        """A launch token that is not the one the engine derives from the instance, the
        target AMI and the attempt."""
        token = tags.get(LAUNCH_TOKEN)
        if token is None or token == launch_token(old_id, tags.get(TARGET_AMI, ""),
                                                  tags.get(ATTEMPT, "1")):
            return None
        return (f"tag {LAUNCH_TOKEN} holds {token[:64]!r}, which is not the token the engine "
                f"derives from {old_id}, its {TARGET_AMI} and {ATTEMPT}; nothing is launched "
                "for it and it is not touched (resolve by hand)")

    def precheck(self, inputs: PlanInputs, instance: dict[str, Any]) -> InstancePlan | None:
        """What a relaunch cannot carry over of its network interfaces (more in
        :meth:`preflight`)."""
        dropped = preflight.interfaces_dropped(instance)
        return not_relaunched(inputs, instance, dropped) if dropped else None

    def preflight(self, inputs: PlanInputs, facts: preflight.Facts, instance: dict[str, Any],
                  plan: InstancePlan) -> InstancePlan:
        """References a relaunch would drop (then its root volume replaced in place, or a
        skip), else the launch's and the data volumes' preconditions."""
        settings = inputs.ctx.settings.standalone
        refs = preflight.references(facts, instance, settings.preserve_private_ip)
        if refs:
            return not_relaunched(inputs, instance, "; ".join(refs))
        blocker = (preflight.launch_blocker(facts, instance, inputs.ctx.goal.id,
                                            settings.preserve_private_ip)
                   or preflight.volume_blocker(facts, instance))
        if blocker:
            return inputs.skip(plan.instance_id, f"preflight: {blocker}", Code.PREFLIGHT_FAILED)
        return plan

    def plan(self, inputs: PlanInputs, instance: dict[str, Any], note: str = "") -> InstancePlan:
        settings, goal = inputs.ctx.settings.standalone, inputs.ctx.goal
        iid = instance["InstanceId"]
        shape = capture(inputs.ctx.clients.ec2, instance, inputs.volumes)
        blocker = relaunch_blocker(instance, shape,
                                   instance["InstanceType"] in inputs.instance_store,
                                   settings.keep_old_instance, goal.root_device_name)
        if blocker:
            return inputs.skip(iid, blocker, Code.NOT_SUPPORTED)
        if settings.preserve_private_ip and not shape.private_ip:
            return inputs.skip(iid, "preserve_private_ip is set but the instance has no "
                               "private IP", Code.NOT_SUPPORTED)
        unpassable = role_blocker(inputs.ctx.clients.iam, shape.iam_instance_profile_arn,
                                  inputs.ctx.settings.instance_roles, inputs.profile_roles)
        if unpassable:
            return inputs.skip(iid, unpassable, Code.PREFLIGHT_FAILED)
        volumes = tuple(v.volume_id for v in shape.data_volumes)
        return InstancePlan(iid, PlanAction.REPLACE, f"relaunch on {goal.id}, moving "
                            f"{len(volumes)} data volume(s){note}", NAME, shape, volumes)

    def resume_shape(self, ec2: EC2Client, instance: dict[str, Any]) -> InstanceShape | None:
        return capture(ec2, instance)

    def read(self, ec2: EC2Client, old_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        return {}

    def machine(self, ctx: RunContext, plan: InstancePlan,
                root_device_for: Callable[[str], str]) -> Relaunch:
        s = ctx.settings
        return Relaunch(plan.instance_id, s.parameter_name, ctx.goal_id(plan.target),
                        plan.shape, root_device_for,
                        keep_old_instance=s.standalone.keep_old_instance,
                        health_timeout=float(s.standalone.health_check_timeout_seconds),
                        resume=plan.action in (PlanAction.RESUME, PlanAction.ROLL_BACK),
                        preserve_private_ip=s.standalone.preserve_private_ip,
                        pending_rollback=(plan.reason if plan.action == PlanAction.ROLL_BACK
                                          else None), clock=ctx.clock)


def not_relaunched(inputs: PlanInputs, instance: dict[str, Any], why: str) -> InstancePlan:
    """An instance a relaunch would cut off (``why``): its root volume replaced in place
    when that is allowed and possible, otherwise skipped with the references and the fix."""
    goal, iid = inputs.ctx.goal, instance["InstanceId"]
    failure = precondition_failure(instance, current_image(inputs.images, instance), goal)
    if preflight.REFERENCED_TO_ROOT_VOLUME and ROOT_VOLUME in inputs.strategies \
            and failure is None:
        return InstancePlan(iid, PlanAction.REPLACE, f"replace the root volume in place from "
                            f"{goal.id} (not relaunched: {why})", ROOT_VOLUME)
    return inputs.skip(iid, f"not relaunched: {why}" + (
        f"; in-place root volume replacement is not possible either: {failure}" if failure
        else "; tag ami-upgrade:strategy=replace-root-volume to replace its root volume in "
             "place"), Code.REFERENCES_DROPPED)


STRATEGY = RelaunchStrategy()
