"""The calls a convergence of N groups costs, pinned (issue 12): per group one
DescribeInstanceRefreshes, CreateLaunchTemplateVersion and StartInstanceRefresh; everything
else batched (versions read account-wide, refresh records 20 groups a CreateOrUpdateTags).
And what a crash between starting refreshes and recording them leaves: refreshes that
converge, and that ``cancel`` does not take for the engine's."""

from __future__ import annotations

import collections

import pytest

from ami_upgrade_cli import fleet
from components.stack_settings import StackSettings
from handler.asg.apply import RECORD_BATCH
from sandbox.faults import SimulatedCrash

PARAMETER = "/ami/linux/test"   # the handler fixtures' parameter

PER_GROUP = ("autoscaling:DescribeInstanceRefreshes", "ec2:CreateLaunchTemplateVersion",
             "autoscaling:StartInstanceRefresh")


def _groups(estate, count: int, prefix: str = "g") -> list[str]:
    return [estate.group(f"{prefix}{n:02}", version="$Latest", capacity=1)
            for n in range(count)]


def _asg_calls(api_calls) -> dict[str, int]:
    """The calls of the group path: Auto Scaling's, and EC2's on launch templates."""
    return {op: n for op, n in api_calls.count().items()
            if op.startswith("autoscaling:") or "LaunchTemplate" in op}


def _converge(estate, images, function, api_calls, count: int) -> dict[str, int]:
    _groups(estate, count)
    estate.publish(images.new)

    report = function().invoke({})

    assert [e["action"] for e in report["asgs"]] == ["refresh_started"] * count
    return _asg_calls(api_calls)


def _expected(count: int, records: int) -> dict[str, int]:
    return {
        # the groups in scope, then every group (which others follow a written template?)
        "autoscaling:DescribeAutoScalingGroups": 2,
        "autoscaling:DescribeInstanceRefreshes": count,
        "autoscaling:CreateOrUpdateTags": records,   # RECORD_BATCH groups a call
        "autoscaling:StartInstanceRefresh": count,
        "ec2:DescribeLaunchTemplateVersions": 1,    # $Latest of every template, one page
        "ec2:DescribeLaunchTemplates": 1,           # their scope tags
        "ec2:CreateLaunchTemplateVersion": count,
    }


@pytest.mark.parametrize(("count", "records"), [(3, 1), (30, 2)])
def test_converging_groups_costs_three_calls_each_and_batched_reads(
        estate, images, function, api_calls, count, records):
    assert RECORD_BATCH == 20
    assert _converge(estate, images, function, api_calls, count) == _expected(count, records)
    pages = api_calls.of("DescribeLaunchTemplateVersions")
    assert pages == [{"Versions": ["$Latest"], "MaxResults": 200}]


def test_each_group_more_costs_its_three_calls_and_nothing_else(
        aws, estate, images, function, api_calls):
    """Over every operation (standalone's reads included): 27 groups more, 27 x 3 calls,
    plus one more record (30 groups need two CreateOrUpdateTags)."""
    _groups(estate, 3)
    estate.publish(images.new)
    function().invoke({})
    three = collections.Counter(api_calls.count())
    api_calls.clear()
    for name in (f"g{n:02}" for n in range(3)):   # a fresh estate of 30, same AMIs
        estate.autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name,
                                                     ForceDelete=True)
    _groups(estate, 30, prefix="h")
    estate.publish(images.newer)
    function().invoke({})
    thirty = collections.Counter(api_calls.count())

    more = thirty - three
    assert dict(more) == {**dict.fromkeys(PER_GROUP, 27), "autoscaling:CreateOrUpdateTags": 1}
    assert not three - thirty


# -------------------------------------------------------------- crash between start and record


def _mutating(aws, since: int) -> list[str]:
    return [op for _, op in aws.faults.mutating_calls[since:]]


def test_refreshes_are_recorded_after_they_start_many_groups_a_call(aws, estate, images,
                                                                   function):
    _groups(estate, 3)
    estate.publish(images.new)
    calls = len(aws.faults.mutating_calls)

    function().invoke({})

    assert _mutating(aws, calls) == [
        "CreateLaunchTemplateVersion", "StartInstanceRefresh"] * 3 + ["CreateOrUpdateTags"]


def test_a_template_resolving_the_parameter_is_recorded_at_once(aws, estate, images, function):
    """Its refresh does not say where it heads: unrecorded, the next run would cancel it."""
    for name in ("a", "b"):
        estate.group(name, estate.template(f"{name}-lt", f"resolve:ssm:{PARAMETER}"))
    estate.publish(images.new)
    calls = len(aws.faults.mutating_calls)

    function().invoke({})

    assert _mutating(aws, calls) == ["StartInstanceRefresh", "CreateOrUpdateTags"] * 2


def _ours(autoscaling) -> list[str]:
    stack = StackSettings(project="ami-upgrade", stack="test", region="us-east-1",
                          parameter_name=PARAMETER, alias_name="live",
                          function_name="ami-upgrade")
    return sorted(r.group for r in fleet.cancellable(autoscaling, stack))


def test_a_crash_before_the_record_converges_and_cancel_leaves_the_unrecorded(
        aws, estate, images, function):
    names = _groups(estate, 3)
    estate.publish(images.new)
    aws.faults.crash_after(4)      # after g00's and g01's StartInstanceRefresh, unrecorded
    with pytest.raises(SimulatedCrash):
        function().invoke({})
    started = {name: estate.refreshes(name) for name in names}
    assert [len(started[n]) for n in names] == [1, 1, 0]

    report = function().invoke({})

    entries = {e["name"]: e for e in report["asgs"]}
    for name in names[:2]:   # left running: their version says where they head
        assert entries[name]["action"] == "skipped"
        assert entries[name]["reason"] == (
            f"instance refresh {started[name][0]['InstanceRefreshId']} (Pending) is already "
            f"in progress toward {images.new}")
    assert entries["g02"]["action"] == "refresh_started"
    for name in names:
        assert len(estate.refreshes(name)) == 1
        assert sorted(estate.versions(estate.template_id(name))) == [1, 2]
    # cancel takes only the refreshes the engine recorded as its own
    assert _ours(estate.autoscaling) == ["g02"]

    aws.advance(1800)
    last = function().invoke({})

    assert {e["name"]: e["action"] for e in last["asgs"]} == dict.fromkeys(names, "skipped")
    for name in names:
        assert set(estate.instance_images(name).values()) == {images.new}


def test_a_record_refused_for_one_group_is_written_for_the_others(
        aws, estate, images, function, api_calls):
    names = _groups(estate, 3)
    estate.publish(images.new)
    aws.faults.fail("CreateOrUpdateTags", "ValidationError", times=None,
                    when=lambda params: any(t.get("ResourceId") == "g01"
                                            for t in params.get("Tags", [])))

    report = function().invoke({})

    assert [e["action"] for e in report["asgs"]] == ["refresh_started"] * 3
    assert [sorted({t["ResourceId"] for t in call["Tags"]})
            for call in api_calls.of("CreateOrUpdateTags")] == [names, ["g00"], ["g01"],
                                                                 ["g02"]]
    recorded = {name: {t["Key"]: t["Value"] for t in estate.describe(name)["Tags"]}
                .get("ami-upgrade:refresh-id") for name in names}
    ids = {e["name"]: e["refresh_id"] for e in report["asgs"]}
    assert recorded == {"g00": ids["g00"], "g01": None, "g02": ids["g02"]}
