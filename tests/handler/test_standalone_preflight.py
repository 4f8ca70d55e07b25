"""Before the stop: whatever makes the relaunch impossible is found before anything changes.

A relaunch stops the old instance before it launches the new one, so a launch AWS
refuses is an outage (then a rollback). Each check below fails on a real estate's
drift (a deleted key pair, a full subnet, a retired instance type, a UEFI-only image,
an instance near the 50-tag limit) and the instance is skipped, with the check and
the fix, before any mutating call.
"""

from __future__ import annotations

import boto3
import pytest
from standalone_estate import build_estate, entry, function, set_parameter


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _invoke(aws, **standalone) -> dict:
    """Run the function; the report, with the mutating calls it made."""
    before = len(aws.faults.mutating_calls)
    report = function(aws, **standalone).invoke({})
    report["_mutating"] = aws.faults.mutating_calls[before:]
    return report


def _skipped_untouched(aws, report: dict, instance_id: str, *words: str) -> str:
    e = entry(report, instance_id)
    assert e["action"] == "skipped", e
    assert e["reason"].startswith("preflight: "), e
    for word in words:
        assert word in e["reason"], (word, e["reason"])
    assert report["_mutating"] == []
    return e["reason"]


# ---------------------------------------------------------------------- root size


def _root_size_requested(aws) -> int:
    request = aws.faults.requests("RunInstances")[-1]   # the engine's launch, the last one
    assert request["ClientToken"].startswith("ami-upgrade-")
    root = next(m for m in request["BlockDeviceMappings"] if "Ebs" in m and m["Ebs"].get(
        "VolumeSize"))
    return int(root["Ebs"]["VolumeSize"])


def test_root_is_launched_at_the_new_images_size_when_the_snapshot_grew(aws, estate):
    """The golden image's root snapshot is 15 GiB; the database's root is 8 GiB. Sending 8
    (as before) is refused by AWS after the stop: the root is made max(old, image)."""
    db = estate.launch("db", volumes=3)
    root = estate.describe(db)["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert estate.volume(root)["Size"] == 8
    image = estate.ec2.describe_images(ImageIds=[estate.new_ami])["Images"][0]
    assert image["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 15

    report = function(aws).invoke({})

    assert entry(report, db)["action"] == "replaced"
    assert _root_size_requested(aws) == 15


def test_a_root_bigger_than_the_image_keeps_its_size(aws, estate):
    db = estate.launch("db", BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 40, "VolumeType": "gp3"}}])

    report = function(aws).invoke({})

    assert entry(report, db)["action"] == "replaced"
    assert _root_size_requested(aws) == 40


# ------------------------------------------------------------- launch preconditions


def test_deleted_key_pair_skips_before_the_stop(aws, estate):
    web = estate.launch("web")
    estate.ec2.delete_key_pair(KeyName="ops")

    report = _invoke(aws)

    _skipped_untouched(aws, report, web, "key pair ops no longer exists", "import the key")
    assert estate.describe(web)["State"]["Name"] == "running"


def test_deleted_security_group_skips_before_the_stop(aws, estate):
    web = estate.launch("web")
    estate.ec2.delete_security_group(GroupId=estate.security_groups[1])

    report = _invoke(aws)

    _skipped_untouched(aws, report, web, estate.security_groups[1], "no longer exist")


def test_full_subnet_skips_before_the_stop(aws, estate):
    """A /28 of eleven usable addresses, all taken: the new instance would get none."""
    ec2 = estate.ec2
    vpc = ec2.describe_subnets(SubnetIds=[estate.subnet_id])["Subnets"][0]["VpcId"]
    small = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.9.0/28",
                              AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    app = ec2.run_instances(
        ImageId=estate.old_ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        SubnetId=small, KeyName="ops", TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "ami-upgrade:parameter", "Value": "/ami/linux/test"}]}],
    )["Instances"][0]["InstanceId"]
    ec2.run_instances(ImageId=estate.old_ami, InstanceType="t3.micro", MinCount=10,
                      MaxCount=10, SubnetId=small)   # someone else's, out of scope
    assert ec2.describe_subnets(SubnetIds=[small])["Subnets"][0]["AvailableIpAddressCount"] == 0

    report = _invoke(aws)

    _skipped_untouched(aws, report, app, f"subnet {small} has no free IP")


def test_full_subnet_is_fine_when_the_old_ip_is_reused(aws, estate):
    """With preserve_private_ip the old instance frees its own address for the new one."""
    ec2 = estate.ec2
    vpc = ec2.describe_subnets(SubnetIds=[estate.subnet_id])["Subnets"][0]["VpcId"]
    small = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.9.0/28",
                              AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    app = ec2.run_instances(
        ImageId=estate.old_ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        SubnetId=small, TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "ami-upgrade:parameter", "Value": "/ami/linux/test"}]}],
    )["Instances"][0]["InstanceId"]
    ec2.run_instances(ImageId=estate.old_ami, InstanceType="t3.micro", MinCount=10,
                      MaxCount=10, SubnetId=small)

    report = function(aws, preserve_private_ip=True).invoke({"dry_run": True})

    assert entry(report, app)["action"] == "planned"


