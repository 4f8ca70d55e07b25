"""The calls a rollout of N groups makes, every service counted at the embedded AWS (the
benchmark's estate: tagged scope, literal-image templates, one instance a group), against
the bound: two calls a group, the rest fixed or batched.

calls = 2 g + ceil(g / 20) + 10 for g <= 100, the bound 2 g + 6. Beyond the bound's
reads, each run reads the images its templates name (unknown until the templates are
read; the new image is read before), the standalone replacements in flight (one
DescribeInstances, one DescribeVolumes), and every group of the account (which ones
follow a template written at $Latest); and records the refreshes 20 groups a call."""

import collections

import pytest

from benchmarks import real_aws

FIXED = {"GetParameter": 1, "DescribeImages": 2, "DescribeInstances": 2, "DescribeVolumes": 1,
         "DescribeAutoScalingGroups": 2, "DescribeLaunchTemplates": 1,
         "DescribeLaunchTemplateVersions": 1}


@pytest.mark.parametrize(("groups", "records", "calls", "bound"), [
    (10, 1, 31, 26),
    (30, 2, 72, 66),
])
def test_a_group_costs_two_calls_and_a_share_of_a_record(groups, records, calls, bound):
    run = real_aws.run(groups, 0, latency=None)

    assert run.statuses == ["succeeded"]
    assert run.verified == groups
    assert run.calls == collections.Counter({
        **FIXED, "CreateLaunchTemplateVersion": groups, "StartInstanceRefresh": groups,
        "CreateOrUpdateTags": records})
    assert (run.total, run.bound) == (calls, bound)
    assert run.total <= 1.25 * run.bound
