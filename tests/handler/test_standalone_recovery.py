"""Issue 13: work in flight reaches an end state whatever else is wrong with the run.

Class 1 (run-level checks fail: in-flight work is still resumed or rolled back),
class 2 (what is left is scheduled: the follow-up rule, retried until an end state),
class 7 (a 60 s function progresses; interleaved invocations never report a finished
replacement as failed). Each test here failed on the code before issue 13.
"""

from __future__ import annotations

import json

import boto3
import pytest
from standalone_estate import PARAMETER, build_estate, entry, function, set_parameter

from sandbox import follow_up
from sandbox.faults import SimulatedCrash

STOP = 4   # a clean replacement's 4th mutating call stops the old instance


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _tags(estate, instance_id: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in estate.describe(instance_id).get("Tags", [])}


def _stopped_midway(aws, fn) -> None:
    """An invocation killed right after stopping the old instance."""
    aws.faults.crash_after(STOP)
    with pytest.raises(SimulatedCrash):
        fn.invoke({})


def _assert_back_on_old(estate, old: str, volumes: dict[str, str]) -> None:
    assert estate.describe(old)["State"]["Name"] == "running"
    assert estate.data_volumes(old) == volumes
    assert [i["InstanceId"] for i in estate.live_instances()] == [old]


# ------------------------------------------------------------------ class 1


