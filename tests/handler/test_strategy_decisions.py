"""Each standalone strategy's decision, as a table: a constructed observation in, one step out.

The state machines decide from a snapshot only (plus what they noted in this invocation),
so every state, forward and rollback, can be pinned without AWS: the step (its operation,
what happens when it fails, its exact request) or the wait or the final entry. These
tables pin behaviour across refactorings of the modules around the machines.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from handler import tags as t
from handler.standalone.core import FAIL, ROLL_BACK, Call, Finish, Wait
from handler.standalone.observation import (
    Attachment,
    InstanceView,
    Observation,
    Template,
    VolumeView,
)
from handler.standalone.relaunch import DONE_KEYS, ROLLED_BACK_KEYS, Relaunch, launch_token
from handler.standalone.replace_root_volume import INTENT_KEYS, RootVolumeReplacement, task_token
from handler.standalone.shape import InstanceShape, RootVolume

P = "/ami/linux/test"
OLD, NEW, GOAL, CURRENT = "i-old", "i-new", "ami-goal", "ami-current"
TOKEN = launch_token(OLD, GOAL, "1")


# ------------------------------------------------------------------------ builders


def inst(iid: str = OLD, state: str = "running", image: str = CURRENT,
         tags: dict[str, str] | None = None, attachments: tuple[Attachment, ...] = (),
         source_dest_check: bool = True, reason: str = "", token: str = "") -> InstanceView:
    return InstanceView(iid, state, image, dict(tags or {}), "/dev/xvda", attachments,
                        source_dest_check, reason, token)


def vol(vid: str, state: str = "in-use", on: str | None = OLD, device: str | None = "/dev/sdf",
        attach: str | None = "attached", home: bool = True, dot: bool = False) -> VolumeView:
    return VolumeView(vid, state, on, device, attach, OLD if home else None,
                      "/dev/sdf" if home else None, dot)


def obs(old: InstanceView | None, new: tuple[InstanceView, ...] = (),
        volumes: tuple[VolumeView, ...] = (), **kw) -> Observation:
    return Observation(OLD, old, new, kw.pop("dead", ()), volumes, **kw)


INTENT = {t.IN_FLIGHT: P, t.TARGET_AMI: GOAL, t.ATTEMPT: "1"}
LAUNCHED = {**INTENT, t.LAUNCH_TOKEN: TOKEN}
ROLLING = {**LAUNCHED, t.ROLLBACK: "why"}
EIP_IN_FLIGHT = {"AllocationId": "eipalloc-1", "Tags": [{"Key": t.IN_FLIGHT, "Value": P}]}
ON_OLD = Attachment("vol-1", "/dev/sdf", False, "attached")
ON_NEW = Attachment("vol-1", "/dev/sdf", False, "attached")
AVAILABLE = vol("vol-1", "available", None, None, None)
ON_N = vol("vol-1", on=NEW)
SHAPE = InstanceShape(
    instance_id=OLD, image_id=CURRENT, instance_type="t3.micro", subnet_id="subnet-1",
    security_group_ids=("sg-1",), key_name=None, iam_instance_profile_arn=None, user_data=None,
    tags=(("Name", "web"),), ebs_optimized=False, monitoring=False, metadata_options=(),
    availability_zone=None, tenancy=None, placement_group=None, credit_specification=None,
    source_dest_check=True, disable_api_termination=False, disable_api_stop=False,
    shutdown_behavior=None, hibernation=False, private_ip="10.0.0.5", ipv6_address_count=0,
    root_device_name="/dev/xvda", root_volume=RootVolume(size=8, volume_type="gp3"))


def tagged(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs]


def relaunch(**kw) -> Relaunch:
    return Relaunch(OLD, P, GOAL, kw.pop("shape", SHAPE), lambda ami: "/dev/xvda", **kw)


def step_of(step: Call | Wait | Finish) -> tuple:
    """A step as plain values: what the table compares."""
    if isinstance(step, Call):
        return ("call", step.operation, step.on_error, step.kwargs)
    if isinstance(step, Wait):
        return ("wait", step.reason, step.health)
    return ("finish", step.entry.to_dict(), step.ami_id)


# --------------------------------------------------------------- relaunch: forward

RELAUNCH_FORWARD = {
    "intent on a running instance": (
        {}, obs(inst(tags={t.ATTEMPT: "2"})),
        ("call", "create_tags", ROLL_BACK, {"Resources": [OLD], "Tags": tagged(
            (t.IN_FLIGHT, P), (t.TARGET_AMI, GOAL), (t.VOLUMES, ""), (t.ATTEMPT, "3"))})),
    "intent rides onto the old instance's Elastic IPs (same call)": (
        {}, obs(inst(), addresses=({"AllocationId": "eipalloc-2"}, {"PublicIp": "192.0.2.1"},
                                   {"AllocationId": "eipalloc-1"})),
        ("call", "create_tags", ROLL_BACK, {
            "Resources": [OLD, "eipalloc-1", "eipalloc-2"], "Tags": tagged(
                (t.IN_FLIGHT, P), (t.TARGET_AMI, GOAL), (t.VOLUMES, ""), (t.ATTEMPT, "1"))})),
    "intent records the data volumes attached": (
        {}, obs(inst(attachments=(ON_OLD, Attachment("vol-0a", "/dev/sdg", True,
                                                     "attached")))),
        ("call", "create_tags", ROLL_BACK, {"Resources": [OLD], "Tags": tagged(
            (t.IN_FLIGHT, P), (t.TARGET_AMI, GOAL), (t.VOLUMES, "vol-0a,vol-1"),
            (t.ATTEMPT, "1"))})),
    "resumed, the intent removed meanwhile (issue 13): ended elsewhere": (
        {"resume": True}, obs(inst()),
        ("finish", {"id": OLD, "action": "skipped", "code": "ended_elsewhere",
                    "reason": "nothing of its replacement is "
                    "in flight any more (another invocation ended it)", "volumes": []}, None)),
    "resumed, rolled back meanwhile (issue 13): says so": (
        {"resume": True}, obs(inst(tags={t.FAILED_AMI: GOAL, t.FAILURE_REASON: "no"})),
        ("finish", {"id": OLD, "action": "skipped", "code": "ended_elsewhere",
                    "reason": "rolled back by another "
                    f"invocation (no); {t.FAILED_AMI} is {GOAL}", "volumes": []}, None)),
    "a volume in error is not detached: nothing is stopped (issue 13)": (
        {}, obs(inst(tags=INTENT), volumes=(vol("vol-1", "error"),)),
        ("call", "create_tags", FAIL, {"Resources": [OLD], "Tags": tagged(
            (t.ROLLBACK, f"volume vol-1 is error, so it might not attach again once "
                         f"detached; {OLD} was not stopped"))})),
    "resumed without intent: not touched": (
        {"resume": True}, obs(inst(tags={t.IN_FLIGHT: P})),
        ("finish", {"id": OLD, "action": "failed", "code": "needs_operator",
                    "reason": f"tagged as in flight, but {OLD} "
                    f"records no intent ({t.TARGET_AMI}); not touched", "volumes": []},
         None)),
    "stopped before starting: skipped": (
        {}, obs(inst(state="stopped")),
        ("finish", {"id": OLD, "action": "skipped", "code": "not_running",
                    "reason": "state changed to stopped "
                    "before the replacement started; nothing was changed", "volumes": []},
         None)),
    "home of an untagged volume": (
        {}, obs(inst(tags=INTENT, attachments=(ON_OLD,)), volumes=(vol("vol-1", home=False),)),
        ("call", "create_tags", ROLL_BACK, {"Resources": ["vol-1"], "Tags": tagged(
            (t.IN_FLIGHT, P), (t.HOME_INSTANCE, OLD), (t.HOME_DEVICE, "/dev/sdf"),
            (t.HOME_DELETE_ON_TERMINATION, "false"))})),
    "stop the old instance": (
        {}, obs(inst(tags=INTENT, attachments=(ON_OLD,)), volumes=(vol("vol-1"),)),
        ("call", "stop_instances", ROLL_BACK, {"InstanceIds": [OLD]})),
    "old instance stopping": (
        {}, obs(inst(state="stopping", tags=INTENT)),
        ("wait", f"old instance {OLD} is stopping", False)),
    "detach a volume": (
        {}, obs(inst(state="stopped", tags=INTENT, attachments=(ON_OLD,)),
                volumes=(vol("vol-1"),)),
        ("call", "detach_volume", ROLL_BACK,
         {"VolumeId": "vol-1", "InstanceId": OLD, "Device": "/dev/sdf"})),
    # Detaching from the stopped O is enough to fix the AMI (and launch): the attach waits.
    "volume detaching: the AMI is fixed": (
        {}, obs(inst(state="stopped", tags=INTENT), volumes=(vol("vol-1", attach="detaching"),)),
        ("call", "create_tags", ROLL_BACK, {"Resources": [OLD], "Tags": tagged(
            (t.TARGET_AMI, GOAL), (t.LAUNCH_TOKEN, TOKEN))})),
    "volume still detaching from the old instance: the attach waits": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),),
                (vol("vol-1", attach="detaching"),)),
        ("wait", "volume vol-1 is detaching", False)),
    "volume stuck in another state: wait before the AMI is fixed": (
        {}, obs(inst(state="stopped", tags=INTENT),
                volumes=(vol("vol-1", "available", None, None, None), vol("vol-2", "creating",
                                                                          None, None, None))),
        ("wait", "volume vol-2 is creating", False)),
    "volume elsewhere: resolve by hand": (
        {}, obs(inst(state="stopped", tags=INTENT), volumes=(vol("vol-1", on="i-other"),)),
        ("finish", {"id": OLD, "action": "failed", "code": "needs_operator",
                    "reason": "volume vol-1 is attached to "
                    f"i-other, not {OLD}; resolve by hand (it keeps its tags)",
                    "volumes": ["vol-1"]}, None)),
    "fix the AMI and the launch token": (
        {}, obs(inst(state="stopped", tags=INTENT), volumes=(AVAILABLE,)),
        ("call", "create_tags", ROLL_BACK, {"Resources": [OLD], "Tags": tagged(
            (t.TARGET_AMI, GOAL), (t.LAUNCH_TOKEN, TOKEN))})),
    "no shape captured": (
        {"shape": None}, obs(inst(state="stopped", tags=LAUNCHED), volumes=(AVAILABLE,)),
        ("finish", {"id": OLD, "action": "failed", "code": "needs_operator",
                    "reason": f"the shape of {OLD} could not "
                    "be captured", "volumes": ["vol-1"]}, None)),
    "new instance pending": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, "pending", GOAL),),
                (AVAILABLE,)),
        ("wait", f"new instance {NEW} is pending", False)),
    "source/dest check as before": (
        {}, obs(inst(state="stopped", tags=LAUNCHED),
                (inst(NEW, image=GOAL, source_dest_check=False),), (AVAILABLE,)),
        ("call", "modify_instance_attribute", ROLL_BACK,
         {"InstanceId": NEW, "SourceDestCheck": {"Value": True}})),
    "attach a volume to the new instance": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),), (AVAILABLE,)),
        ("call", "attach_volume", ROLL_BACK,
         {"VolumeId": "vol-1", "InstanceId": NEW, "Device": "/dev/sdf"})),
    # The status checks are waited for while the volumes attach.
    "volume attaching: the status checks are waited for meanwhile": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),),
                (vol("vol-1", on=NEW, attach="attaching"),),
                statuses={NEW: ("initializing", "initializing")}),
        ("wait", f"status checks of {NEW}: initializing", True)),
    "volume attaching, status checks passed": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),),
                (vol("vol-1", on=NEW, attach="attaching"),), statuses={NEW: ("ok", "ok")}),
        ("wait", "volume vol-1 is attaching", False)),
    "status checks pending": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),), (ON_N,),
                statuses={NEW: ("initializing", "initializing")}),
        ("wait", f"status checks of {NEW}: initializing", True)),
    "DeleteOnTermination restored": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL,
                                                             attachments=(ON_NEW,)),),
                (vol("vol-1", on=NEW, dot=True),), statuses={NEW: ("ok", "ok")}),
        ("call", "modify_instance_attribute", ROLL_BACK, {"InstanceId": NEW,
         "BlockDeviceMappings": [{"DeviceName": "/dev/sdf",
                                  "Ebs": {"DeleteOnTermination": True}}]})),
    "Elastic IP moved": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),), (ON_N,),
                statuses={NEW: ("ok", "ok")}, addresses=(EIP_IN_FLIGHT,)),
        ("call", "associate_address", ROLL_BACK, {"AllocationId": "eipalloc-1",
         "InstanceId": NEW, "AllowReassociation": True})),
    # The role moves only addresses carrying the in-flight tag: one associated after the
    # intent (or whose tag was removed) is marked first.
    "Elastic IP not marked in flight: marked before it moves": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),), (ON_N,),
                statuses={NEW: ("ok", "ok")}, addresses=(
                    {"AllocationId": "eipalloc-1", "Tags": tagged((t.IN_FLIGHT, "/other"))},)),
        ("call", "create_tags", ROLL_BACK, {"Resources": ["eipalloc-1"],
                                            "Tags": tagged((t.IN_FLIGHT, P))})),
    "old instance kept": (
        {"keep_old_instance": True},
        obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),), (ON_N,),
            statuses={NEW: ("ok", "ok")}),
        ("call", "create_tags", FAIL, {"Resources": [OLD], "Tags": tagged(
            (t.REPLACED_BY, NEW),)})),
    "old instance terminated": (
        {}, obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),), (ON_N,),
                statuses={NEW: ("ok", "ok")}),
        ("call", "terminate_instances", FAIL, {"InstanceIds": [OLD]})),
    "never terminate an instance holding a volume": (
        {}, obs(inst(state="stopped", tags=LAUNCHED, attachments=(ON_OLD,)),
                (inst(NEW, image=GOAL),), (ON_N,), statuses={NEW: ("ok", "ok")}),
        ("finish", {"id": OLD, "action": "failed", "code": "needs_operator",
                    "reason": "volume vol-1 is attached to the "
                    f"old instance {OLD}, which is therefore not terminated",
                    "volumes": ["vol-1"], "new_instance_id": NEW}, None)),
    # N holds the volumes: O's termination under way is enough to finish.
    "old one shutting down: progress tags removed": (
        {}, obs(inst(state="shutting-down", tags=LAUNCHED), (inst(NEW, image=GOAL),), (ON_N,)),
        ("call", "delete_tags", FAIL, {"Resources": [NEW, "vol-1"],
                                       "Tags": [{"Key": k} for k in DONE_KEYS]})),
    "old one shutting down, nothing launched: wait": (
        {}, obs(inst(state="shutting-down", tags=LAUNCHED), (), (AVAILABLE,)),
        ("wait", f"old instance {OLD} is shutting down", False)),
    "progress tags removed": (
        {}, obs(None, (inst(NEW, image=GOAL),), (ON_N,)),
        ("call", "delete_tags", FAIL, {"Resources": [NEW, "vol-1"],
                                       "Tags": [{"Key": k} for k in DONE_KEYS]})),
    "progress tags removed, from the moved Elastic IP too": (
        {}, obs(None, (inst(NEW, image=GOAL),), (ON_N,), new_addresses=(EIP_IN_FLIGHT,)),
        ("call", "delete_tags", FAIL, {"Resources": [NEW, "vol-1", "eipalloc-1"],
                                       "Tags": [{"Key": k} for k in DONE_KEYS]})),
    "kept old instance: progress tags removed": (
        {}, obs(inst(state="stopped", tags={**LAUNCHED, t.REPLACED_BY: NEW}),
                (inst(NEW, image=GOAL),), (ON_N,)),
        ("call", "delete_tags", FAIL, {"Resources": [OLD, NEW, "vol-1"],
                                       "Tags": [{"Key": k} for k in DONE_KEYS]})),
    "kept old instance: progress tags removed, from the moved Elastic IP too": (
        {}, obs(inst(state="stopped", tags={**LAUNCHED, t.REPLACED_BY: NEW}),
                (inst(NEW, image=GOAL),), (ON_N,), new_addresses=(EIP_IN_FLIGHT,)),
        ("call", "delete_tags", FAIL, {"Resources": [OLD, NEW, "vol-1", "eipalloc-1"],
                                       "Tags": [{"Key": k} for k in DONE_KEYS]})),
    "two new instances: resolve by hand": (
        {}, obs(inst(tags=LAUNCHED), (inst(NEW), inst("i-new2"))),
        ("finish", {"id": OLD, "action": "failed", "code": "progress_tags_kept",
                    "reason": f"instances {NEW}, i-new2 are all "
                    f"tagged as replacing {OLD}; resolve by hand (progress tags kept)",
                    "volumes": []}, None)),
    "gone with nothing in flight (issue 13: ended elsewhere, not a failure)": (
        {}, obs(None),
        ("finish", {"id": OLD, "action": "skipped", "code": "ended_elsewhere",
                    "reason": "the instance is gone and nothing "
                    "of its replacement is in flight any more", "volumes": []}, None)),
    "gone, volumes kept": (
        {}, obs(None, volumes=(AVAILABLE,)),
        ("finish", {"id": OLD, "action": "failed", "code": "needs_operator",
                    "reason": f"old instance {OLD} is gone and "
                    "no replacement exists; volumes vol-1 are kept, tagged with their home",
                    "volumes": ["vol-1"]}, None)),
}


@pytest.mark.parametrize("machine_kw, observation, expected", RELAUNCH_FORWARD.values(),
                         ids=RELAUNCH_FORWARD.keys())
def test_relaunch_forward(machine_kw, observation, expected):
    assert step_of(relaunch(**machine_kw).decide(observation)) == expected


def test_relaunch_launches_the_captured_shape_with_the_token():
    step = relaunch().decide(obs(inst(state="stopped", tags=LAUNCHED), volumes=(AVAILABLE,)))
    assert (step.operation, step.on_error) == ("run_instances", ROLL_BACK)
    assert step.kwargs == SHAPE.run_instances_kwargs(
        GOAL, "/dev/xvda", TOKEN, {t.IN_FLIGHT: P, t.REPLACES: OLD}, ["/dev/sdf"])
    assert step.kwargs["ClientToken"] == TOKEN and "PrivateIpAddress" not in step.kwargs


def test_a_relaunch_without_a_goal_rolls_back_before_fixing_any_ami():
    """A recovery run's machine for work that recorded no target when it was planned: the
    target written since was checked by no one, so nothing is fixed or launched."""
    machine = Relaunch(OLD, P, None, SHAPE, lambda ami: "/dev/xvda", resume=True)
    seen = obs(inst(state="stopped", tags=INTENT), volumes=(AVAILABLE,))
    assert step_of(machine.decide(seen)) == ("call", "create_tags", FAIL, {
        "Resources": [OLD], "Tags": tagged(
            (t.ROLLBACK, f"no target AMI was checked for {OLD} when this run planned it "
                         f"({t.TARGET_AMI} was written since); not launched"),)})
    with_goal = relaunch(resume=True).decide(seen)
    assert step_of(with_goal)[:2] == ("call", "create_tags")
    fixed = {tag["Key"]: tag["Value"] for tag in with_goal.kwargs["Tags"]}
    assert fixed == {t.TARGET_AMI: GOAL, t.LAUNCH_TOKEN: TOKEN}


# -------------------------------------------------------------- relaunch: rollback


def test_failing_status_checks_record_the_rollback_first():
    machine = relaunch()
    seen = obs(inst(state="stopped", tags=LAUNCHED), (inst(NEW, image=GOAL),), (ON_N,),
               statuses={NEW: ("impaired", "ok")})
    assert step_of(machine.decide(seen)) == ("call", "create_tags", FAIL, {
        "Resources": [OLD], "Tags": tagged(
            (t.ROLLBACK, f"status checks of {NEW} failed: instance impaired, system ok"),)})


def test_status_checks_past_the_timeout_roll_back():
    machine = relaunch(health_timeout=60.0)
    seen = obs(inst(state="stopped", tags={**LAUNCHED, t.HEALTH_WAITED: "61"}),
               (inst(NEW, image=GOAL),), (ON_N,), statuses={NEW: ("initializing", "ok")})
    step = machine.decide(seen)
    assert step_of(step)[:3] == ("call", "create_tags", FAIL)
    assert machine.pending_rollback == (f"status checks of {NEW} did not pass within 60 s "
                                        "(instance initializing, system ok)")


def test_a_launched_instance_that_died_rolls_back():
    machine = relaunch()
    dead = inst(NEW, "terminated", GOAL, reason="Server.InternalError", token=TOKEN)
    seen = obs(inst(state="stopped", tags=LAUNCHED), volumes=(AVAILABLE,), dead=(dead,))
    assert step_of(machine.decide(seen)) == ("call", "create_tags", FAIL, {
        "Resources": [OLD], "Tags": tagged(
            (t.ROLLBACK, f"new instance {NEW} is terminated: Server.InternalError"),)})


RELAUNCH_ROLLBACK = {
    "stop the new instance holding a volume": (
        obs(inst(state="stopped", tags=ROLLING), (inst(NEW, image=GOAL),), (ON_N,)),
        ("call", "stop_instances", FAIL, {"InstanceIds": [NEW]})),
    "new instance stopping": (
        obs(inst(state="stopped", tags=ROLLING), (inst(NEW, "stopping", GOAL),), (ON_N,)),
        ("wait", f"new instance {NEW} is stopping", False)),
    "detach from the new instance": (
        obs(inst(state="stopped", tags=ROLLING), (inst(NEW, "stopped", GOAL),), (ON_N,)),
        ("call", "detach_volume", FAIL, {"VolumeId": "vol-1", "InstanceId": NEW,
                                         "Device": "/dev/sdf"})),
    "detaching from the new instance": (
        obs(inst(state="stopped", tags=ROLLING), (inst(NEW, "stopped", GOAL),),
            (vol("vol-1", on=NEW, attach="detaching"),)),
        ("wait", "volume vol-1 is detaching", False)),
    "attach back to the old instance": (
        obs(inst(state="stopped", tags=ROLLING), (inst(NEW, "stopped", GOAL),), (AVAILABLE,)),
        ("call", "attach_volume", ROLL_BACK, {"VolumeId": "vol-1", "InstanceId": OLD,
                                              "Device": "/dev/sdf"})),
    "DeleteOnTermination restored on the old instance": (
        obs(inst(state="stopped", tags=ROLLING, attachments=(ON_OLD,)),
            (inst(NEW, "stopped", GOAL),), (vol("vol-1", dot=True),)),
        ("call", "modify_instance_attribute", FAIL, {"InstanceId": OLD,
         "BlockDeviceMappings": [{"DeviceName": "/dev/sdf",
                                  "Ebs": {"DeleteOnTermination": True}}]})),
    "Elastic IP moved back": (
        obs(inst(state="stopped", tags=ROLLING), (inst(NEW, "stopped", GOAL),), (),
            new_addresses=({"AllocationId": "eipalloc-1"},)),
        ("call", "associate_address", FAIL, {"AllocationId": "eipalloc-1", "InstanceId": OLD,
                                             "AllowReassociation": True})),
    "start the old instance": (
        obs(inst(state="stopped", tags=ROLLING), (inst(NEW, "stopped", GOAL),), ()),
        ("call", "start_instances", FAIL, {"InstanceIds": [OLD]})),
    "old instance starting": (
        obs(inst(state="pending", tags=ROLLING), (inst(NEW, "stopped", GOAL),), ()),
        ("wait", f"old instance {OLD} is pending", False)),
    "terminate the new instance": (
        obs(inst(tags=ROLLING), (inst(NEW, "stopped", GOAL),), ()),
        ("call", "terminate_instances", FAIL, {"InstanceIds": [NEW]})),
    "delete the kept shape": (
        obs(inst(tags=ROLLING), template=Template("lt-1", {}, {})),
        ("call", "delete_launch_template", FAIL, {"LaunchTemplateId": "lt-1"})),
    "record the failure": (
        obs(inst(tags=ROLLING)),
        ("call", "create_tags", FAIL, {"Resources": [OLD], "Tags": tagged(
            (t.FAILED_AMI, GOAL), (t.FAILURE_REASON, "why"))})),
    "remove the progress tags": (
        obs(inst(tags={**ROLLING, t.FAILED_AMI: GOAL, t.FAILURE_REASON: "why"}),
            volumes=(vol("vol-1"),)),
        ("call", "delete_tags", FAIL, {"Resources": [OLD, "vol-1"],
                                       "Tags": [{"Key": k} for k in ROLLED_BACK_KEYS]})),
    # attempt stays on O (the next attempt's token), so it leaves the addresses on its own.
    "the intent's attempt off the Elastic IP it rode on": (
        obs(inst(tags={**ROLLING, t.FAILED_AMI: GOAL, t.FAILURE_REASON: "why"}),
            addresses=({"AllocationId": "eipalloc-1", "Tags": tagged(
                (t.IN_FLIGHT, P), (t.ATTEMPT, "1"))},)),
        ("call", "delete_tags", FAIL, {"Resources": ["eipalloc-1"],
                                       "Tags": [{"Key": t.ATTEMPT}]})),
    "remove the progress tags, from the Elastic IP moved back too": (
        obs(inst(tags={**ROLLING, t.FAILED_AMI: GOAL, t.FAILURE_REASON: "why"}),
            addresses=(EIP_IN_FLIGHT,)),
        ("call", "delete_tags", FAIL, {"Resources": [OLD, "eipalloc-1"],
                                       "Tags": [{"Key": k} for k in ROLLED_BACK_KEYS]})),
}


@pytest.mark.parametrize("observation, expected", RELAUNCH_ROLLBACK.values(),
                         ids=RELAUNCH_ROLLBACK.keys())
def test_relaunch_rollback(observation, expected):
    assert step_of(relaunch().decide(observation)) == expected


def test_the_attempt_off_the_elastic_ip_does_not_end_the_rollback():
    """Only the final DeleteTags ends it: the one taking attempt off the addresses comes
    before, while the old instance still records the rollback."""
    machine = relaunch()
    seen = obs(inst(tags={**ROLLING, t.FAILED_AMI: GOAL, t.FAILURE_REASON: "why"}),
               addresses=({"AllocationId": "eipalloc-1", "Tags": tagged((t.ATTEMPT, "1"))},))
    attempt_off = machine.decide(seen)

    assert machine.succeeded(attempt_off, seen, {}) is None
    final = machine.decide(replace(seen, addresses=(EIP_IN_FLIGHT,)))
    assert step_of(machine.succeeded(final, seen, {}))[1]["action"] == "failed"


# ------------------------------------------------- relaunch: private IP preservation

KEPT_SHAPE = Template("lt-1", {t.LAUNCH_TOKEN: TOKEN}, {"ImageId": GOAL,
                                                          "InstanceType": "t3.micro"})
RELAUNCH_PRESERVE_IP = {
    "keep the shape in a launch template": (
        obs(inst(state="stopped", tags=LAUNCHED), volumes=(AVAILABLE,),
            addresses=({"AllocationId": "eipalloc-1"},)),
        ("call", "create_launch_template", ROLL_BACK)),
    "terminate the old instance to free its IP": (
        obs(inst(state="stopped", tags=LAUNCHED), volumes=(AVAILABLE,),
            template=Template("lt-1", {t.LAUNCH_TOKEN: TOKEN}, {})),
        ("call", "terminate_instances", ROLL_BACK)),
    "launch from the template, no way back": (
        obs(None, volumes=(AVAILABLE,), template=KEPT_SHAPE,
            old_record=inst(state="terminated", tags=LAUNCHED)),
        ("call", "run_instances", FAIL)),
    "attach on the new instance, rolling forward": (
        obs(None, (inst(NEW, image=GOAL),), (AVAILABLE,), template=Template(
            "lt-1", {t.LAUNCH_TOKEN: TOKEN, t.SOURCE_DEST_CHECK: "true"}, {})),
        ("call", "attach_volume", ROLL_BACK)),
    "Elastic IP onto the new instance": (
        obs(None, (inst(NEW, image=GOAL),), (ON_N,), statuses={NEW: ("ok", "ok")},
            template=Template("lt-1", {t.ELASTIC_IPS: "eipalloc-1"}, {})),
        ("call", "associate_address", FAIL)),
    "delete the template at the end": (
        obs(None, (inst(NEW, image=GOAL),), (ON_N,), statuses={NEW: ("ok", "ok")},
            template=Template("lt-1", {}, {})),
        ("call", "delete_launch_template", FAIL)),
}


@pytest.mark.parametrize("observation, expected", RELAUNCH_PRESERVE_IP.values(),
                         ids=RELAUNCH_PRESERVE_IP.keys())
def test_relaunch_preserving_the_private_ip(observation, expected):
    step = relaunch(preserve_private_ip=True).decide(observation)
    assert step_of(step)[:3] == expected


UNVERIFIED_FIX = (f"nothing was launched. If the template is the function's own (its "
                  f"CreatedBy is the function's role), launch from it by hand with ClientToken "
                  f"{TOKEN!r} and the next run finishes the replacement; otherwise delete it "
                  f"and remove tag {t.HOME_INSTANCE} from the volumes claiming {OLD}")


@pytest.mark.parametrize(("record", "why"), [
    (None, "is no longer visible, so the template cannot be checked against its record"),
    (inst(state="terminated", tags={**INTENT, t.LAUNCH_TOKEN: launch_token(OLD, "ami-x", "1")}),
     f"records another launch ({t.LAUNCH_TOKEN} {launch_token(OLD, 'ami-x', '1')!r}, "
     f"{t.TARGET_AMI} {GOAL!r})"),
    (inst(state="terminated", tags={**LAUNCHED, t.TARGET_AMI: "ami-x"}),
     f"records another launch ({t.LAUNCH_TOKEN} {TOKEN!r}, {t.TARGET_AMI} 'ami-x')"),
], ids=["old instance no longer visible", "another token recorded", "another image recorded"])
def test_a_kept_shape_the_old_instance_does_not_record_launches_nothing(record, why):
    """The template keeping a shape is launched from only while the old instance, still
    visible terminated, records its token and image: anyone who may create a launch
    template can write its tags and data. Otherwise the entry names the template and tag."""
    step = relaunch(preserve_private_ip=True, resume=True).decide(obs(
        None, volumes=(AVAILABLE,), template=KEPT_SHAPE, old_record=record))

    assert step_of(step) == ("finish", {
        "id": OLD, "action": "failed", "code": "needs_operator",
        "reason": f"launch template lt-1 (tag {t.REPLACES}="
        f"{OLD}) keeps a shape for {OLD}, which {why}; {UNVERIFIED_FIX}",
        "volumes": ["vol-1"]}, None)


def test_the_kept_shape_carries_the_private_ip_and_the_tags():
    step = relaunch(preserve_private_ip=True).decide(obs(
        inst(state="stopped", tags=LAUNCHED, source_dest_check=False), volumes=(AVAILABLE,),
        addresses=({"AllocationId": "eipalloc-2"}, {"AllocationId": "eipalloc-1"})))
    assert step.kwargs["LaunchTemplateName"] == f"ami-upgrade-{OLD}"
    assert step.kwargs["LaunchTemplateData"]["NetworkInterfaces"] == [{
        "DeviceIndex": 0, "SubnetId": "subnet-1", "Groups": ["sg-1"],
        "PrivateIpAddress": "10.0.0.5"}]
    assert step.kwargs["ClientToken"] == TOKEN
    assert step.kwargs["TagSpecifications"] == [{"ResourceType": "launch-template",
                                                 "Tags": tagged(
        (t.IN_FLIGHT, P), (t.REPLACES, OLD), (t.LAUNCH_TOKEN, TOKEN),
        (t.ELASTIC_IPS, "eipalloc-1,eipalloc-2"), (t.SOURCE_DEST_CHECK, "false"))}]


def test_a_failure_after_the_termination_rolls_forward():
    step = relaunch(preserve_private_ip=True).decide(obs(
        None, (inst(NEW, image=GOAL),), (ON_N,), statuses={NEW: ("impaired", "ok")},
        template=Template("lt-1", {}, {})))
    assert step_of(step) == ("finish", {
        "id": OLD, "action": "failed", "code": "needs_operator",
        "reason": f"status checks of {NEW} failed: instance "
        f"impaired, system ok; the old instance is terminated (private IP preservation), so "
        f"{NEW} keeps the volumes: check it", "volumes": ["vol-1"], "new_instance_id": NEW},
        None)


# ------------------------------------------------------- relaunch: after the calls


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, operation)


def test_a_finished_replacement_is_reported_replaced():
    machine = relaunch()
    machine.new_id = NEW
    call = Call("delete_tags", {}, FAIL, "remove the progress tags")
    done = machine.completed(call, obs(None, (inst(NEW, image=GOAL),)), {})
    assert step_of(done) == ("finish", {"id": OLD, "action": "replaced", "code": "replaced",
                                        "reason":
                                        f"replaced by {NEW} on {GOAL}", "volumes": [],
                                        "new_instance_id": NEW}, GOAL)


def test_a_finished_rollback_is_reported_failed():
    machine = relaunch()
    call = Call("delete_tags", {}, FAIL, "remove the progress tags")
    done = machine.completed(call, obs(inst(tags={t.ROLLBACK: "why"})), {})
    assert step_of(done) == ("finish", {"id": OLD, "action": "failed", "code": "rolled_back",
                                        "reason": "rolled back: why", "volumes": []}, None)


def test_other_calls_do_not_finish():
    call = Call("stop_instances", {}, ROLL_BACK, "stop")
    assert relaunch().completed(call, obs(inst()), {}) is None


def test_a_refused_forward_call_starts_a_rollback():
    machine = relaunch()
    call = Call("run_instances", {}, ROLL_BACK, "launch")
    assert machine.failed(call, client_error("InsufficientInstanceCapacity", "RunInstances"),
                          obs(inst(tags=LAUNCHED))) is None
    assert machine.pending_rollback == "RunInstances failed: InsufficientInstanceCapacity: no"


def test_a_rollback_step_the_old_instance_needs_refused_for_good_is_held_for_an_operator():
    """Recorded on the old instance first (operator-hold: what to do, then why), then
    reported failed; no step of the rollback is tried again."""
    call = Call("start_instances", {"InstanceIds": [OLD]}, FAIL, "start the old instance")
    machine = relaunch()
    assert machine.failed(call, client_error("IncorrectInstanceState", "StartInstances"),
                          obs(inst(state="stopped", tags=ROLLING))) is None
    hold = (f"start {OLD} once the cause is fixed ('start the old instance' was refused: "
            "StartInstances failed: IncorrectInstanceState: no)")
    assert step_of(machine.decide(obs(inst(state="stopped", tags=ROLLING)))) == (
        "call", "create_tags", FAIL,
        {"Resources": [OLD], "Tags": [{"Key": t.OPERATOR_HOLD, "Value": hold}]})
    done = machine.decide(obs(inst(state="stopped", tags={**ROLLING, t.OPERATOR_HOLD: hold})))
    assert step_of(done)[0] == "finish"
    assert done.entry.action == "failed"
    assert done.entry.reason.startswith(f"rollback held for an operator: {hold}; then remove "
                                        f"tag {t.OPERATOR_HOLD} from {OLD}")


# ----------------------------------------------------------- replace-root-volume

ROOT_INTENT = {t.IN_FLIGHT: P, t.ROOT_VOLUME_AMI: GOAL, t.ATTEMPT: "1"}


def task(state: str, attempt: str = "1", image: str = GOAL, start: str = "1") -> dict:
    return {"ReplaceRootVolumeTaskId": f"replacevol-{attempt}{start}", "TaskState": state,
            "ImageId": image, "StartTime": start, "Tags": tagged((t.ATTEMPT, attempt))}


def root(**kw) -> RootVolumeReplacement:
    return RootVolumeReplacement(OLD, P, GOAL, **kw)


ROOT_VOLUME = {
    "gone": ({}, None, [], ("finish", {"id": OLD, "action": "failed", "code": "replacement_failed",
                                       "reason":
                                       "the instance is gone; nothing left in flight",
                                       "volumes": []}, None)),
    "intent": ({}, inst(tags={t.ATTEMPT: "1"}), [],
               ("call", "create_tags", FAIL, {"Resources": [OLD], "Tags": tagged(
                   (t.IN_FLIGHT, P), (t.ROOT_VOLUME_AMI, GOAL), (t.ATTEMPT, "2"))})),
    "resumed without intent": (
        {"resume": True}, inst(tags={t.IN_FLIGHT: P}), [],
        ("finish", {"id": OLD, "action": "failed", "code": "needs_operator",
                    "reason": "tagged as in flight, but records "
                    f"no intent ({t.ROOT_VOLUME_AMI}); not touched", "volumes": []}, None)),
    "refused before the intent": (
        {"pending_failure": "no"}, inst(), [],
        ("finish", {"id": OLD, "action": "failed", "code": "replacement_failed",
                    "reason": "no", "volumes": []}, None)),
    "stopped before starting": (
        {}, inst(state="stopped"), [],
        ("finish", {"id": OLD, "action": "skipped", "code": "not_running",
                    "reason": "state changed to stopped before "
                    "the replacement started; nothing was changed", "volumes": []}, None)),
    "start the task": (
        {}, inst(tags=ROOT_INTENT), [task("succeeded", attempt="0")],
        ("call", "create_replace_root_volume_task", FAIL, {
            "InstanceId": OLD, "ImageId": GOAL, "DeleteReplacedRootVolume": False,
            "ClientToken": task_token(OLD, GOAL, "1"),
            "TagSpecifications": [{"ResourceType": "replace-root-volume-task",
                                   "Tags": tagged((t.ATTEMPT, "1"), (t.IN_FLIGHT, P))}]})),
    "instance not running yet": (
        {}, inst(state="pending", tags=ROOT_INTENT), [],
        ("wait", f"instance {OLD} is pending", False)),
    "task running": (
        {}, inst(tags=ROOT_INTENT), [task("failed", start="0"), task("in-progress")],
        ("wait", "root volume task replacevol-11 is in-progress", False)),
    "task succeeded": (
        {}, inst(image=GOAL, tags=ROOT_INTENT), [task("succeeded")],
        ("call", "delete_tags", FAIL, {"Resources": [OLD],
                                       "Tags": [{"Key": k} for k in INTENT_KEYS]})),
    "already on the AMI, no task": (
        {}, inst(image=GOAL, tags=ROOT_INTENT), [],
        ("call", "delete_tags", FAIL, {"Resources": [OLD],
                                       "Tags": [{"Key": k} for k in INTENT_KEYS]})),
    "task failed: record it": (
        {}, inst(tags=ROOT_INTENT), [task("failed")],
        ("call", "create_tags", FAIL, {"Resources": [OLD], "Tags": tagged(
            (t.FAILED_AMI, GOAL),
            (t.FAILURE_REASON, "root volume replacement task replacevol-11 failed"))})),
    "failure recorded: clear the intent": (
        {"pending_failure": "refused"}, inst(tags={**ROOT_INTENT, t.FAILED_AMI: GOAL}), [],
        ("call", "delete_tags", FAIL, {"Resources": [OLD],
                                       "Tags": [{"Key": k} for k in INTENT_KEYS]})),
}


@pytest.mark.parametrize("machine_kw, old, tasks, expected", ROOT_VOLUME.values(),
                         ids=ROOT_VOLUME.keys())
def test_replace_root_volume(machine_kw, old, tasks, expected):
    assert step_of(root(**machine_kw).decide(old, tasks)) == expected


def test_root_volume_completed_and_failed():
    machine = root()
    machine.decide(inst(image=GOAL, tags=ROOT_INTENT), [task("succeeded")])
    call = Call("delete_tags", {}, FAIL, "remove the progress tags")
    assert step_of(machine.completed(call, inst(image=GOAL, tags=ROOT_INTENT), {})) == (
        "finish", {"id": OLD, "action": "replaced", "code": "replaced",
                   "reason": f"root volume replaced in place "
                   f"from {GOAL} (task replacevol-11); the replaced root volume is kept",
                   "volumes": [], "strategy": "replace-root-volume"}, GOAL)
    refused = root()
    start = Call("create_replace_root_volume_task", {}, FAIL, "replace")
    assert refused.failed(start, client_error("IncorrectState", "CreateReplaceRootVolumeTask"),
                          inst(tags=ROOT_INTENT)) is None
    assert refused.pending_failure == "CreateReplaceRootVolumeTask failed: IncorrectState: no"
    assert step_of(refused.completed(call, inst(tags=ROOT_INTENT), {})) == (
        "finish", {"id": OLD, "action": "failed", "code": "replacement_failed",
                   "reason": refused.pending_failure,
                   "volumes": []}, None)
    stuck = root().failed(call, client_error("Throttling", "DeleteTags"), inst())
    assert step_of(stuck)[1]["reason"] == ("stopped at 'remove the progress tags': DeleteTags "
                                           "failed: Throttling: no; the next invocation "
                                           "resumes it (progress tags kept)")
    assert root().progress_entry().to_dict() == {
        "id": OLD, "action": "in_progress", "code": "in_progress",
        "reason": "in progress (started); continues in "
        "the next invocation", "volumes": [], "strategy": "replace-root-volume"}
