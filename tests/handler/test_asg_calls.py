"""The calls a convergence of N groups costs, pinned: per group one
CreateLaunchTemplateVersion and StartInstanceRefresh, no refresh read (a refresh in the way
is met by StartInstanceRefresh); everything else batched (versions read account-wide,
refresh records 20 groups a CreateOrUpdateTags).
And what a crash between starting refreshes and recording them leaves: refreshes that
converge, and that ``cancel`` does not take for the engine's."""

from __future__ import annotations

import collections
import threading

import pytest

from ami_upgrade_cli import fleet
from components.stack_settings import StackSettings
from handler.asg import apply
from handler.asg.apply import RECORD_BATCH
from sandbox.faults import SimulatedCrash

PARAMETER = "/ami/linux/test"   # the handler fixtures' parameter

PER_GROUP = ("ec2:CreateLaunchTemplateVersion", "autoscaling:StartInstanceRefresh")


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
        "autoscaling:CreateOrUpdateTags": records,   # RECORD_BATCH groups a call
        "autoscaling:StartInstanceRefresh": count,
        "ec2:DescribeLaunchTemplateVersions": 1,    # $Latest of every template, one page
        "ec2:DescribeLaunchTemplates": 1,           # their scope tags
        "ec2:CreateLaunchTemplateVersion": count,
    }


@pytest.mark.parametrize(("count", "records"), [(3, 1), (30, 2)])
def test_converging_groups_costs_two_calls_each_and_batched_reads(
        estate, images, function, api_calls, count, records):
    assert RECORD_BATCH == 20
    assert _converge(estate, images, function, api_calls, count) == _expected(count, records)
    pages = api_calls.of("DescribeLaunchTemplateVersions")
    assert pages == [{"Versions": ["$Latest"], "MaxResults": 200}]


def test_each_group_more_costs_its_two_calls_and_nothing_else(
        aws, estate, images, function, api_calls):
    """Over every operation (standalone's reads included): 27 groups more, 27 x 2 calls,
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
                                                                   function, one_at_a_time):
    _groups(estate, 3)
    estate.publish(images.new)
    calls = len(aws.faults.mutating_calls)

    function().invoke({})

    assert _mutating(aws, calls) == [
        "CreateLaunchTemplateVersion", "StartInstanceRefresh"] * 3 + ["CreateOrUpdateTags"]


def test_templates_resolving_the_parameter_start_on_workers_and_share_a_record(
        aws, estate, images, function, api_calls):
    """Their refreshes do not say where they head (unrecorded, the next run would take them
    for another's): the groups of one batch are recorded together as soon as it ends."""
    names = [estate.group(f"a{n:02}", estate.template(f"a{n:02}-lt", f"resolve:ssm:{PARAMETER}"))
             for n in range(RECORD_BATCH + 5)]
    estate.publish(images.new)
    calls = len(aws.faults.mutating_calls)

    function().invoke({})

    assert _mutating(aws, calls) == ["StartInstanceRefresh"] * RECORD_BATCH + [
        "CreateOrUpdateTags"] + ["StartInstanceRefresh"] * 5 + ["CreateOrUpdateTags"]
    assert [sorted({t["ResourceId"] for t in call["Tags"]})
            for call in api_calls.of("CreateOrUpdateTags")] == [names[:RECORD_BATCH],
                                                                names[RECORD_BATCH:]]


def _ours(autoscaling) -> list[str]:
    stack = StackSettings(project="ami-upgrade", stack="test", region="us-east-1",
                          parameter_name=PARAMETER, alias_name="live",
                          function_name="ami-upgrade")
    return sorted(r.group for r in fleet.cancellable(autoscaling, stack))


def test_a_crash_before_the_record_converges_and_cancel_leaves_the_unrecorded(
        aws, estate, images, function, one_at_a_time):
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


# -------------------------------------------------------------- refreshes started on workers


def _threads_of_start(monkeypatch) -> list[str]:
    """The thread each group's ``_start`` (version and refresh) ran on."""
    threads: list[str] = []
    inner = apply._start

    def start(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return inner(*args, **kwargs)

    monkeypatch.setattr(apply, "_start", start)
    return threads


def test_thirty_groups_on_four_workers_all_start_reported_and_recorded_in_plan_order(
        estate, images, function, api_calls, monkeypatch):
    assert apply.START_WORKERS == 4
    threads = _threads_of_start(monkeypatch)
    names = _groups(estate, 30)
    estate.publish(images.new)

    report = function().invoke({})

    assert len(threads) == 30 and {t.split("_")[0] for t in threads} == {"start-asg"}
    assert [e["name"] for e in report["asgs"]] == names
    assert [e["action"] for e in report["asgs"]] == ["refresh_started"] * 30
    assert [e["launch_template_version"] for e in report["asgs"]] == ["2"] * 30
    # the records: plan order, RECORD_BATCH groups a call, each with its own refresh
    assert [[t["ResourceId"] for t in call["Tags"] if t["Key"] == "ami-upgrade:refresh-id"]
            for call in api_calls.of("CreateOrUpdateTags")] == [names[:20], names[20:]]
    for entry in report["asgs"]:
        tags = {t["Key"]: t["Value"] for t in estate.describe(entry["name"])["Tags"]}
        assert tags["ami-upgrade:refresh-id"] == entry["refresh_id"]
        assert tags["ami-upgrade:refresh-ami"] == images.new
        assert [r["InstanceRefreshId"] for r in estate.refreshes(entry["name"])] == [
            entry["refresh_id"]]


def test_one_worker_keeps_the_plan_order_of_every_call(estate, images, function, api_calls,
                                                       monkeypatch, one_at_a_time):
    threads = _threads_of_start(monkeypatch)
    names = _groups(estate, 6)
    estate.publish(images.new)

    function().invoke({})

    assert set(threads) == {threading.main_thread().name}
    started = [(op, params.get("AutoScalingGroupName") or params.get("LaunchTemplateId"))
               for _, op, params in api_calls.calls
               if op in ("CreateLaunchTemplateVersion", "StartInstanceRefresh")]
    assert started == [call for name in names for call in (
        ("CreateLaunchTemplateVersion", estate.template_id(name)),
        ("StartInstanceRefresh", name))]


def test_groups_sharing_a_template_on_workers_write_one_version(
        estate, images, function, api_calls):
    """The first group of a shared source writes the version; the batch waits for it, then
    the others name it."""
    template = estate.template("shared-lt")
    names = [estate.group(f"s{n}", template, version="1", capacity=1) for n in range(6)]
    estate.publish(images.new)

    report = function().invoke({})

    assert [e["name"] for e in report["asgs"]] == names
    assert [e["action"] for e in report["asgs"]] == ["refresh_started"] * 6
    assert len(api_calls.of("CreateLaunchTemplateVersion")) == 1
    assert {e["launch_template_version"] for e in report["asgs"]} == {"2"}
