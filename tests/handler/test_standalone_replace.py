"""Relaunching standalone instances: the shape carried over, volumes moved, the rest kept."""

from __future__ import annotations

import base64

import pytest
from standalone_estate import PARAMETER, USER_DATA, build_estate, entry, function, set_parameter


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def _user_data(ec2, instance_id: str) -> str:
    value = ec2.describe_instance_attribute(InstanceId=instance_id,
                                            Attribute="userData")["UserData"]["Value"]
    return base64.b64decode(value).decode()


def test_realistic_instance_is_relaunched_with_its_whole_shape(aws, estate):
    old = estate.launch("app", tags={"team": "payments", "cost-centre": "42"})
    ec2 = estate.ec2
    ec2.modify_instance_attribute(InstanceId=old, SourceDestCheck={"Value": False})
    ec2.modify_instance_attribute(InstanceId=old, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdg", "Ebs": {"DeleteOnTermination": True}}])
    before = estate.describe(old)
    volumes = estate.data_volumes(old)

    report = function(aws).invoke({})

    new = estate.replacement_of(old)
    assert entry(report, old) == {
        "id": old, "action": "replaced", "code": "replaced", "new_instance_id": new["InstanceId"],
        "reason": f"replaced by {new['InstanceId']} on {estate.new_ami}",
        "volumes": sorted(volumes.values())}
    assert report["status"] == "succeeded"
    assert new["ImageId"] == estate.new_ami
    assert estate.describe(old)["State"]["Name"] == "terminated"
    for key in ("InstanceType", "SubnetId", "KeyName", "EbsOptimized", "Monitoring",
                "Placement", "SourceDestCheck", "SecurityGroups"):
        assert new[key] == before[key], key
    assert new["SourceDestCheck"] is False
    assert new["IamInstanceProfile"]["Arn"] == before["IamInstanceProfile"]["Arn"]
    metadata = {k: v for k, v in new["MetadataOptions"].items() if k != "State"}
    assert metadata == {k: v for k, v in before["MetadataOptions"].items() if k != "State"}
    assert metadata["HttpTokens"] == "required"
    assert _tags(new) == {"Name": "app", "team": "payments", "cost-centre": "42",
                          "ami-upgrade:parameter": PARAMETER}
    assert _user_data(ec2, new["InstanceId"]) == USER_DATA
    assert estate.data_volumes(new["InstanceId"]) == volumes
    dot = {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in new["BlockDeviceMappings"]}
    assert (dot["/dev/sdf"], dot["/dev/sdg"]) == (False, True)
    for volume_id in volumes.values():
        assert not [t for t in estate.volume(volume_id).get("Tags", [])
                    if t["Key"].startswith("ami-upgrade:")]


def test_launch_request_carries_what_moto_does_not_show(aws, estate):
    """Credit specification, tenancy, shutdown behaviour: checked on the request AWS got."""
    old = estate.launch("app")
    before = estate.describe(old)

    function(aws).invoke({})

    (launch,) = [r for r in aws.faults.requests("RunInstances") if r.get("ClientToken", "")
                 .startswith(f"ami-upgrade-{old}-")]
    assert launch["CreditSpecification"] == {"CpuCredits": "standard"}
    assert launch["Placement"] == {"AvailabilityZone": "us-east-1a", "Tenancy": "default"}
    assert launch["InstanceInitiatedShutdownBehavior"] == "stop"
    assert launch["DisableApiTermination"] is False
    assert launch["ImageId"] == estate.new_ami
    assert launch["ClientToken"] == (
        f"ami-upgrade-{old}-1-" + launch["ClientToken"].rsplit("-", 1)[1])
    root = before["BlockDeviceMappings"][0]
    assert launch["BlockDeviceMappings"][0]["DeviceName"] == before["RootDeviceName"]
    assert launch["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"] is root["Ebs"][
        "DeleteOnTermination"]
    assert launch["BlockDeviceMappings"][1:] == [{"DeviceName": "/dev/sdf", "NoDevice": ""},
                                                 {"DeviceName": "/dev/sdg", "NoDevice": ""}]
    assert {"Key": "ami-upgrade:replaces", "Value": old} in launch["TagSpecifications"][0][
        "Tags"]


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "AccessDenied"])
def test_shape_read_attribute_by_attribute_when_get_launch_template_data_is_refused(
        aws, estate, code):
    """AWS runs GetLaunchTemplateData through reads the role may lack (Spot requests,
    elastic GPUs): refused, the four attributes and the credits are read instead."""
    old = estate.launch("app")
    estate.ec2.modify_instance_attribute(InstanceId=old, DisableApiStop={"Value": True})
    other = estate.launch("other")
    aws.faults.fail("GetLaunchTemplateData", code, times=None)

    report = function(aws).invoke({})

    assert entry(report, old)["reason"] == "stop protection (DisableApiStop) is enabled"
    new = estate.replacement_of(other)
    assert entry(report, other)["action"] == "replaced"
    assert _user_data(estate.ec2, new["InstanceId"]) == USER_DATA
    (launch,) = [r for r in aws.faults.requests("RunInstances") if r.get("ClientToken", "")
                 .startswith(f"ami-upgrade-{other}-")]
    assert launch["CreditSpecification"] == {"CpuCredits": "standard"}
    assert launch["InstanceInitiatedShutdownBehavior"] == "stop"
    assert aws.faults.requests("GetLaunchTemplateData") == []   # every one refused
    assert sorted((r["InstanceId"], r["Attribute"])
                  for r in aws.faults.requests("DescribeInstanceAttribute")
                  if r["InstanceId"] in (old, other)) == sorted(
        (i, a) for i in (old, other) for a in ("disableApiStop", "disableApiTermination",
                                               "instanceInitiatedShutdownBehavior",
                                               "userData"))