def test_a_deregistered_target_ami_rolls_the_work_in_flight_back(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    _stopped_midway(aws, fn)
    estate.ec2.deregister_image(ImageId=estate.new_ami)   # withdrawn: it is bad

    report = fn.invoke({})

    assert report["status"] == "failed"
    assert report["reason"].startswith(f"parameter {PARAMETER} (version 1) holds "
                                       f"{estate.new_ami}, which does not exist")
    assert "1 replacement(s) in flight were driven on regardless" in report["reason"]
    assert entry(report, old)["action"] == "failed"
    assert entry(report, old)["reason"].startswith(
        f"rolled back: its target AMI {estate.new_ami} does not exist or is not visible")
    _assert_back_on_old(estate, old, volumes)


def test_a_deleted_parameter_still_finishes_the_work_in_flight(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    _stopped_midway(aws, fn)
    boto3.client("ssm").delete_parameter(Name=PARAMETER)

    report = fn.invoke({})

    assert report["status"] == "failed"
    assert report["reason"].startswith(f"cannot read parameter {PARAMETER}: ParameterNotFound")
    assert entry(report, old)["action"] == "replaced"
    new = estate.replacement_of(old)
    assert (new["ImageId"], estate.data_volumes(new["InstanceId"])) == (estate.new_ami, volumes)


def test_a_broken_exclusions_parameter_still_finishes_the_work_in_flight(aws, estate):
    boto3.client("ssm").put_parameter(Name="/ami/exclusions", Value='{"instances": []}',
                                      Type="String")
    old = estate.launch("app")
    fn = function(aws)
    fn.environment["EXCLUSIONS_PARAMETER_NAME"] = "/ami/exclusions"
    _stopped_midway(aws, fn)
    boto3.client("ssm").put_parameter(Name="/ami/exclusions", Value="{not json",
                                      Type="String", Overwrite=True)

    report = fn.invoke({})

    assert report["status"] == "failed"
    assert "exclusions parameter /ami/exclusions" in report["reason"]
    assert entry(report, old)["action"] == "replaced"
    assert estate.replacement_of(old)["ImageId"] == estate.new_ami


def test_a_failed_run_with_nothing_in_flight_touches_nothing(aws, estate):
    estate.launch("app")
    boto3.client("ssm").delete_parameter(Name=PARAMETER)
    fn = function(aws)
    before = len(aws.faults.mutating_calls)

    report = fn.invoke({})

    assert (report["status"], report["instances"]) == ("failed", [])
    assert aws.faults.mutating_calls[before:] == []


# ------------------------------------------------------------------ class 7


def test_the_smallest_timeout_still_makes_progress(aws, estate):
    """60 s, the least the stack allows: before, its 60 s margin left no time at all and
    100 continuations did nothing."""
    instances = [estate.launch(f"app-{n}", volumes=1) for n in range(2)]
    aws.faults.status_checks("ok", after_seconds=30)
    fn = function(aws, timeout_seconds=60)

    fn.invoke({})
    fn.drain()

    for old in instances:
        assert estate.replacement_of(old)["ImageId"] == estate.new_ami
    assert len(fn.reports) <= 10


def test_interleaved_invocations_never_report_a_finished_replacement_as_failed(aws, estate):
    """B plans to resume a replacement; before B's first round reads, C finishes it."""
    old = estate.launch("app")
    fn = function(aws)
    aws.faults.crash_after(3)                # intent and volume homes recorded
    with pytest.raises(SimulatedCrash):
        fn.invoke({})
    other = function(aws)
    interleaved: list[dict] = []

    def finish_it_meanwhile(params: dict) -> bool:
        if not interleaved:
            interleaved.append({})
            interleaved[0] = other.invoke({})
        return False                         # then B's own call goes through

    aws.faults.fail("DescribeLaunchTemplates", "Unused", times=None, when=finish_it_meanwhile)

    report = fn.invoke({})

    new = estate.replacement_of(old)["InstanceId"]
    assert entry(interleaved[0], old)["action"] == "replaced"
    assert entry(report, old)["action"] != "failed"
    assert entry(report, old) == {
        "id": old, "action": "replaced", "code": "replaced", "new_instance_id": new,
        "reason": f"replaced by {new} on {estate.new_ami} (finished by another invocation)",
        "volumes": sorted(estate.data_volumes(new).values())}


# ------------------------------------------------------------------ class 2


def test_a_capacity_error_on_the_rollbacks_start_is_retried_until_the_old_one_runs(aws,
                                                                                  estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws, timeout_seconds=120)
    follow_up.deploy(fn, PARAMETER)
    aws.faults.fail("RunInstances", "Unsupported", "not here")       # permanent: roll back
    aws.faults.fail("StartInstances", "InsufficientInstanceCapacity", "none", times=None)

    first = fn.invoke({})

    assert entry(first, old)["action"] == "in_progress"
    assert "retrying 'start the old instance'" in entry(first, old)["reason"]
    assert entry(first, old)["next_run"] == (
        "the follow-up rule ami-upgrade-follow-up runs it again every 5 minutes")
    assert follow_up.state(fn) == "ENABLED"
    assert "continuation" not in first          # nothing can move now: the rule runs it
    assert estate.describe(old)["State"]["Name"] == "stopped"
    for _ in range(3):                           # AWS still has no capacity: retried
        follow_up.fire(fn)
    assert estate.describe(old)["State"]["Name"] == "stopped"
    assert follow_up.state(fn) == "ENABLED"
    aws.faults.clear()

    for _ in range(8):                           # the backoff is at most 30 minutes
        follow_up.fire(fn)

    _assert_back_on_old(estate, old, volumes)
    assert _tags(estate, old)["ami-upgrade:failed-ami"] == estate.new_ami
    assert follow_up.state(fn) == "DISABLED"
    assert follow_up.fire(fn) is None


def test_the_rule_is_enabled_before_the_first_mutating_call(aws, estate):
    """A crash right after the first call leaves the rule firing: nothing is forgotten."""
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    fn = function(aws)
    follow_up.deploy(fn, PARAMETER)
    aws.faults.crash_after(STOP + 1)          # EnableRule, then the replacement's first four

    with pytest.raises(SimulatedCrash):
        fn.invoke({})

    assert aws.faults.mutating_calls[-(STOP + 1)][1] == "EnableRule"
    assert follow_up.state(fn) == "ENABLED"
    report = follow_up.fire(fn)
    assert entry(report, old)["action"] == "replaced"
    assert estate.data_volumes(estate.replacement_of(old)["InstanceId"]) == volumes
    assert follow_up.state(fn) == "DISABLED"


def test_a_permanent_failure_with_progress_kept_is_scheduled_and_says_so(aws, estate):
    """preserve_private_ip: the old instance is terminated; a refused launch is retried
    by the rule (before: "the next invocation resumes it", and nothing invoked it)."""
    old = estate.launch("app")
    fn = function(aws, preserve_private_ip=True)
    follow_up.deploy(fn, PARAMETER)
    aws.faults.fail("RunInstances", "Unsupported", "not now")

    first = fn.invoke({})

    assert entry(first, old)["action"] == "failed"
    assert entry(first, old)["next_run"].startswith("the follow-up rule ami-upgrade-follow-up")
    assert follow_up.state(fn) == "ENABLED"
    report = follow_up.fire(fn)
    assert entry(report, old)["action"] == "replaced"
    assert follow_up.state(fn) == "DISABLED"


def test_the_rules_event_is_the_direct_event(aws):
    fn = function(aws)
    follow_up.deploy(fn, PARAMETER)
    (target,) = boto3.client("events").list_targets_by_rule(
        Rule="ami-upgrade-follow-up")["Targets"]
    assert json.loads(target["Input"]) == {"parameter_name": PARAMETER, "dry_run": False}


def test_a_lost_continuation_never_leaves_an_elastic_ip_on_the_stopped_old_instance(aws,
                                                                                    estate):
    """The invocation dies with the new instance up and the address still on the stopped
    old one; no continuation was sent. The rule, enabled before the first call, runs it."""
    old = estate.launch("app")
    allocation = estate.ec2.allocate_address(Domain="vpc")["AllocationId"]
    estate.ec2.associate_address(AllocationId=allocation, InstanceId=old)
    fn = function(aws)
    follow_up.deploy(fn, PARAMETER)
    aws.faults.crash_after(1 + 11)          # EnableRule, then up to both volumes on the new one
    with pytest.raises(SimulatedCrash):
        fn.invoke({})
    assert estate.describe(old)["State"]["Name"] == "stopped"
    assert fn.pending() == []                # the continuation is lost with the invocation

    report = follow_up.fire(fn)

    new = estate.replacement_of(old)["InstanceId"]
    assert entry(report, old)["action"] == "replaced"
    (address,) = estate.ec2.describe_addresses(AllocationIds=[allocation])["Addresses"]
    assert address["InstanceId"] == new
    assert follow_up.state(fn) == "DISABLED"


# ------------------------------------------------- recovery: only recorded targets

FOREIGN = "ami-1e749f67"   # moto's public Ubuntu image: another account's


@pytest.mark.parametrize(("recorded", "launched_on", "code"), [
    ("new", "new", "replaced"),           # the target the run recorded
    ("newer", "newer", "replaced"),       # another of this account's images, recorded since
    ("foreign", None, "rolled_back"),     # another account's: rolled back, never launched
    (None, None, "needs_operator"),       # none recorded: left to an operator, never launched
])
def test_a_recovery_run_launches_only_onto_the_recorded_allowed_target(
        aws, estate, recorded, launched_on, code):
    old = estate.launch("app")
    fn = function(aws)
    _stopped_midway(aws, fn)
    images = {"new": estate.new_ami, "newer": estate.newer_ami, "foreign": FOREIGN}
    if recorded is None:
        estate.ec2.delete_tags(Resources=[old], Tags=[{"Key": "ami-upgrade:target-ami"}])
    else:
        estate.ec2.create_tags(Resources=[old], Tags=[{"Key": "ami-upgrade:target-ami",
                                                       "Value": images[recorded]}])
    boto3.client("ssm").delete_parameter(Name=PARAMETER)   # no image of the run's own
    launched_before = len(aws.faults.requests("RunInstances"))

    report = fn.invoke({})

    launches = [r["ImageId"] for r in aws.faults.requests("RunInstances")[launched_before:]]
    assert launches == ([images[launched_on]] if launched_on else [])
    assert (report["status"], entry(report, old)["code"]) == ("failed", code)
    if launched_on:
        assert estate.replacement_of(old)["ImageId"] == images[launched_on]
    else:
        assert [i["InstanceId"] for i in estate.live_instances()] == [old]