def test_instance_type_not_offered_in_the_zone_skips_before_the_stop(aws, estate):
    """mac1.metal is not offered in us-east-1a (moto's offerings, like AWS's, vary by zone)."""
    odd = estate.launch("render", instance_type="mac1.metal")

    report = _invoke(aws)

    _skipped_untouched(aws, report, odd, "mac1.metal is not offered in us-east-1a")


def test_uefi_image_on_a_bios_only_type_skips_before_the_stop(aws, estate):
    """The new golden image boots UEFI only; t2 instances boot legacy BIOS only."""
    assert estate.ec2.describe_images(ImageIds=[estate.new_ami])["Images"][0][
        "BootMode"] == "uefi"
    old_box = estate.launch("legacy", instance_type="t2.micro")

    report = _invoke(aws)

    _skipped_untouched(aws, report, old_box, "t2.micro does not support", "boot mode uefi")


# ------------------------------------------------------------------- tag room


def test_instance_near_the_tag_limit_is_skipped_before_anything(aws, estate):
    """44 tags: the relaunch may write up to 12 progress tags on it (intent, its volumes,
    attempt, launch token, health, rollback, retry, failure, operator hold...), 56 > 50: it
    could not record its rollback."""
    crowded = estate.launch("crowded", tags={f"cost:{n}": "x" for n in range(42)})
    assert len(estate.describe(crowded)["Tags"]) == 44
    roomy = estate.launch("roomy", tags={f"cost:{n}": "x" for n in range(36)})   # 38 + 12

    report = function(aws).invoke({})

    crowded_entry = entry(report, crowded)
    assert crowded_entry["action"] == "skipped"
    assert "could not record its rollback" in crowded_entry["reason"]
    assert "remove 6 tag(s)" in crowded_entry["reason"]
    assert entry(report, roomy)["action"] == "replaced"
    assert estate.describe(crowded)["State"]["Name"] == "running"
    assert crowded not in str(aws.faults.requests("CreateTags"))


def test_elastic_ip_near_the_tag_limit_is_skipped_before_anything(aws, estate):
    """The intent's four tags ride on the old instance's Elastic IPs (the role moves only
    addresses so marked): 48 tags + 4 > 50."""
    web = estate.launch("web", volumes=1)
    allocation = estate.ec2.allocate_address(Domain="vpc")["AllocationId"]
    estate.ec2.associate_address(AllocationId=allocation, InstanceId=web)
    estate.ec2.create_tags(Resources=[allocation], Tags=[{"Key": f"cost:{n}", "Value": "x"}
                                                         for n in range(48)])

    report = _invoke(aws)

    reason = _skipped_untouched(aws, report, web, f"Elastic IP {allocation} has 48 tags")
    assert "remove 2 tag(s)" in reason


def test_data_volume_near_the_tag_limit_is_skipped_before_anything(aws, estate):
    db = estate.launch("db", volumes=2)
    volume = estate.data_volumes(db)["/dev/sdg"]
    estate.ec2.create_tags(Resources=[volume], Tags=[{"Key": f"backup:{n}", "Value": "x"}
                                                     for n in range(48)])

    report = _invoke(aws)

    reason = _skipped_untouched(aws, report, db, f"data volume {volume} has 48 tags")
    assert "remove 2 tag(s)" in reason


def test_in_place_strategy_needs_less_tag_room(aws, estate):
    """The in-place replacement writes 5 progress tags at most: 44 tags leave room."""
    crowded = estate.launch("crowded", tags={"ami-upgrade:strategy": "replace-root-volume",
                                             **{f"cost:{n}": "x" for n in range(41)}})

    report = function(aws).invoke({"dry_run": True})

    assert entry(report, crowded)["action"] == "planned"


# ------------------------------------------- the tag room rule covers what is written


def _written_keys(aws, resources: dict[str, str]) -> dict[str, set[str]]:
    """Kind of resource -> the tag keys the engine's CreateTags wrote on resources of it."""
    written: dict[str, set[str]] = {}
    for request in aws.faults.requests("CreateTags"):
        keys = {t["Key"] for t in request.get("Tag", request.get("Tags", []))}
        for resource in request.get("ResourceId", request.get("Resources", [])):
            if resource in resources:
                written.setdefault(resources[resource], set()).update(keys)
    return written


