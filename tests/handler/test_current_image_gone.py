"""A resource whose current image no longer exists (deregistered by a lifecycle policy) is
the one that most needs moving: it is moved, with the checks made from what EC2 still says
(the instance's architecture and platform; for a group, its instances, or with none
running, its template's instance types)."""

from __future__ import annotations

import pytest
from standalone_estate import build_estate, copy_stock_image, entry
from standalone_estate import function as instance_function
from standalone_estate import set_parameter as set_instances_parameter

# ------------------------------------------------------------------ standalone instances


@pytest.fixture
def instances(aws):
    built = build_estate()
    set_instances_parameter(built.new_ami)
    return built


def test_an_instance_whose_image_is_gone_is_relaunched_onto_the_new_one(aws, instances):
    old = instances.launch("db")
    volumes = instances.data_volumes(old)
    instances.ec2.deregister_image(ImageId=instances.old_ami)

    report = instance_function(aws).invoke({})

    assert entry(report, old)["action"] == "replaced", entry(report, old)
    new = instances.replacement_of(old)
    assert new["ImageId"] == instances.new_ami
    assert set(instances.data_volumes(new["InstanceId"]).values()) == set(volumes.values())


def test_an_instance_whose_image_is_gone_gets_its_root_volume_replaced_in_place(
        aws, instances):
    old = instances.launch("db", tags={"ami-upgrade:strategy": "replace-root-volume"})
    instances.ec2.deregister_image(ImageId=instances.old_ami)

    report = instance_function(aws).invoke({})

    assert entry(report, old)["action"] == "replaced", entry(report, old)
    assert instances.describe(old)["ImageId"] == instances.new_ami


def test_an_instance_whose_image_is_gone_is_still_checked_for_its_architecture(
        aws, instances):
    arm = copy_stock_image(instances.ec2, "arm64", "golden-arm")
    old = instances.launch("arm", image=arm, instance_type="t4g.micro")
    instances.ec2.deregister_image(ImageId=arm)

    report = instance_function(aws).invoke({})

    assert entry(report, old)["action"] == "skipped"
    assert entry(report, old)["reason"].startswith(f"architecture differs: current image {arm} "
                                                   "is arm64")
    assert instances.describe(old)["ImageId"] == arm


# ------------------------------------------------------------------------------ groups


def _group(report: dict, name: str) -> dict:
    return next(a for a in report["asgs"] if a["name"] == name)


def test_a_group_whose_templates_image_is_gone_is_refreshed(estate, images, ec2, function):
    estate.group("web")
    ec2.deregister_image(ImageId=images.old)
    estate.publish(images.new)

    report = function().invoke({})

    group = _group(report, "web")
    assert group["action"] == "refresh_started", group
    versions = estate.versions(estate.template_id("web"))
    assert versions[2]["ImageId"] == images.new
    assert any(f"current image {images.old} no longer exists" in n for n in group["notes"])


def test_a_group_whose_image_is_gone_is_checked_from_its_instances(
        estate, images, ec2, function):
    arm = images.arm
    estate.group("graviton", image_id=arm)
    ec2.deregister_image(ImageId=arm)
    estate.publish(images.new)

    report = function().invoke({})

    group = _group(report, "graviton")
    assert group["action"] == "skipped"
    assert group["reason"].startswith(f"architecture differs: current image {arm} is arm64")
    assert estate.refreshes("graviton") == []


def test_a_windows_group_whose_image_is_gone_is_not_moved_to_a_linux_image(
        estate, images, ec2, function):
    estate.group("legacy", image_id=images.windows)
    ec2.deregister_image(ImageId=images.windows)
    estate.publish(images.new)

    report = function().invoke({})

    group = _group(report, "legacy")
    assert group["action"] == "skipped"
    assert group["reason"].startswith(f"platform differs: current image {images.windows} is "
                                      "windows")
    assert estate.refreshes("legacy") == []


def test_an_empty_group_whose_image_is_gone_is_checked_from_its_instance_type(
        estate, images, ec2, function):
    arm = images.arm
    template = estate.template("graviton-lt", arm, InstanceType="t4g.micro")
    estate.group("graviton", template, capacity=0)
    ec2.deregister_image(ImageId=arm)
    estate.publish(images.new)

    report = function().invoke({})

    group = _group(report, "graviton")
    assert group["action"] == "skipped"
    assert group["reason"] == (f"current image {arm} no longer exists and no instance runs it: "
                               f"instance type t4g.micro cannot run {images.new}'s architecture "
                               "x86_64")


def test_an_empty_group_whose_image_is_gone_is_refreshed_when_its_type_fits(
        estate, images, ec2, function):
    estate.group("idle", capacity=0)
    ec2.deregister_image(ImageId=images.old)
    estate.publish(images.new)

    report = function().invoke({})

    group = _group(report, "idle")
    assert group["action"] == "refresh_started", group
    assert any("instance type t3.micro" in n for n in group["notes"])

