"""EC2's reads lag its writes: what a call's answer said it did is waited for, on the
clock, not re-sent in a loop nor reported as a failure. Before the change, a launch not
yet listed was re-sent (same ClientToken) hundreds of times without the clock moving,
and the replacement ended ``failed`` ("no progress")."""

from __future__ import annotations

import pytest
from standalone_estate import entry, function, published_estate

from sandbox.read_lag import lag


@pytest.fixture
def estate(aws):
    return published_estate()


@pytest.mark.parametrize("seconds", [20, 90])
def test_a_launch_not_yet_listed_is_waited_for_not_sent_again_in_a_loop(aws, estate, seconds):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    lag(aws, seconds)
    fn = function(aws)

    report = fn.invoke({})
    fn.drain()

    assert entry(fn.reports[-1], old)["action"] == "replaced"
    assert entry(report, old)["action"] in ("replaced", "in_progress")
    new = estate.replacement_of(old)
    assert (new["ImageId"], estate.data_volumes(new["InstanceId"])) == (estate.new_ami, volumes)
    assert aws.faults.count("RunInstances") <= 1 + 2 + seconds // 15   # a few, with backoff


def test_an_attachment_not_yet_shown_is_waited_for_not_refused_nor_rolled_back(aws, estate):
    """AttachVolume again on an attached volume is refused (VolumeInUse): re-sending it
    on a lagging read would roll the replacement back."""
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    lag(aws, 45)
    fn = function(aws)

    fn.invoke({})
    fn.drain()

    assert entry(fn.reports[-1], old)["action"] == "replaced"
    new = estate.replacement_of(old)
    assert estate.data_volumes(new["InstanceId"]) == volumes
    assert aws.faults.count("StartInstances") == 0        # never rolled back
    assert not [r for r in fn.reports for e in r["instances"] if e["action"] == "failed"]
