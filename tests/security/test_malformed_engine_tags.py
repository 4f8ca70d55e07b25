"""Attack: an engine tag with a malformed value (``attempt=x``, ``health-waited=abc``, an
image ID that is not one), written by anyone who may tag an instance. It ends in a report
entry naming the instance and the tag; that instance is not touched, and every other
instance is replaced as if the tag were not there."""

from __future__ import annotations

import pytest
from standalone_estate import entry, function

PREFIX = "ami-upgrade:"


@pytest.fixture
def estate(standalone):
    return standalone


def _tags(estate, instance_id: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in estate.describe(instance_id).get("Tags", [])}


def _untouched(estate, instance_id: str, volumes: dict[str, str]) -> None:
    assert estate.describe(instance_id)["State"]["Name"] == "running"
    assert estate.describe(instance_id)["ImageId"] == estate.old_ami
    assert estate.data_volumes(instance_id) == volumes


@pytest.mark.parametrize(("tags", "named"), [
    ({"attempt": "x"}, "attempt"),
    ({"attempt": "-3"}, "attempt"),
    ({"attempt": "1e400"}, "attempt"),
    ({"health-waited": "abc"}, "health-waited"),
    ({"health-waited": "nan"}, "health-waited"),
    ({"failed-ami": "ami-!!"}, "failed-ami"),
])
def test_a_malformed_tag_on_an_in_scope_instance_affects_only_it(aws, estate, tags, named):
    victim = estate.launch("victim")
    volumes = estate.data_volumes(victim)
    other = estate.launch("other")
    estate.ec2.create_tags(Resources=[victim], Tags=[
        {"Key": PREFIX + k, "Value": v} for k, v in tags.items()])

    report = function(aws).invoke({})

    bad = entry(report, victim)
    assert bad["action"] in ("skipped", "failed")
    assert PREFIX + named in bad["reason"]
    _untouched(estate, victim, volumes)
    assert entry(report, other)["action"] == "replaced"


@pytest.mark.parametrize(("tags", "named"), [
    ({"in-flight": "/ami/linux/test", "target-ami": "not-an-ami", "attempt": "1"},
     "target-ami"),
    ({"in-flight": "/ami/linux/test", "target-ami": "ami-", "attempt": "1"}, "target-ami"),
    ({"in-flight": "/ami/linux/test", "root-volume-ami": "ami-zz", "attempt": "1"},
     "root-volume-ami"),
    ({"in-flight": "/ami/linux/test", "attempt": "x", "target-ami": "ami-12345678"},
     "attempt"),
    ({"in-flight": "/ami/linux/test", "health-waited": "abc", "target-ami": "ami-12345678",
      "attempt": "1"}, "health-waited"),
])
def test_a_malformed_tag_on_an_out_of_scope_instance_fails_no_other_plan(aws, estate, tags,
                                                                        named):
    stranger = estate.launch("stranger", in_scope=False)
    volumes = estate.data_volumes(stranger)
    other = estate.launch("other")
    estate.ec2.create_tags(Resources=[stranger], Tags=[
        {"Key": PREFIX + k, "Value": v} for k, v in tags.items()])

    report = function(aws).invoke({})

    bad = entry(report, stranger)
    assert bad["action"] in ("skipped", "failed")
    assert PREFIX + named in bad["reason"]
    _untouched(estate, stranger, volumes)
    assert entry(report, other)["action"] == "replaced"


def test_a_forged_launch_token_launches_nothing(aws, estate, api_calls):
    victim = estate.launch("victim")
    volumes = estate.data_volumes(victim)
    estate.ec2.create_tags(Resources=[victim], Tags=[
        {"Key": PREFIX + "in-flight", "Value": "/ami/linux/test"},
        {"Key": PREFIX + "target-ami", "Value": estate.new_ami},
        {"Key": PREFIX + "attempt", "Value": "1"},
        {"Key": PREFIX + "launch-token", "Value": "attacker-chosen-token"}])

    report = function(aws).invoke({})

    assert PREFIX + "launch-token" in entry(report, victim)["reason"]
    assert "RunInstances" not in [op for _, op, _ in api_calls.calls]
    _untouched(estate, victim, volumes)

