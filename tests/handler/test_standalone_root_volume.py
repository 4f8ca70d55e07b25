"""The in-place strategy: the root volume replaced from the new AMI, the instance kept."""

from __future__ import annotations

import pytest
from standalone_estate import (
    build_estate,
    copy_stock_image,
    crash_then_converge,
    entry,
    function,
    set_parameter,
)

IN_PLACE = ["CreateTags", "CreateReplaceRootVolumeTask", "DeleteTags"]


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _root_volume(estate, instance_id: str) -> str:
    inst = estate.describe(instance_id)
    return next(m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]
                if m["DeviceName"] == inst["RootDeviceName"])


def _assert_replaced_in_place(estate, instance_id: str, volumes: dict[str, str],
                              old_root: str) -> None:
    inst = estate.describe(instance_id)
    assert inst["State"]["Name"] == "running"
    assert inst["ImageId"] == estate.new_ami
    assert estate.data_volumes(instance_id) == volumes
    assert _root_volume(estate, instance_id) != old_root
    assert estate.volume(old_root)["State"] == "available"       # kept, not deleted
    assert not [t for t in inst["Tags"] if t["Key"].startswith("ami-upgrade:")
                and t["Key"] not in ("ami-upgrade:parameter", "ami-upgrade:attempt",
                                     "ami-upgrade:strategy")]


def test_configured_in_place_strategy_keeps_the_instance(aws, estate):
    instance = estate.launch("db")
    volumes, old_root = estate.data_volumes(instance), _root_volume(estate, instance)
    calls = len(aws.faults.mutating_calls)

    report = function(aws, strategy="replace-root-volume").invoke({})

    assert [op for _, op in aws.faults.mutating_calls[calls:]] == IN_PLACE
    (task,) = aws.root_volume.tasks
    assert entry(report, instance) == {
        "id": instance, "action": "replaced", "code": "replaced", "volumes": [],
        "strategy": "replace-root-volume",
        "reason": f"root volume replaced in place from {estate.new_ami} (task {task.id}); the "
                  "replaced root volume is kept"}
    assert (task.instance_id, task.image_id, task.delete_replaced) == (
        instance, estate.new_ami, False)
    _assert_replaced_in_place(estate, instance, volumes, old_root)


def test_strategy_tag_overrides_the_configuration(aws, estate):
    tagged = estate.launch("db", tags={"ami-upgrade:strategy": "replace-root-volume"})
    other = estate.launch("web")

    report = function(aws).invoke({})

    assert entry(report, tagged)["action"] == "replaced"
    assert estate.describe(tagged)["ImageId"] == estate.new_ami     # same instance
    assert entry(report, other)["new_instance_id"] != other          # relaunched


def test_unmet_precondition_skips_with_the_reason(aws, estate):
    paravirtual = copy_stock_image(estate.ec2, "paravirtual", "golden-pv")
    set_parameter(paravirtual)
    instance = estate.launch("db")
    before = estate.describe(instance)

    report = function(aws, strategy="replace-root-volume").invoke({})

    assert entry(report, instance) == {
        "id": instance, "action": "skipped", "code": "not_supported", "volumes": [],
        "reason": "root volume replacement needs the same virtualization type: the instance "
                  f"has hvm, {paravirtual} has paravirtual"}
    assert estate.describe(instance) == before
    assert aws.root_volume.tasks == []


def test_unmet_precondition_falls_back_to_relaunch_when_configured(aws, estate):
    paravirtual = copy_stock_image(estate.ec2, "paravirtual", "golden-pv")
    set_parameter(paravirtual)
    # A type that runs paravirtual images (the relaunch's preflight refuses t3 for them).
    instance = estate.launch("db", instance_type="t1.micro")
    volumes = estate.data_volumes(instance)

    report = function(aws, strategy="replace-root-volume",
                       fallback_to_relaunch=True).invoke({})

    new = estate.replacement_of(instance)
    assert entry(report, instance)["action"] == "replaced"
    assert new["ImageId"] == paravirtual
    assert estate.data_volumes(new["InstanceId"]) == volumes
    assert aws.root_volume.tasks == []


def test_failed_task_is_reported_and_recorded(aws, estate):
    instance = estate.launch("db")
    volumes, old_root = estate.data_volumes(instance), _root_volume(estate, instance)
    aws.root_volume.fail_next(instance)

    report = function(aws, strategy="replace-root-volume").invoke({})

    (task,) = aws.root_volume.tasks
    assert entry(report, instance)["reason"] == f"root volume replacement task {task.id} failed"
    assert report["status"] == "failed"
    inst = estate.describe(instance)
    assert inst["ImageId"] == estate.old_ami
    assert _root_volume(estate, instance) == old_root
    assert estate.data_volumes(instance) == volumes
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert tags["ami-upgrade:failed-ami"] == estate.new_ami
    assert "ami-upgrade:root-volume-ami" not in tags


def test_refused_task_is_reported_with_aws_reason(aws, estate):
    instance = estate.launch("db")
    aws.faults.fail("CreateReplaceRootVolumeTask", "IncorrectInstanceState",
                    "The instance is not in a valid state.")

    report = function(aws, strategy="replace-root-volume").invoke({})

    assert entry(report, instance)["reason"] == (
        "CreateReplaceRootVolumeTask failed: IncorrectInstanceState: The instance is not in a "
        "valid state.")
    assert estate.describe(instance)["ImageId"] == estate.old_ami


@pytest.mark.parametrize("n", range(1, len(IN_PLACE) + 1))
def test_crash_after_each_call_of_an_in_place_replacement_converges(aws, estate, n):
    instance = estate.launch("db")
    volumes, old_root = estate.data_volumes(instance), _root_volume(estate, instance)
    fn = function(aws, strategy="replace-root-volume")
    crash_then_converge(aws, fn, n)

    _assert_replaced_in_place(estate, instance, volumes, old_root)
    assert len(aws.root_volume.tasks) == 1
