"""What a relaunch would silently drop: how the instance is reached.

A relaunched instance has a new instance ID, a new primary network interface and,
unless it is an Elastic IP, a new public IP. So web servers registered in a target
group, a NAT instance that route tables send traffic to, and a bastion reached at
its launch-assigned public IP are not relaunched: their root volume is replaced in
place (same ID, ENI, IPs, registrations), or, when that is not possible either,
they are skipped with the references named. An instance nothing references is
relaunched as before; an Elastic IP moves with it.
"""

from __future__ import annotations

import boto3
import pytest
from standalone_estate import (
    PARAMETER,
    build_estate,
    copy_stock_image,
    entry,
    function,
    set_parameter,
)

from handler.standalone import preflight


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _vpc(estate) -> str:
    return estate.ec2.describe_subnets(SubnetIds=[estate.subnet_id])["Subnets"][0]["VpcId"]


def _target_group(estate, name: str, port: int, target_type: str = "instance") -> str:
    return boto3.client("elbv2").create_target_group(
        Name=name, Protocol="HTTP", Port=port, VpcId=_vpc(estate),
        TargetType=target_type)["TargetGroups"][0]["TargetGroupArn"]


def _targets(arn: str) -> list[tuple[str, int]]:
    health = boto3.client("elbv2").describe_target_health(TargetGroupArn=arn)
    return sorted((t["Target"]["Id"], t["Target"]["Port"])
                  for t in health["TargetHealthDescriptions"])


def _replaced_in_place(estate, report: dict, instance_id: str) -> None:
    e = entry(report, instance_id)
    assert e["action"] == "replaced", e
    assert e.get("strategy") == "replace-root-volume", e
    assert "new_instance_id" not in e
    inst = estate.describe(instance_id)
    assert (inst["State"]["Name"], inst["ImageId"]) == ("running", estate.new_ami)


# ------------------------------------------------------------------- target groups


def test_web_servers_in_a_target_group_keep_their_registration(aws, estate):
    """Two web servers behind an ALB's target group (instance targets, port 8080), one
    worker that nothing references: the web servers get their root volume replaced in
    place (still registered, same port), the worker is relaunched."""
    arn = _target_group(estate, "web", 80)
    web = [estate.launch(f"web-{n}", volumes=0) for n in range(2)]
    boto3.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[
        {"Id": i, "Port": 8080} for i in web])
    worker = estate.launch("worker", volumes=1)

    plan = function(aws).invoke({"dry_run": True})
    for i in web:
        reason = entry(plan, i)["reason"]
        assert reason.startswith(f"replace the root volume in place from {estate.new_ami} "
                                 "(not relaunched: registered in target group(s) web (port "
                                 "8080), which a relaunch would drop"), reason
    report = function(aws).invoke({})

    for i in web:
        _replaced_in_place(estate, report, i)
    assert _targets(arn) == sorted((i, 8080) for i in web)
    assert entry(report, worker)["new_instance_id"] != worker      # relaunched


def test_registered_instance_is_skipped_when_in_place_is_not_wanted(aws, estate, monkeypatch):
    monkeypatch.setattr(preflight, "REFERENCED_TO_ROOT_VOLUME", False)
    arn = _target_group(estate, "api", 443)
    api = estate.launch("api", volumes=0)
    boto3.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": api}])
    calls = len(aws.faults.mutating_calls)

    report = function(aws).invoke({})

    assert entry(report, api) == {
        "id": api, "action": "skipped", "code": "references_dropped", "volumes": [],
        "reason": "not relaunched: registered in target group(s) api (port 443), which a "
                  "relaunch would drop; tag ami-upgrade:strategy=replace-root-volume to "
                  "replace its root volume in place"}
    assert aws.faults.mutating_calls[calls:] == []
    assert _targets(arn) == [(api, 443)]


def test_ip_target_is_a_reference_unless_the_private_ip_is_kept(aws, estate):
    """A target group of IP targets names the private IP: a relaunch changes it, except
    with preserve_private_ip (the new instance takes the old one's address)."""
    arn = _target_group(estate, "grpc", 50051, target_type="ip")
    svc = estate.launch("grpc", volumes=0)
    ip = estate.describe(svc)["PrivateIpAddress"]
    boto3.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": ip}])

    plan = function(aws).invoke({"dry_run": True})
    kept = function(aws, preserve_private_ip=True).invoke({"dry_run": True})

    assert f"grpc (port 50051) by IP {ip}" in entry(plan, svc)["reason"]
    assert entry(plan, svc)["strategy"] == "replace-root-volume"
    assert entry(kept, svc)["strategy"] == "relaunch"


# -------------------------------------------------------------------------- routes


