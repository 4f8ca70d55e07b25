"""``--fault crash-after:N``: the invocation dies mid-run; Lambda's retry recovers it."""

from __future__ import annotations

import pytest

from sandbox.fleet import IN_SCOPE

from .estate import all_instances, demo_run, group_members, holder, instance
from .test_demo_faults import relaunched, strays


@pytest.fixture(scope="module", params=[1, 5])
def crash(request, tmp_path_factory):
    name = f"crash-after:{request.param}"
    with demo_run(tmp_path_factory.mktemp(f"crash{request.param}"), fault=name) as (aws, result):
        yield aws, result


def test_crash_run_exits_zero_after_recovery(crash):
    _aws, result = crash
    assert result.exit_code == 0, result.verdict.problems()


def test_lambda_retried_the_crashed_invocation(crash):
    _aws, result = crash
    crashed = [i for i in result.invocations if i.error]

    assert [i.error.split(":")[0] for i in crashed] == ["SimulatedCrash"]
    retry = result.invocations[result.invocations.index(crashed[0]) + 1]
    assert (retry.event, retry.attempt, retry.error) == (crashed[0].event, 1, None)


def test_after_a_crash_everything_in_scope_converges(crash):
    _aws, result = crash
    for g in result.estate.groups_in(IN_SCOPE):
        assert {instance(i)["ImageId"] for i in group_members(g.name)} == {
            result.estate.new_image}, g.name
    for standalone in result.estate.instances_in(IN_SCOPE):
        assert instance(holder(standalone))["ImageId"] == result.estate.new_image


def test_after_a_crash_nothing_is_launched_twice(crash):
    _aws, result = crash
    launched = [i["InstanceId"] for i in all_instances()
                if i["InstanceId"] not in result.before.instances
                and not any(t["Key"] == "aws:autoscaling:groupName" for t in i.get("Tags", []))]

    assert len(launched) == len(relaunched(result.estate)), launched
    assert strays(result) == []
