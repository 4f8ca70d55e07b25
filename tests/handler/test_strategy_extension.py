"""A strategy is one module plus one registry line: this module is the module.

``SwapRoot`` moves an instance onto the new AMI with EC2's root volume replacement and
nothing else (no preconditions, no failure record): the smallest strategy that gets
there. It subclasses :class:`~handler.standalone.core.Strategy` and
:class:`~handler.standalone.core.Machine`, overriding only what it does; ``registered``
stands for its line in ``handler/strategies.py``. The engine runs it end to end on the
embedded AWS: the setting accepts its name, planning plans it, the runner drives it
(and resumes it after a crash at any call), the report carries its codes, the tag-room
check counts its tags and the role policy grants its IAM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from standalone_estate import crash_then_converge, entry, function, published_estate

from components.policy import lambda_policy_document
from handler.outcomes import Code
from handler.report import InstanceEntry
from handler.run import Action, RunContext
from handler.settings import SettingsError, parse_standalone_configuration
from handler.standalone.core import (
    FAIL,
    Call,
    Finish,
    InstancePlan,
    Machine,
    Step,
    Strategy,
    Wait,
    record_intent,
)
from handler.standalone.iam import Grant, Permissions
from handler.standalone.observation import Observation
from handler.standalone.registry import STRATEGIES, registered
from handler.tags import ATTEMPT, IN_FLIGHT, PREFIX
from sandbox.faults import SimulatedCrash

NAME = "swap-root"
SWAP_AMI = f"{PREFIX}swap-ami"    # its intent on the instance: the AMI it heads to


@dataclass
class SwapRootMachine(Machine):
    old_id: str
    parameter: str
    goal: str | None          # None on a recovery run: only work already recorded goes on
    task_started: bool = False

    def step(self, obs: Observation, records: Sequence[Mapping[str, Any]]) -> Step:
        old = obs.old
        if old is None:
            return Finish(InstanceEntry(self.old_id, Action.FAILED, Code.REPLACEMENT_FAILED,
                                        "the instance is gone"))
        target = old.tags.get(SWAP_AMI)
        if target is None and self.goal is None:
            return Finish(InstanceEntry(self.old_id, Action.FAILED, Code.NEEDS_OPERATOR,
                                        "no validated image to swap onto"))
        if target is None:
            return record_intent(old, {IN_FLIGHT: self.parameter, SWAP_AMI: self.goal}, FAIL)
        if old.image_id == target:
            return Call("delete_tags", {"Resources": [old.id], "Tags": [
                {"Key": IN_FLIGHT}, {"Key": SWAP_AMI}]}, FAIL, "remove the intent")
        if self.task_started:
            return Wait(f"the root volume of {old.id} is being replaced")
        token = hashlib.sha256(f"{old.id}|{target}|{old.tags.get(ATTEMPT)}".encode())
        return Call("create_replace_root_volume_task", {
            "InstanceId": old.id, "ImageId": target, "ClientToken": token.hexdigest()[:32]},
            FAIL, f"swap the root volume for one from {target}")

    def succeeded(self, call: Call, obs: Observation,
                  response: Mapping[str, Any]) -> Finish | None:
        self.task_started = call.operation == "create_replace_root_volume_task"
        if call.operation != "delete_tags" or obs.old is None:
            return None
        target = obs.old.tags[SWAP_AMI]
        return Finish(InstanceEntry(self.old_id, Action.REPLACED, Code.REPLACED,
                                    f"root volume swapped from {target}",
                                    details={"strategy": NAME}), ami_id=target)


class SwapRoot(Strategy):
    name = NAME
    target_tag = SWAP_AMI
    permissions = Permissions(
        on_instances=("ec2:CreateReplaceRootVolumeTask",),
        on_volumes=("ec2:CreateReplaceRootVolumeTask",),
        statements=(Grant("SwapRootFromOwnedImages", ("ec2:CreateReplaceRootVolumeTask",),
                          ("image/*", "snapshot/*"),
                          {"StringEquals": {"ec2:Owner": "{ami_owners}"}}),))

    def machine(self, ctx: RunContext, plan: InstancePlan,
                root_device_for: Callable[[str], str]) -> Machine:
        return SwapRootMachine(plan.instance_id, ctx.settings.parameter_name,
                               ctx.goal_id(plan.target))


STRATEGY = SwapRoot()


@pytest.fixture
def estate(aws):
    with registered(STRATEGY):
        yield published_estate()


def _engine_tags(estate, instance: str, before: Mapping[str, str]) -> set[str]:
    return {k for k in estate.tags(instance) if k.startswith(PREFIX) and k not in before}


def test_the_engine_runs_a_strategy_defined_in_a_test(aws, estate):
    instance = estate.launch("db")
    calls = len(aws.faults.mutating_calls)

    report = function(aws, strategy=NAME).invoke({})

    assert [op for _, op in aws.faults.mutating_calls[calls:]] == [
        "CreateTags", "CreateReplaceRootVolumeTask", "DeleteTags"]
    assert entry(report, instance) == {
        "id": instance, "action": "replaced", "code": "replaced", "volumes": [],
        "strategy": NAME, "reason": f"root volume swapped from {estate.new_ami}"}
    assert report["status"] == "succeeded"
    assert estate.describe(instance)["ImageId"] == estate.new_ami
    assert estate.tags(instance)[ATTEMPT] == "1"


def test_a_dry_run_plans_it_by_name(aws, estate):
    instance = estate.launch("db", tags={f"{PREFIX}strategy": NAME})

    report = function(aws).invoke({"dry_run": True})

    assert entry(report, instance) == {
        "id": instance, "action": "planned", "code": "planned", "volumes": [],
        "strategy": NAME, "reason": f"{NAME} onto {estate.new_ami}"}
    assert estate.describe(instance)["ImageId"] == estate.old_ami


@pytest.mark.parametrize("n", [1, 2, 3])
def test_killed_after_any_call_it_is_resumed_to_the_end(aws, estate, n):
    instance = estate.launch("db")
    fn = function(aws, strategy=NAME)

    crash_then_converge(aws, fn, n)

    assert estate.describe(instance)["ImageId"] == estate.new_ami
    assert not {IN_FLIGHT, SWAP_AMI} & set(estate.tags(instance))
    assert len(aws.root_volume.tasks) == 1


def test_the_tag_room_check_counts_the_tags_it_declares(aws, estate):
    crowded = {f"team:{n}": "x" for n in range(48)}       # 48 + Name + parameter = 50
    instance = estate.launch("crowded", tags=crowded)
    calls = len(aws.faults.mutating_calls)

    report = function(aws, strategy=NAME).invoke({})

    assert entry(report, instance)["code"] == "preflight_failed"
    assert entry(report, instance)["reason"].startswith(
        f"preflight: 50 tags: with the 3 progress tags the {NAME} may write it would need 53")
    assert aws.faults.mutating_calls[calls:] == []


def test_what_it_writes_is_what_it_declares(aws, estate):
    instance = estate.launch("db")
    before = estate.tags(instance)
    aws.faults.crash_after(1)          # the intent written, nothing else yet
    with pytest.raises(SimulatedCrash):
        function(aws, strategy=NAME).invoke({})

    assert _engine_tags(estate, instance, before) == set(STRATEGY.engine_tags["instance"])


def test_the_setting_and_the_policy_know_it_only_while_registered():
    document = {"partition": "aws", "dns_suffix": "amazonaws.com", "region": "us-east-1",
                "account": "123456789012", "parameter_name": "/ami/linux/test",
                "scope": "tagged", "function_name": "f", "log_group_name": "/aws/lambda/f"}

    def sids() -> set[str]:
        return {s["Sid"] for s in lambda_policy_document(**document)["Statement"]}

    with pytest.raises(SettingsError, match="expected one of relaunch, replace-root-volume"):
        parse_standalone_configuration({"strategy": NAME})
    assert "SwapRootFromOwnedImages" not in sids()
    with registered(STRATEGY):
        assert parse_standalone_configuration({"strategy": NAME}).strategy == NAME
        assert "SwapRootFromOwnedImages" in sids()
        assert STRATEGIES[NAME] is STRATEGY
    assert NAME not in STRATEGIES