def test_declared_engine_tags_cover_every_key_a_relaunch_and_its_rollback_write(aws, estate):
    """The tag-room check counts the strategy's engine_tags: a replacement that rolls back
    (status checks impaired) and one kept stopped write no key outside them."""
    from handler.standalone.registry import STRATEGIES

    failing = estate.launch("failing")
    volumes = set(estate.data_volumes(failing).values())
    aws.faults.status_checks("impaired", after_seconds=30, image_id=estate.new_ami)
    function(aws).invoke({})
    aws.faults.clear()
    set_parameter(estate.newer_ami)
    kept = estate.launch("kept")
    volumes |= set(estate.data_volumes(kept).values())
    report = function(aws, keep_old_instance=True).invoke({})
    new = entry(report, kept)["new_instance_id"]

    resources = {failing: "instance", kept: "instance", new: "new instance",
                 **{v: "volume" for v in volumes}}
    written = _written_keys(aws, resources)
    declared = STRATEGIES["relaunch"].engine_tags
    assert written["instance"] and written["volume"]
    for kind, keys in written.items():
        assert keys <= set(declared[kind]), (kind, keys - set(declared[kind]))


def test_deleted_instance_profile_skips_before_the_stop(aws, estate):
    web = estate.launch("web")
    iam = boto3.client("iam")
    iam.remove_role_from_instance_profile(InstanceProfileName="app", RoleName="app")
    iam.delete_instance_profile(InstanceProfileName="app")

    report = _invoke(aws)

    # Checked with the role it passes (handler/passable.py), before anything is stopped.
    e = entry(report, web)
    assert e["action"] == "skipped", e
    assert f"instance profile {estate.profile_arn} no longer exists" in e["reason"]
    assert report["_mutating"] == []


def test_a_resumed_launch_asks_for_the_same_root_size(aws, estate):
    """Killed after the launch token is written (the AMI fixed): the next invocation
    builds the launch from the shape it captures again, and asks for the same size (a
    different request under the same ClientToken would be refused as a mismatch)."""
    from sandbox.faults import SimulatedCrash

    db = estate.launch("db", volumes=1)
    fn = function(aws)
    aws.faults.crash_after(5)   # intent, volume home, stop, detach, launch token
    with pytest.raises(SimulatedCrash):
        fn.invoke({})
    assert aws.faults.requests("CreateTags")[-1]["Tags"][-1]["Key"] == \
        "ami-upgrade:launch-token"

    report = fn.invoke({})

    assert entry(report, db)["action"] == "replaced"
    assert _root_size_requested(aws) == 15


PREFLIGHT_READS = ("DescribeKeyPairs", "DescribeSubnets", "DescribeSecurityGroups",
                   "DescribeInstanceTypeOfferings", "DescribeRouteTables", "DescribeAddresses",
                   "DescribeTargetGroups", "DescribeTargetHealth", "DescribeLoadBalancers",
                   "GetInstanceProfile")


def test_preflight_reads_do_not_grow_with_the_number_of_instances(aws, estate, api_calls):
    """One read per kind (per target group for its registrations), whether the plan has
    one instance or eight."""
    boto3.client("elbv2").create_target_group(
        Name="web", Protocol="HTTP", Port=80, TargetType="instance",
        VpcId=estate.ec2.describe_subnets(SubnetIds=[estate.subnet_id])["Subnets"][0]["VpcId"])

    def reads() -> dict[str, int]:
        api_calls.clear()
        function(aws).invoke({"dry_run": True})
        return {op: n for op, n in api_calls.count().items()
                if op.split(":")[1] in PREFLIGHT_READS}

    estate.launch("web-0", volumes=1)
    one = reads()
    for n in range(1, 8):
        estate.launch(f"web-{n}", volumes=1)
    eight = reads()

    assert one == eight == {
        "ec2:DescribeAddresses": 1, "ec2:DescribeInstanceTypeOfferings": 1,
        "ec2:DescribeKeyPairs": 1, "ec2:DescribeRouteTables": 1,
        "ec2:DescribeSecurityGroups": 1, "ec2:DescribeSubnets": 1,
        "elb:DescribeLoadBalancers": 1, "elbv2:DescribeTargetGroups": 1,
        "elbv2:DescribeTargetHealth": 1, "iam:GetInstanceProfile": 1}


# ------------------------------------------------------------------ data volumes


def test_multi_attach_data_volume_skips_before_the_stop(aws, estate):
    """Moving a Multi-Attach volume would cut off the other instances sharing it."""
    db = estate.launch("db", volumes=1)
    shared = estate.ec2.create_volume(Size=10, AvailabilityZone="us-east-1a", VolumeType="io2",
                                      Iops=1000, MultiAttachEnabled=True)["VolumeId"]
    estate.ec2.attach_volume(VolumeId=shared, InstanceId=db, Device="/dev/sdg")

    report = _invoke(aws)

    _skipped_untouched(aws, report, db, f"data volume {shared} is Multi-Attach enabled",
                       "moving it is not supported")
    assert estate.data_volumes(db)["/dev/sdg"] == shared
