"""Calls per standalone replacement, pinned, so they cannot grow back silently (issue 12).

Each estate (the benchmark's: private t3.micro instances, one data volume each, the
function's defaults: parallelism 5, max_per_run 20) is converged on the embedded AWS and
every call the function makes is counted by operation at the embedded AWS
(``benchmarks.real_aws``). The expected counts are built from three parts, so a change
shows which part moved: the planning of the invocation, the calls of each replacement,
and the reads of each wave of replacements in flight together (shared by the wave).
"""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks import real_aws
from handler.settings import DEFAULT_PARALLELISM

PLANNING = Counter({
    "GetParameter": 1, "DescribeImages": 3,        # the AMI; candidates' images; preflight
    "DescribeAutoScalingGroups": 1,                # the ASG path finds no group
    "DescribeInstances": 2,                        # in flight; candidates
    "DescribeVolumes": 2,                          # in flight; the candidates' volumes
    "DescribeInstanceTypes": 1, "DescribeInstanceTypeOfferings": 1, "DescribeSubnets": 1,
    "DescribeRouteTables": 1, "DescribeAddresses": 1, "DescribeTargetGroups": 1,
    "DescribeLoadBalancers": 1,                    # preflight, batched for all candidates
})
PER_REPLACEMENT = Counter({
    "GetLaunchTemplateData": 1,   # the shape: user data, protection, shutdown, credits
    # the intent (its own: it records the instance's data volumes, different for each);
    # the volume's home; the launch token
    "CreateTags": 3,
    "DetachVolume": 1, "RunInstances": 1, "AttachVolume": 1,
})
PER_WAVE = Counter({
    # One call for every replacement of the wave (the same tags, or several instances):
    "StopInstances": 1, "TerminateInstances": 1,
    "DeleteTags": 1,              # progress tags off the new instances and the volumes
    # rounds: intent..stop | detach..launch | attach, checks | terminate, tags off
    "DescribeInstances": 4,
    "DescribeVolumes": 1,         # only once the volumes are detached (on no instance)
    "DescribeInstanceStatus": 2,  # when the volumes attach; before the termination
})


def expected(instances: int, parallelism: int = DEFAULT_PARALLELISM) -> Counter:
    waves = -(-instances // parallelism)
    calls = Counter(PLANNING)
    for _ in range(instances):
        calls.update(PER_REPLACEMENT)
    for _ in range(waves):
        calls.update(PER_WAVE)
    return calls


@pytest.mark.parametrize("instances", [1, DEFAULT_PARALLELISM + 2])   # one wave; two
def test_calls_per_replacement_are_pinned(instances):
    run = real_aws.run(0, instances, latency=None)

    assert run.converged and run.failed == 0 and run.invocations == 1
    assert dict(run.calls) == dict(expected(instances))


def test_slow_status_checks_cost_at_most_three_times_the_bound_by_default():
    """20 instances with two data volumes each whose status checks take 300 s: the polls
    of each wave are what grows; at the default parallelism they stay within 3x."""
    run = real_aws.run(0, 20, latency=None, boot_seconds=300, volumes=2)

    assert run.converged and run.failed == 0
    assert run.total <= 3 * real_aws.lower_bound(0, 20, volumes=2)
