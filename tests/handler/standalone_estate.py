"""A small estate of standalone instances on the embedded AWS, for the standalone tests.

Built with plain boto3 calls, as an operator would: a VPC with a subnet, two
security groups, a key pair, an IAM instance profile, two images of the same
architecture (old and new), and instances with data volumes, user data and tags.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from sandbox import LambdaFunction, embedded_aws

PARAMETER = "/ami/linux/test"
APP_ROLE = "arn:aws:iam::123456789012:role/app"   # the estate's instance profile's role
USER_DATA = "#!/bin/bash\necho 'mount /dev/sdf /data' >> /etc/rc.local\n"


# Images moto 5 ships (describing all of moto's stock images takes seconds).
STOCK_IMAGES = {"x86_64": "ami-1e749f67",          # Ubuntu, hvm
                "arm64": "ami-0e9271c829888680e",   # Amazon Linux 2022, hvm
                "paravirtual": "ami-8104a4f8"}      # Amazon Linux, x86_64, paravirtual


def copy_stock_image(ec2, kind: str, name: str) -> str:
    return ec2.copy_image(SourceImageId=STOCK_IMAGES[kind], SourceRegion="us-east-1",
                          Name=name)["ImageId"]


@dataclass
class Estate:
    ec2: object
    old_ami: str
    new_ami: str
    newer_ami: str
    subnet_id: str
    security_groups: tuple[str, str]
    key_name: str
    profile_arn: str

    def launch(self, name: str, tags: dict[str, str] | None = None, volumes: int = 2,
               image: str | None = None, instance_type: str = "t3.micro",
               in_scope: bool = True, **extra) -> str:
        """An instance with ``volumes`` data volumes at /dev/sdf, /dev/sdg, ..."""
        all_tags = {"Name": name, **({"ami-upgrade:parameter": PARAMETER} if in_scope else {}),
                    **(tags or {})}
        instance = self.ec2.run_instances(
            ImageId=image or self.old_ami, InstanceType=instance_type, MinCount=1, MaxCount=1,
            SubnetId=self.subnet_id, SecurityGroupIds=list(self.security_groups),
            KeyName=self.key_name, IamInstanceProfile={"Arn": self.profile_arn},
            UserData=USER_DATA, Monitoring={"Enabled": True},
            MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": k, "Value": v} for k, v in all_tags.items()]}], **extra,
        )["Instances"][0]
        iid = instance["InstanceId"]
        zone = instance["Placement"]["AvailabilityZone"]
        for n in range(volumes):
            volume = self.ec2.create_volume(Size=10 + n, AvailabilityZone=zone,
                                            VolumeType="gp3")["VolumeId"]
            self.ec2.attach_volume(VolumeId=volume, InstanceId=iid, Device=f"/dev/sd{'fgh'[n]}")
        return iid

    def describe(self, instance_id: str) -> dict:
        return self.ec2.describe_instances(
            InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    def tags(self, instance_id: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.describe(instance_id).get("Tags", [])}

    def data_volumes(self, instance_id: str) -> dict[str, str]:
        """Device -> volume ID of the instance's non-root volumes."""
        inst = self.describe(instance_id)
        return {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]
                if m["DeviceName"] != inst["RootDeviceName"]}

    def live_instances(self) -> list[dict]:
        pages = self.ec2.get_paginator("describe_instances").paginate(Filters=[
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping",
                                                       "stopped"]}])
        return [i for p in pages for r in p["Reservations"] for i in r["Instances"]]

    def replacement_of(self, old_id: str) -> dict:
        """The one live instance carrying the old one's Name, other than the old one."""
        name = next(t["Value"] for t in self.describe(old_id)["Tags"] if t["Key"] == "Name")
        found = [i for i in self.live_instances() if i["InstanceId"] != old_id
                 and {"Key": "Name", "Value": name} in i.get("Tags", [])]
        assert len(found) == 1, f"expected one replacement of {old_id}, found {found}"
        return found[0]

    def volume(self, volume_id: str) -> dict:
        return self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def build_estate() -> Estate:
    ec2 = boto3.client("ec2")
    old, new, newer = (copy_stock_image(ec2, "x86_64", f"golden-{label}")
                       for label in ("old", "new", "newer"))
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.1.0/24",
                               AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    groups = tuple(ec2.create_security_group(GroupName=name, Description=name,
                                             VpcId=vpc)["GroupId"] for name in ("web", "admin"))
    ec2.create_key_pair(KeyName="ops")
    iam = boto3.client("iam")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    profile = iam.create_instance_profile(InstanceProfileName="app")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="app")
    return Estate(ec2, old, new, newer, subnet, groups, "ops", profile)


def published_estate() -> Estate:
    """An estate whose parameter already names its new image."""
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def set_parameter(ami_id: str) -> None:
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=ami_id, Type="String",
                                      DataType="aws:ec2:image", Overwrite=True)


def function(aws, timeout_seconds: float = 900, instance_roles: str = json.dumps([APP_ROLE]),
             **standalone) -> LambdaFunction:
    env = {"AMI_PARAMETER_NAME": PARAMETER, "INSTANCE_ROLES": instance_roles}
    if standalone:
        env["STANDALONE_CONFIGURATION"] = json.dumps(standalone)
    return LambdaFunction(aws, env, timeout_seconds=timeout_seconds)


def entry(report: dict, instance_id: str) -> dict:
    return next(e for e in report["instances"] if e["id"] == instance_id)


def newer_ami_takes_the_volumes(estate: Estate, fn: LambdaFunction,
                                volumes: list[str]) -> None:
    """After a rollback, a newer AMI published: one instance on it, with the volumes."""
    set_parameter(estate.newer_ami)
    fn.invoke({})
    fn.drain()
    replaced = [i for i in estate.live_instances() if i["ImageId"] == estate.newer_ami]
    assert len(replaced) == 1
    assert estate.data_volumes(replaced[0]["InstanceId"]) == volumes


def replayed(build: Callable[[], Any]) -> tuple[Any, Any, Any]:
    """Fixtures ``aws`` and ``built`` for a test module whose tests start from one estate.

    ``build()`` runs once per module on one embedded AWS, which is then snapshotted;
    each test gets the handle restored to that snapshot (moto's backends and the
    emulations' state) and ``build()``'s result. A crash table replays dozens of
    scenarios from the same start: restoring costs a fraction of rebuilding.
    Use as ``_replay, aws, built = replayed(_build)`` at module level.
    """
    @pytest.fixture(scope="module")
    def _replay():
        with embedded_aws() as handle:
            result = build()
            yield handle, result, handle.snapshot()

    @pytest.fixture
    def aws(_replay):
        handle, _, snapshot = _replay
        handle.restore(snapshot)
        return handle

    @pytest.fixture
    def built(_replay, aws):
        return _replay[1]

    return _replay, aws, built


def crash_then_converge(aws, fn, n: int) -> None:
    """Kill the invocation after its ``n``-th mutating call, then let the next one (and
    whatever it queues) run: what every crash table checks the estate after."""
    from sandbox.faults import SimulatedCrash

    aws.faults.crash_after(n)
    with pytest.raises(SimulatedCrash):
        fn.invoke({})
    fn.invoke({})
    fn.drain()