def _nat_instance(estate) -> tuple[str, str, str]:
    """A NAT instance: source/dest check off, the private route table's default route
    pointing at its network interface."""
    ec2 = estate.ec2
    nat = estate.launch("nat", volumes=0)
    ec2.modify_instance_attribute(InstanceId=nat, SourceDestCheck={"Value": False})
    eni = estate.describe(nat)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    table = ec2.create_route_table(VpcId=_vpc(estate))["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                     NetworkInterfaceId=eni)
    return nat, eni, table


def test_nat_instance_is_replaced_in_place_so_its_route_stays(aws, estate):
    nat, eni, table = _nat_instance(estate)

    report = function(aws).invoke({})

    e = entry(report, nat)
    assert e["action"] == "replaced" and e["strategy"] == "replace-root-volume", e
    assert estate.describe(nat)["ImageId"] == estate.new_ami
    routes = estate.ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "NetworkInterfaceId": eni} in [
        {k: r[k] for k in ("DestinationCidrBlock", "NetworkInterfaceId") if k in r}
        for r in routes]
    assert estate.describe(nat)["SourceDestCheck"] is False


def test_nat_instance_is_skipped_when_in_place_is_impossible_too(aws, estate):
    """The new image is paravirtual: no in-place replacement (AWS's precondition), and a
    relaunch would blackhole the private subnets' default route."""
    nat, eni, table = _nat_instance(estate)
    paravirtual = copy_stock_image(estate.ec2, "paravirtual", "golden-pv")
    set_parameter(paravirtual)
    calls = len(aws.faults.mutating_calls)

    report = function(aws).invoke({})

    reason = entry(report, nat)["reason"]
    assert entry(report, nat)["action"] == "skipped"
    assert reason.startswith(f"not relaunched: route(s) in {table} (0.0.0.0/0) target it or "
                             f"its network interface {eni}, which a relaunch would blackhole; "
                             "in-place root volume replacement is not possible either: "), reason
    assert "virtualization type" in reason
    assert aws.faults.mutating_calls[calls:] == []


# ---------------------------------------------------------------------- public IPs


def test_bastion_with_a_launch_assigned_public_ip_keeps_it(aws, estate):
    ec2 = estate.ec2
    bastion = ec2.run_instances(
        ImageId=estate.old_ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        KeyName="ops", NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": estate.subnet_id,
                                           "AssociatePublicIpAddress": True,
                                           "Groups": [estate.security_groups[1]]}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": "bastion"},
            {"Key": "ami-upgrade:parameter", "Value": PARAMETER}]}])["Instances"][0]
    public_ip = estate.describe(bastion["InstanceId"])["PublicIpAddress"]
    assert public_ip

    report = function(aws).invoke({})

    e = entry(report, bastion["InstanceId"])
    assert e["action"] == "replaced" and e["strategy"] == "replace-root-volume", e
    assert estate.describe(bastion["InstanceId"])["PublicIpAddress"] == public_ip


def test_bastion_with_an_elastic_ip_is_relaunched_and_the_address_follows(aws, estate):
    ec2 = estate.ec2
    bastion = estate.launch("bastion", volumes=0)
    allocation = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=bastion)

    report = function(aws).invoke({})

    new = entry(report, bastion)["new_instance_id"]
    assert new != bastion
    assert estate.describe(new)["PublicIpAddress"] == allocation["PublicIp"]


# ------------------------------------------------------------- the shape carried over


def test_the_rest_of_the_shape_is_carried_into_the_launch(aws, estate):
    """What DescribeInstances shows beyond the basics (capacity reservation preference,
    auto-recovery, hostname type, enclave, host affinity, CPU options differing from the
    type's defaults) goes into the RunInstances request and its launch-template form."""
    from handler.standalone.preflight import Facts, complete
    from handler.standalone.shape import capture, from_template_data, to_template_data

    db = estate.launch("db", instance_type="m5.large")
    inst = {**estate.describe(db),   # as AWS reports them (moto does not echo them back)
            "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 1},
            "CapacityReservationSpecification": {"CapacityReservationPreference": "none"},
            "MaintenanceOptions": {"AutoRecovery": "disabled"},
            "PrivateDnsNameOptions": {"HostnameType": "resource-name",
                                      "EnableResourceNameDnsARecord": True,
                                      "EnableResourceNameDnsAAAARecord": False},
            "EnclaveOptions": {"Enabled": True}}
    inst["Placement"] = {**inst["Placement"], "Affinity": "host", "HostId": "h-0abc",
                         "Tenancy": "host"}
    types = estate.ec2.describe_instance_types(InstanceTypes=["m5.large"])["InstanceTypes"]
    facts = Facts(types={t["InstanceType"]: t for t in types})
    shape = complete(capture(estate.ec2, inst), inst, facts, estate.new_ami)

    kwargs = shape.run_instances_kwargs(estate.new_ami, "/dev/sda1", "token", {}, [])

    assert kwargs["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    assert kwargs["CapacityReservationSpecification"] == {
        "CapacityReservationPreference": "none"}
    assert kwargs["MaintenanceOptions"] == {"AutoRecovery": "disabled"}
    assert kwargs["PrivateDnsNameOptions"]["HostnameType"] == "resource-name"
    assert kwargs["EnclaveOptions"] == {"Enabled": True}
    assert kwargs["Placement"] == {"AvailabilityZone": "us-east-1a", "Tenancy": "host",
                                   "Affinity": "host", "HostId": "h-0abc"}
    assert from_template_data(to_template_data(kwargs), "token") == kwargs
    default = complete(capture(estate.ec2, estate.describe(db)), estate.describe(db), facts,
                       estate.new_ami)
    assert "CpuOptions" not in default.run_instances_kwargs(estate.new_ami, "/dev/sda1", "t",
                                                            {}, [])


