"""Attack: the engine's intent tags (``in-flight``, ``target-ami``, ``root-volume-ami``...)
written on an instance. On an excluded or out-of-scope instance they are never acted on
(scope and exclusions come from the configuration, never from progress tags); on an
in-scope one, a recorded target of another owner is never moved onto: the replacement is
rolled back to where it came from."""

from __future__ import annotations

import json

import boto3
import pytest
from standalone_estate import entry, function

PARAMETER = "/ami/linux/test"
FOREIGN = "ami-1e749f67"      # one of moto's public images, of another account


@pytest.fixture
def estate(standalone):
    return standalone


def _forge(estate, instance_id: str, tags: dict[str, str]) -> None:
    estate.ec2.create_tags(Resources=[instance_id], Tags=[
        {"Key": k, "Value": v} for k, v in tags.items()])


def _intents(estate) -> list[dict[str, str]]:
    return [
        {"ami-upgrade:in-flight": PARAMETER, "ami-upgrade:target-ami": estate.new_ami,
         "ami-upgrade:attempt": "1"},
        {"ami-upgrade:in-flight": PARAMETER, "ami-upgrade:root-volume-ami": estate.new_ami,
         "ami-upgrade:attempt": "1"},
        {"ami-upgrade:in-flight": PARAMETER, "ami-upgrade:target-ami": estate.new_ami,
         "ami-upgrade:attempt": "1", "ami-upgrade:rollback": "forged"},
    ]


@pytest.mark.parametrize("intent", range(3))
@pytest.mark.parametrize("how", ["tag", "list", "parameter", "out of scope"])
def test_forged_intent_on_an_excluded_instance_touches_nothing(aws, estate, intent, how):
    victim = estate.launch("victim", tags={"ami-upgrade:exclude": "true"} if how == "tag"
                           else {}, in_scope=how != "out of scope")
    volumes = estate.data_volumes(victim)
    fn = function(aws)
    if how == "list":
        fn.environment["EXCLUDED_INSTANCES"] = json.dumps([victim])
    if how == "parameter":
        boto3.client("ssm").put_parameter(Name="/ami/exclusions", Type="String",
                                          Value=json.dumps({"instances": [victim]}))
        fn.environment["EXCLUSIONS_PARAMETER_NAME"] = "/ami/exclusions"
    _forge(estate, victim, _intents(estate)[intent])
    calls = len(aws.faults.mutating_calls)

    report = fn.invoke({})

    assert entry(report, victim)["action"] == "skipped"
    assert aws.faults.mutating_calls[calls:] == []
    assert estate.describe(victim)["State"]["Name"] == "running"
    assert estate.describe(victim)["ImageId"] == estate.old_ami
    assert estate.data_volumes(victim) == volumes


@pytest.mark.parametrize("key", ["ami-upgrade:root-volume-ami", "ami-upgrade:target-ami"])
def test_a_forged_foreign_target_on_an_in_scope_instance_is_never_used(aws, estate, key):
    victim = estate.launch("victim")
    volumes = estate.data_volumes(victim)
    _forge(estate, victim, {"ami-upgrade:in-flight": PARAMETER, key: FOREIGN,
                            "ami-upgrade:attempt": "1"})
    launches = aws.faults.count("RunInstances")

    report = function(aws).invoke({})

    assert entry(report, victim)["action"] == "failed"
    assert f"{FOREIGN} is owned by" in entry(report, victim)["reason"]
    assert aws.faults.count("CreateReplaceRootVolumeTask") == 0
    assert aws.faults.count("RunInstances") == launches
    assert estate.describe(victim)["ImageId"] == estate.old_ami
    assert estate.describe(victim)["State"]["Name"] == "running"
    assert estate.data_volumes(victim) == volumes
