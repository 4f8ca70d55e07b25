"""SCOPE=all: what follows another parameter or another orchestrator is out of scope (issue 13,
class 6). Each is reported skipped with the reason, and nothing of it is touched."""

from __future__ import annotations

import json

import boto3
import pytest
from standalone_estate import APP_ROLE, PARAMETER, build_estate, entry, set_parameter

from sandbox import LambdaFunction


@pytest.fixture
def instances(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _all_scope(aws) -> LambdaFunction:
    return LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER, "SCOPE": "all",
                                "INSTANCE_ROLES": json.dumps([APP_ROLE])})


@pytest.mark.parametrize(("tags", "who"), [
    ({"aws:ec2:fleet-id": "fleet-0a1b"}, "EC2 Fleet"),
    ({"aws:ec2spot:fleet-request-id": "sfr-1234"}, "Spot Fleet"),
    ({"aws:elasticmapreduce:job-flow-id": "j-2AXXXXXXGAPLF"}, "EMR"),
    ({"eks:nodegroup-name": "ng-1", "eks:cluster-name": "prod"}, "EKS managed node group"),
    ({"kubernetes.io/cluster/prod": "owned"}, "Kubernetes"),
    ({"karpenter.sh/nodepool": "default"}, "Karpenter"),
    ({"elasticbeanstalk:environment-id": "e-abc123"}, "Elastic Beanstalk"),
    ({"opsworks:stack": "web"}, "OpsWorks"),
])
def test_an_instance_another_orchestrator_owns_is_skipped_with_the_reason(
        aws, instances, tags, who):
    owned = instances.launch("owned", tags=tags, in_scope=False)
    mine = instances.launch("mine", in_scope=False)

    report = _all_scope(aws).invoke({})

    skipped = entry(report, owned)
    assert skipped["action"] == "skipped"
    assert skipped["reason"].startswith(f"managed by {who} (")
    assert "not replaced by this function" in skipped["reason"]
    assert instances.describe(owned)["State"]["Name"] == "running"
    assert instances.describe(owned)["ImageId"] == instances.old_ami
    assert entry(report, mine)["action"] == "replaced", entry(report, mine)


def test_an_instance_tagged_for_another_parameter_is_out_of_scope_in_all(aws, instances):
    theirs = instances.launch("theirs", tags={"ami-upgrade:parameter": "/ami/windows/prod"},
                              in_scope=False)

    report = _all_scope(aws).invoke({})

    assert entry(report, theirs) == {
        "id": theirs, "action": "skipped", "code": "out_of_scope", "volumes": [],
        "reason": f"tagged ami-upgrade:parameter=/ami/windows/prod, not {PARAMETER}"}
    assert instances.describe(theirs)["ImageId"] == instances.old_ami


def test_a_spot_instance_is_out_of_scope_whatever_the_strategy(aws, instances):
    ec2 = boto3.client("ec2")
    request = ec2.request_spot_instances(InstanceCount=1, LaunchSpecification={
        "ImageId": instances.old_ami, "InstanceType": "t3.micro",
        "SubnetId": instances.subnet_id})["SpotInstanceRequests"][0]
    spot = request["InstanceId"]
    ec2.create_tags(Resources=[spot], Tags=[
        {"Key": "ami-upgrade:strategy", "Value": "replace-root-volume"}])

    report = _all_scope(aws).invoke({})

    assert entry(report, spot)["action"] == "skipped"
    assert entry(report, spot)["reason"].startswith("managed by Spot (InstanceLifecycle=spot)")
    assert instances.describe(spot)["ImageId"] == instances.old_ami


@pytest.mark.parametrize(("tags", "who"), [
    ({"eks:nodegroup-name": "ng-1", "eks:cluster-name": "prod"}, "EKS managed node group"),
    ({"elasticbeanstalk:environment-id": "e-abc123"}, "Elastic Beanstalk"),
    ({"AmazonECSManaged": ""}, "ECS"),
])
def test_a_group_another_service_manages_is_skipped_in_all(estate, images, function, tags, who):
    estate.group("managed", parameter=None, tags=tags)
    estate.group("mine", parameter=None)
    estate.publish(images.new)

    report = function(SCOPE="all").invoke({})

    by_name = {a["name"]: a for a in report["asgs"]}
    assert by_name["managed"]["action"] == "skipped"
    assert by_name["managed"]["reason"].startswith(f"managed by {who} (")
    assert estate.refreshes("managed") == []
    assert sorted(estate.versions(estate.template_id("managed"))) == [1]
    assert by_name["mine"]["action"] == "refresh_started"


def test_a_group_tagged_for_another_parameter_is_out_of_scope_in_all(estate, images, function):
    estate.group("windows", parameter="/ami/windows/prod")
    estate.publish(images.new)

    report = function(SCOPE="all").invoke({})

    assert report["asgs"] == [{
        "name": "windows", "action": "skipped", "code": "out_of_scope",
        "reason": f"tagged ami-upgrade:parameter=/ami/windows/prod, not {PARAMETER}"}]
    assert estate.refreshes("windows") == []


def test_every_owner_marker_says_who_and_why():
    from handler.scope import OWNERS

    assert len({o.key for o in OWNERS}) == len(OWNERS)
    for owner in OWNERS:
        assert owner.who and len(owner.why) > 30 and owner.kinds <= {"instance", "asg"}


def test_an_instance_an_aws_service_operates_is_out_of_scope():
    """EC2 managed instances carry ``Operator`` in DescribeInstances (moto does not emulate it)."""
    from handler.scope import owner_reason

    managed = {"Operator": {"Managed": True, "Principal": "eks.amazonaws.com"}}

    assert owner_reason("instance", {}, managed).startswith(
        "managed by an AWS service (Operator.Managed)")
    assert owner_reason("instance", {}, {"Operator": {"Managed": False}}) is None
    assert owner_reason("instance", {}, {}) is None
    assert owner_reason("asg", {"kubernetes.io/cluster/prod": "owned"}) is None  # self-managed