def test_excluded_untagged_and_up_to_date_instances_are_untouched(aws, estate):
    listed = estate.launch("listed")
    by_tag = estate.launch("by-tag", tags={"ami-upgrade:exclude": "true"})
    untagged = estate.launch("untagged", in_scope=False)
    current = estate.launch("current", image=estate.new_ami)
    before = {i: estate.describe(i) for i in (listed, by_tag, untagged, current)}
    fn = function(aws)
    fn.environment["EXCLUDED_INSTANCES"] = listed
    calls = len(aws.faults.mutating_calls)

    report = fn.invoke({})

    assert aws.faults.mutating_calls[calls:] == []
    assert {e["id"]: (e["action"], e["reason"]) for e in report["instances"]} == {
        listed: ("skipped", "excluded by the exclusion list (EXCLUDED_INSTANCES or the "
                            "exclusions parameter)"),
        by_tag: ("skipped", "excluded by tag ami-upgrade:exclude=true"),
        current: ("skipped", f"already on {estate.new_ami}"),
    }
    for instance_id, described in before.items():
        assert estate.describe(instance_id) == described


def test_scope_all_reports_untagged_instances_too(aws, estate):
    untagged = estate.launch("untagged", in_scope=False, volumes=0)
    fn = function(aws)
    fn.environment["SCOPE"] = "all"

    report = fn.invoke({"dry_run": True})

    assert entry(report, untagged)["action"] == "planned"


@pytest.mark.parametrize(("kind", "reason"), [
    ("asg", "belongs to Auto Scaling group web (the group's entry says what happens to it)"),
    ("stopped", "state is stopped: only running instances are replaced"),
    ("arm64", "architecture differs"),
    ("instance-store", "instance type m5d.large has instance-store volumes"),
    ("spot", "managed by Spot (InstanceLifecycle=spot)"),   # handler/scope.py OWNERS
    ("termination-protected", "termination protection (DisableApiTermination) is enabled"),
    ("strategy-typo", "tag ami-upgrade:strategy has unknown value 'relanch'"),
])
def test_instances_that_cannot_be_replaced_are_skipped_with_the_reason(aws, estate, kind,
                                                                       reason):
    from standalone_estate import copy_stock_image
    ec2 = estate.ec2
    options: dict = {}
    tags: dict = {}
    if kind == "asg":
        tags["aws:autoscaling:groupName"] = "web"
    if kind == "arm64":
        options["image"] = copy_stock_image(ec2, "arm64", "golden-arm")
        options["instance_type"] = "t4g.micro"
    if kind == "instance-store":
        options["instance_type"] = "m5d.large"
    if kind == "spot":
        options["InstanceMarketOptions"] = {"MarketType": "spot"}
    if kind == "termination-protected":
        options["DisableApiTermination"] = True
    if kind == "strategy-typo":
        tags["ami-upgrade:strategy"] = "relanch"
    instance = estate.launch(kind, tags=tags, **options)
    if kind == "termination-protected":
        ec2.modify_instance_attribute(InstanceId=instance, DisableApiTermination={"Value": True})
    if kind == "stopped":
        ec2.stop_instances(InstanceIds=[instance])
    before = estate.describe(instance)
    calls = len(aws.faults.mutating_calls)

    report = function(aws).invoke({})

    assert entry(report, instance)["action"] == "skipped"
    assert reason in entry(report, instance)["reason"]
    assert aws.faults.mutating_calls[calls:] == []
    assert estate.describe(instance) == before