def test_instance_behind_a_classic_load_balancer_keeps_its_registration(aws, estate):
    legacy = estate.launch("legacy-web", volumes=0)
    elb = boto3.client("elb")
    elb.create_load_balancer(LoadBalancerName="legacy", Subnets=[estate.subnet_id],
                             Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80,
                                         "InstancePort": 8080}])
    elb.register_instances_with_load_balancer(LoadBalancerName="legacy",
                                              Instances=[{"InstanceId": legacy}])

    report = function(aws).invoke({})

    e = entry(report, legacy)
    assert e["action"] == "replaced" and e["strategy"] == "replace-root-volume", e
    described = elb.describe_load_balancers(LoadBalancerNames=["legacy"])
    assert described["LoadBalancerDescriptions"][0]["Instances"] == [{"InstanceId": legacy}]


def test_appliance_with_a_second_network_interface_keeps_it(aws, estate):
    """A relaunch recreates only the primary interface: the second one (a management
    network, say) would stay behind, detached. The root volume is replaced in place."""
    ec2 = estate.ec2
    appliance = estate.launch("appliance", volumes=0)
    eni = ec2.create_network_interface(SubnetId=estate.subnet_id)["NetworkInterface"][
        "NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=appliance, DeviceIndex=1)

    report = function(aws).invoke({})

    e = entry(report, appliance)
    assert e["action"] == "replaced" and e["strategy"] == "replace-root-volume", e
    assert sorted(n["NetworkInterfaceId"] for n in estate.describe(appliance)[
        "NetworkInterfaces"] if n["Attachment"]["DeviceIndex"] == 1) == [eni]


@pytest.mark.filterwarnings("ignore:Exception\\(InjectedFault\\):UserWarning")
def test_unreadable_target_groups_refuse_the_relaunch_rather_than_guess(aws, estate,
                                                                        monkeypatch):
    monkeypatch.setattr(preflight, "REFERENCED_TO_ROOT_VOLUME", False)
    web = estate.launch("web", volumes=0)
    aws.faults.fail("DescribeTargetGroups", "AccessDenied", "not authorized", times=None)
    calls = len(aws.faults.mutating_calls)

    report = function(aws).invoke({})

    reason = entry(report, web)["reason"]
    assert entry(report, web)["action"] == "skipped"
    assert reason.startswith("not relaunched: its target groups could not be read "
                             "(DescribeTargetGroups failed: AccessDenied: not authorized; grant "
                             "elasticloadbalancing:Describe*)"), reason
    assert aws.faults.mutating_calls[calls:] == []


@pytest.mark.parametrize("preserve_private_ip", [False, True])
def test_a_private_server_in_a_public_subnet_stays_private(aws, estate, preserve_private_ip):
    """The default subnet assigns public IPs at launch; the server was launched without
    one. Its replacement is launched without one too (before: it got one)."""
    ec2 = estate.ec2
    default = ec2.describe_subnets(Filters=[
        {"Name": "default-for-az", "Values": ["true"]},
        {"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]["SubnetId"]
    server = ec2.run_instances(
        ImageId=estate.old_ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": default,
                            "AssociatePublicIpAddress": False}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": "private"},
            {"Key": "ami-upgrade:parameter", "Value": PARAMETER}]}])["Instances"][0]
    subnet = ec2.describe_subnets(SubnetIds=[server["SubnetId"]])["Subnets"][0]
    assert subnet["MapPublicIpOnLaunch"] and not estate.describe(server["InstanceId"]).get(
        "PublicIpAddress")

    report = function(aws, preserve_private_ip=preserve_private_ip).invoke({})

    new = entry(report, server["InstanceId"])["new_instance_id"]
    described = estate.describe(new)
    assert described.get("PublicIpAddress") is None
    assert (described["SubnetId"], described["SecurityGroups"]) == (
        server["SubnetId"], estate.describe(server["InstanceId"])["SecurityGroups"])
    if preserve_private_ip:
        assert described["PrivateIpAddress"] == server["PrivateIpAddress"]