def test_dry_run_plans_and_touches_nothing(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    before = estate.describe(old)
    calls = len(aws.faults.mutating_calls)

    report = function(aws).invoke({"dry_run": True})

    assert report["dry_run"] is True
    assert entry(report, old) == {
        "id": old, "action": "planned", "code": "planned", "strategy": "relaunch",
        "reason": f"relaunch on {estate.new_ami}, moving 2 data volume(s)",
        "volumes": [volumes["/dev/sdf"], volumes["/dev/sdg"]]}
    assert aws.faults.mutating_calls[calls:] == []
    assert estate.describe(old) == before


def test_duplicate_delivery_replaces_nothing_twice(aws, estate, load_event):
    old = estate.launch("app")
    fn = function(aws)
    event = load_event("parameter-store-change-update")
    event["detail"]["name"] = PARAMETER

    first = fn.invoke(event)
    new = estate.replacement_of(old)["InstanceId"]
    calls = len(aws.faults.mutating_calls)
    second = fn.invoke(event)

    assert entry(first, old)["action"] == "replaced"
    assert entry(second, new) == {"id": new, "action": "skipped", "code": "already_current",
                                  "volumes": [], "reason": f"already on {estate.new_ami}"}
    assert aws.faults.mutating_calls[calls:] == []
    assert estate.replacement_of(old)["InstanceId"] == new


def test_keep_old_instance_leaves_it_stopped_and_tagged(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)

    report = function(aws, keep_old_instance=True).invoke({})

    new = entry(report, old)["new_instance_id"]
    kept = estate.describe(old)
    assert kept["State"]["Name"] == "stopped"
    assert _tags(kept)["ami-upgrade:replaced-by"] == new
    assert not {"ami-upgrade:in-flight", "ami-upgrade:target-ami",
                "ami-upgrade:launch-token"} & set(_tags(kept))
    assert estate.data_volumes(old) == {}
    assert estate.data_volumes(new) == volumes
    again = function(aws, keep_old_instance=True).invoke({})
    assert entry(again, old)["reason"] == f"kept stopped after being replaced by {new}"


def test_parallelism_and_the_cap_bound_one_run(aws, estate):
    instances = sorted(estate.launch(f"app-{n}", volumes=1) for n in range(3))  # plan order
    fn = function(aws, parallelism=2, max_per_run=2)

    report = fn.invoke({})

    actions = [entry(report, i)["action"] for i in instances]
    assert actions == ["replaced", "replaced", "in_progress"]
    assert entry(report, instances[2])["reason"] == (
        "not started yet (max_per_run reached); continues in the next invocation")
    assert report["continuation"] == 1
    (follow_up,) = fn.drain()
    assert entry(follow_up, instances[2])["action"] == "replaced"


def test_elastic_ip_moves_to_the_replacement(aws, estate):
    old = estate.launch("app")
    ec2 = estate.ec2
    vpc = ec2.describe_subnets(SubnetIds=[estate.subnet_id])["Subnets"][0]["VpcId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=allocation, InstanceId=old)

    report = function(aws).invoke({})

    address = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    assert address["InstanceId"] == entry(report, old)["new_instance_id"]


def test_replacements_in_flight_together_share_calls_and_a_refusal_stays_their_own(aws, estate):
    """Calls asking the same of several resources are made once for the replacements of a
    round (the intent, the stop, ...); refused, each is made alone, so AWS's refusal is
    met by the replacement it concerns only (here: none, it was transient)."""
    olds = sorted(estate.launch(f"app-{n}", volumes=1) for n in range(2))
    aws.faults.fail("StopInstances", "IncorrectInstanceState", times=1,
                    when=lambda p: len(p.get("InstanceIds", [])) > 1)

    report = function(aws, parallelism=2).invoke({})

    assert [entry(report, old)["action"] for old in olds] == ["replaced", "replaced"]
    intents = [r["Resources"] for r in aws.faults.requests("CreateTags")
               if any(t["Key"] == "ami-upgrade:volumes" for t in r["Tags"])]
    assert intents == [[olds[0]], [olds[1]]]         # each records its own volumes
    assert [r["InstanceIds"] for r in aws.faults.requests("StopInstances")] == [
        [olds[0]], [olds[1]]]                        # the merged stop refused: each alone
    assert [r["InstanceIds"] for r in aws.faults.requests("TerminateInstances")] == [olds]
