"""Before the stop: what would make the launch impossible, and what a relaunch would drop.

Planning reads the estate around the candidates once (:func:`read_facts`: a few
batched reads per plan, never one per instance) and reviews every planned
replacement (:func:`review`) before anything is changed:

Launch preconditions (a relaunch stops the old instance before it launches the
new one, so a launch AWS refuses means an outage and a rollback): the key pair, the
instance profile,
the subnet (and a free IP in it, unless the old instance's own IP is reused),
the security groups, the instance type offered in the zone and able to run the
new image (architecture, virtualization type, boot mode). A failed check skips
the instance with the check's name and the fix, before any mutating call.

Room for the engine's own tags: AWS allows 50 user tags per resource (``aws:``
tags do not count); an instance, volume or Elastic IP without room for every progress tag
the strategy may write (``Strategy.engine_tags``) could not record its rollback, so it
is skipped.

References a relaunch would silently drop (a new instance has a new ID and a new
primary network interface): registrations in ELBv2 target groups (by instance ID,
or by private IP unless ``preserve_private_ip``) and in classic load balancers,
routes whose target is the instance or its network interface (a NAT instance),
and a public IP assigned at launch (an Elastic IP moves with the replacement; an
auto-assigned one does not). Such an instance is not relaunched: when
:data:`REFERENCED_TO_ROOT_VOLUME` and AWS's preconditions hold, its root volume is
replaced in place (same ID, ENI, IPs and registrations); otherwise it is skipped
with the references named.

Keys the role may not use (:func:`key_blocker`): a volume the replacement would move
or restart under a customer-managed KMS key not in ``kmsKeyArns`` (``KMS_KEY_ARNS``)
would detach, then be refused on the new instance and on the rollback; such an
instance is skipped, naming the volume, its key and the fix.

What cannot be probed here (and is reported by the launch itself, then rolled
back): On-Demand capacity (``InsufficientInstanceCapacity`` is only known at
launch), IAM (``iam:PassRole`` on the profile's role, a key policy refusing a
granted key), quotas, and
references outside EC2/ELB (Route 53 records, security group rules or allow-lists
naming the IP, DNS caches, configuration naming the instance ID).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..aws import describe, describe_error, error_code, tag_map
from ..outcomes import Code
from ..tags import (
    TAG_VALUE_LIMIT,
    VOLUMES,
)
from .core import InstancePlan, PlanAction, PlanInputs

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client

    from ..run import RunContext
    from .core import Strategy
    from .shape import InstanceShape

AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"   # the account's AWS-managed EBS key: no grant needed
KMS_KEYS = "KMS keys"                      # the Facts.unreadable entry when it cannot be read
MAX_TAGS = 50   # user tags per EC2 resource; aws: tags do not count

# A proposed setting (handler/settings.py is frozen for now): an instance a relaunch would
# cut off (target groups, routes, public IP) gets its root volume replaced in place instead,
# when AWS's preconditions for that hold. False: it is skipped with the references named.
REFERENCED_TO_ROOT_VOLUME = True


@dataclass(frozen=True)
class Facts:
    """What planning read once about the estate around the candidates."""

    key_pairs: frozenset[str] = frozenset()
    subnets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    security_groups: frozenset[str] = frozenset()
    offered: frozenset[tuple[str, str]] = frozenset()          # (instance type, zone)
    types: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    images: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)   # raw images
    volume_tags: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    volumes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)   # raw, by ID
    elastic_ips: frozenset[str] = frozenset()                  # public IPs that are EIPs
    # instance ID -> its Elastic IPs' tags, by allocation ID
    address_tags: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # id -> route tables
    targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # id/IP -> groups
    unreadable: Mapping[str, str] = field(default_factory=dict)  # check -> why not read
    aws_managed_key: str | None = None   # ARN behind alias/aws/ebs, when a volume needed it


def _filtered(ec2: EC2Client, operation: str, key: str, name: str, values: Iterable[str],
              **params: Any) -> list[dict[str, Any]]:
    """Items whose ``name`` filter matches ``values`` (a filter, so absent ones are not
    an error: the check is whether they come back)."""
    wanted = sorted({v for v in values if v})
    if not wanted:
        return []
    return describe(ec2, operation, key, ids=wanted, id_filter=name, **params)


def read_facts(ctx: RunContext, instances: Iterable[Mapping[str, Any]],
               image_ids: Iterable[str]) -> Facts:
    """The batched reads every check decides from (one request per kind and batch)."""
    ec2 = ctx.clients.ec2
    insts = list(instances)
    nics = [n for i in insts for n in i.get("NetworkInterfaces", [])]
    vpcs = {v for v in (*(i.get("VpcId") for i in insts), *(n.get("VpcId") for n in nics))
            if v}
    zones = {i.get("Placement", {}).get("AvailabilityZone") for i in insts}
    types = {i["InstanceType"] for i in insts}
    volumes = {m["Ebs"]["VolumeId"] for i in insts for m in i.get("BlockDeviceMappings", [])
               if "Ebs" in m}
    unreadable: dict[str, str] = {}
    found_volumes = {v["VolumeId"]: v for v in _filtered(ec2, "describe_volumes", "Volumes",
                                                         "volume-id", volumes)}
    offered = frozenset(
        (o["InstanceType"], o["Location"])
        for o in _filtered(ec2, "describe_instance_type_offerings", "InstanceTypeOfferings",
                           "instance-type", types, LocationType="availability-zone",
                           filters=[{"Name": "location", "Values": sorted(z for z in zones
                                                                          if z)}])
    ) if any(zones) else frozenset()
    routes: dict[str, list[str]] = {}
    for table in _filtered(ec2, "describe_route_tables", "RouteTables", "vpc-id", vpcs):
        for route in table.get("Routes", []):
            destination = (route.get("DestinationCidrBlock")
                           or route.get("DestinationIpv6CidrBlock")
                           or route.get("DestinationPrefixListId", ""))
            for target in (route.get("InstanceId"), route.get("NetworkInterfaceId")):
                if target:
                    routes.setdefault(target, []).append(
                        f"{table['RouteTableId']} ({destination})")
    targets: dict[str, list[str]] = {}
    try:
        targets = _target_registrations(ctx, vpcs)
    except ClientError as error:
        unreadable["target groups"] = describe_error(error)
    try:
        for name, instance_id in _classic_registrations(ctx, vpcs):
            targets.setdefault(instance_id, []).append(f"classic load balancer {name}")
    except ClientError as error:
        unreadable["classic load balancers"] = describe_error(error)
    aws_managed_key = _aws_managed_key(ctx, found_volumes.values(), unreadable)
    addresses = _filtered(ec2, "describe_addresses", "Addresses", "instance-id",
                          (i["InstanceId"] for i in insts))
    return Facts(
        aws_managed_key=aws_managed_key,
        key_pairs=frozenset(k["KeyName"] for k in _filtered(
            ec2, "describe_key_pairs", "KeyPairs", "key-name",
            (i.get("KeyName", "") for i in insts))),
        subnets={s["SubnetId"]: s for s in _filtered(
            ec2, "describe_subnets", "Subnets", "subnet-id",
            (i.get("SubnetId", "") for i in insts))},
        security_groups=frozenset(g["GroupId"] for g in _filtered(
            ec2, "describe_security_groups", "SecurityGroups", "group-id",
            (g["GroupId"] for i in insts for g in i.get("SecurityGroups", [])))),
        offered=offered,
        types={t["InstanceType"]: t for t in describe(
            ec2, "describe_instance_types", "InstanceTypes", ids=types,
            id_param="InstanceTypes")},
        images={im["ImageId"]: im for im in describe(
            ec2, "describe_images", "Images", ids=[i for i in image_ids if i],
            id_param="ImageIds")},
        volume_tags={k: tag_map(v.get("Tags")) for k, v in found_volumes.items()},
        volumes=found_volumes,
        elastic_ips=frozenset(a["PublicIp"] for a in addresses if a.get("PublicIp")),
        address_tags=_address_tags(addresses),
        routes={k: tuple(v) for k, v in routes.items()},
        targets={k: tuple(v) for k, v in targets.items()},
        unreadable=unreadable,
    )


def _address_tags(addresses: Iterable[Mapping[str, Any]]
                  ) -> dict[str, dict[str, dict[str, str]]]:
    """Instance ID -> allocation ID -> tags, of the Elastic IPs on instances."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for address in addresses:
        if address.get("InstanceId") and address.get("AllocationId"):
            found.setdefault(address["InstanceId"], {})[address["AllocationId"]] = tag_map(
                address.get("Tags"))
    return found


def _aws_managed_key(ctx: RunContext, volumes: Iterable[Mapping[str, Any]],
                     unreadable: dict[str, str]) -> str | None:
    """The ARN of the account's AWS-managed EBS key (``aws/ebs``), read at most once per
    plan and only when a volume is encrypted with a key not in ``kmsKeyArns``.

    That key's policy lets every principal of the account use it through EC2, so its
    volumes move without a grant; any other key must be granted. Telling them apart:
    ``GetEbsDefaultKmsKeyId`` names the default key, not the key of a given volume, and
    ``DescribeKey`` of each volume's key would need a grant on every key. One
    ``DescribeKey`` by the alias does it, granted only when asked for by that alias
    (``kms:RequestAlias``), so the role can read no other key. When it cannot be read,
    ``unreadable`` says why and the check skips rather than guesses.
    """
    granted = set(ctx.settings.kms_key_arns)
    if not any(v.get("Encrypted") and v.get("KmsKeyId") not in granted for v in volumes):
        return None
    if ctx.clients.kms is None:
        unreadable[KMS_KEYS] = "no KMS client"
        return None
    try:
        return str(ctx.clients.kms.describe_key(
            KeyId=AWS_MANAGED_EBS_ALIAS)["KeyMetadata"]["Arn"])
    except ClientError as error:
        if error_code(error) != "NotFoundException":   # none yet: no volume is under it
            unreadable[KMS_KEYS] = describe_error(error, "DescribeKey")
        return None


def _target_registrations(ctx: RunContext, vpcs: set[str]) -> dict[str, list[str]]:
    """Instance ID or IP -> the target groups (and ports) it is registered in.

    One paginated DescribeTargetGroups, then one DescribeTargetHealth per target
    group in the candidates' VPCs (ELBv2 has no batched form; per group, not per
    instance). Lambda and ALB target groups cannot name an instance.
    """
    elbv2 = ctx.clients.elbv2
    found: dict[str, list[str]] = {}
    if elbv2 is None or not vpcs:
        return found
    groups = [g for page in elbv2.get_paginator("describe_target_groups").paginate()
              for g in page.get("TargetGroups", [])
              if g.get("VpcId") in vpcs and g.get("TargetType") in ("instance", "ip")]
    for group in sorted(groups, key=lambda g: g["TargetGroupArn"]):
        health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
        for target in health.get("TargetHealthDescriptions", []):
            t = target.get("Target", {})
            port = t.get("Port") or group.get("Port")
            found.setdefault(t.get("Id", ""), []).append(
                f"{group.get('TargetGroupName', group['TargetGroupArn'])} (port {port})")
    return found


def _classic_registrations(ctx: RunContext, vpcs: set[str]) -> list[tuple[str, str]]:
    """(load balancer, instance ID) for the classic load balancers in the candidates' VPCs
    (one paginated DescribeLoadBalancers)."""
    elb = ctx.clients.elb
    if elb is None or not vpcs:
        return []
    return [(lb["LoadBalancerName"], i["InstanceId"])
            for page in elb.get_paginator("describe_load_balancers").paginate()
            for lb in page.get("LoadBalancerDescriptions", [])
            if lb.get("VPCId") in vpcs for i in lb.get("Instances", [])]


# ------------------------------------------------------------------- the checks


def _primary(instance: Mapping[str, Any]) -> Mapping[str, Any]:
    nics = instance.get("NetworkInterfaces", [])
    return next((n for n in nics if n.get("Attachment", {}).get("DeviceIndex") == 0),
                nics[0] if nics else {})


def references(facts: Facts, instance: Mapping[str, Any], preserve_private_ip: bool
               ) -> list[str]:
    """What reaches this instance by its ID, its network interface or an address a relaunch
    would not keep (each naming the fix); empty when a relaunch drops nothing."""
    iid = instance["InstanceId"]
    eni = _primary(instance).get("NetworkInterfaceId")
    private_ip = instance.get("PrivateIpAddress")
    found = [f"its {what} could not be read ({why}; grant elasticloadbalancing:Describe*)"
             for what, why in sorted(facts.unreadable.items()) if "load balancers" in what
             or what == "target groups"]
    groups = list(facts.targets.get(iid, ()))
    if private_ip and not preserve_private_ip:
        groups += [f"{g} by IP {private_ip}" for g in facts.targets.get(private_ip, ())]
    if groups:
        found.append(f"registered in target group(s) {', '.join(groups)}, which a relaunch "
                     "would drop")
    tables = [*facts.routes.get(iid, ()), *(facts.routes.get(eni, ()) if eni else ())]
    if tables:
        found.append(f"route(s) in {', '.join(sorted(set(tables)))} target it or its network "
                     f"interface {eni}, which a relaunch would blackhole")
    public_ip = instance.get("PublicIpAddress")
    if public_ip and public_ip not in facts.elastic_ips:
        found.append(f"public IP {public_ip} was assigned at launch and would change (associate "
                     "an Elastic IP: the replacement takes it over)")
    return found


def launch_blocker(facts: Facts, instance: Mapping[str, Any], goal_id: str,
                   preserve_private_ip: bool) -> str | None:
    """Why AWS would refuse the relaunch (checked before the stop); None when it can launch."""
    key = instance.get("KeyName")
    if key and key not in facts.key_pairs:
        return (f"key pair {key} no longer exists: the launch would be refused (import the key "
                "pair again under that name, or tag ami-upgrade:exclude=true)")
    # The instance profile (that it exists, that its role may be passed) is checked by
    # handler/passable.py when the strategy plans, one GetInstanceProfile per profile.
    subnet_id = instance.get("SubnetId")
    subnet = facts.subnets.get(subnet_id or "")
    if subnet_id and subnet is None:
        return f"subnet {subnet_id} no longer exists: the launch would be refused"
    if subnet is not None and not preserve_private_ip \
            and int(subnet.get("AvailableIpAddressCount", 1)) < 1:
        return (f"subnet {subnet_id} has no free IP address for the new instance (the old one "
                "keeps its own until the new one is healthy): free one, or set "
                "preserve_private_ip")
    gone = [g["GroupId"] for g in instance.get("SecurityGroups", [])
            if g["GroupId"] not in facts.security_groups]
    if gone:
        return (f"security group(s) {', '.join(gone)} no longer exist: the launch would be "
                "refused (detach them from the instance)")
    itype = instance["InstanceType"]
    zone = instance.get("Placement", {}).get("AvailabilityZone")
    if zone and (itype, zone) not in facts.offered:
        return (f"instance type {itype} is not offered in {zone}: the launch would be refused "
                "(change the instance type)")
    info, image = facts.types.get(itype), facts.images.get(goal_id)
    if info is not None and image is not None:
        arch = image.get("Architecture")
        if arch and arch not in info.get("ProcessorInfo", {}).get("SupportedArchitectures",
                                                                  [arch]):
            return f"instance type {itype} cannot run {goal_id}'s architecture {arch}"
        virt = image.get("VirtualizationType")
        if virt and virt not in info.get("SupportedVirtualizationTypes", [virt]):
            return f"instance type {itype} does not support {goal_id}'s {virt} virtualization"
        boot = image.get("BootMode") if virt != "paravirtual" else None   # PV: no firmware
        if boot and boot not in info.get("SupportedBootModes", [boot]):
            return (f"instance type {itype} does not support {goal_id}'s boot mode {boot} "
                    "(change the instance type, or build the image for "
                    f"{' or '.join(info.get('SupportedBootModes', []))})")
    return None


def tag_room_blocker(facts: Facts, instance: Mapping[str, Any], strategy: Strategy,
                     shape: InstanceShape | None) -> str | None:
    """Why the engine could not record its progress (and so its rollback) on a resource
    near AWS's 50-tag limit (counting every tag ``strategy`` may write,
    :attr:`~.core.Strategy.engine_tags`); None when every tag it may write fits."""
    keys = strategy.engine_tags

    def crowded(tags: Mapping[str, str], engine: tuple[str, ...]) -> int | None:
        user = {k for k in tags if not k.lower().startswith("aws:")}
        needed = len(user | set(engine))
        return needed if needed > MAX_TAGS else None

    iid = instance["InstanceId"]
    tags = tag_map(instance.get("Tags"))
    over = crowded(tags, keys.get("instance", ()))
    if over:
        return (f"{len(tags)} tags: with the {len(set(keys['instance']) - set(tags))} progress "
                f"tags the {strategy.name} may write it would need {over} (AWS allows "
                f"{MAX_TAGS}), so it could not record its rollback; remove {over - MAX_TAGS} "
                f"tag(s) from {iid}")
    if shape is not None and "new instance" in keys:
        inherited = dict(shape.tags)
        over = crowded(inherited, keys["new instance"])
        if over:
            return (f"its replacement would need {over} tags (AWS allows {MAX_TAGS}); remove "
                    f"{over - MAX_TAGS} tag(s) from {iid}")
    record = ",".join(v.volume_id for v in shape.data_volumes) if shape is not None else ""
    if VOLUMES in keys.get("instance", ()) and len(record) > TAG_VALUE_LIMIT:
        return (f"its {len(shape.data_volumes) if shape else 0} data volumes do not fit the "
                f"record of them on {iid} ({VOLUMES}: {len(record)} of {TAG_VALUE_LIMIT} "
                "characters); only recorded volumes are ever moved, so it is not replaced")
    for allocation, atags in facts.address_tags.get(iid, {}).items():
        over = crowded(atags, keys.get("elastic-ip", ()))
        if over:
            return (f"Elastic IP {allocation} has {len(atags)} tags: with the progress tags "
                    f"it would need {over} (AWS allows {MAX_TAGS}), so it could not be marked "
                    f"to move; remove {over - MAX_TAGS} tag(s) from it")
    if shape is not None and "volume" in keys:
        for volume in shape.data_volumes:
            vtags = facts.volume_tags.get(volume.volume_id, {})
            over = crowded(vtags, keys["volume"])
            if over:
                return (f"data volume {volume.volume_id} has {len(vtags)} tags: with the "
                        f"progress tags it would need {over} (AWS allows {MAX_TAGS}), so its "
                        f"home could not be recorded; remove {over - MAX_TAGS} tag(s) from it")
    return None


def volume_blocker(facts: Facts, instance: Mapping[str, Any]) -> str | None:
    """Why a data volume, once detached, might not attach again to any instance (checked
    before the stop: the relaunch detaches every data volume); None when each can.

    Its state (``in-use``: not ``error`` nor being modified away from an attachment),
    Multi-Attach (attached to other instances too: moving it would cut them off) and its
    zone (the new instance is launched in the old one's zone)."""
    zone = instance.get("Placement", {}).get("AvailabilityZone")
    root = instance.get("RootDeviceName")
    for mapping in instance.get("BlockDeviceMappings", []):
        volume_id = mapping.get("Ebs", {}).get("VolumeId")
        volume = facts.volumes.get(volume_id or "")
        if mapping.get("DeviceName") == root or volume is None:
            continue
        if volume.get("State") != "in-use":
            return (f"data volume {volume_id} is {volume.get('State')}, so it might not attach "
                    "again once detached (wait until it is in-use, or detach it)")
        others = sorted({a.get("InstanceId", "") for a in volume.get("Attachments", [])}
                        - {instance["InstanceId"]})
        if volume.get("MultiAttachEnabled") or others:
            return (f"data volume {volume_id} is Multi-Attach enabled"
                    + (f" and attached to {', '.join(others)} too" if others else "")
                    + ": moving it is not supported (detach it from the instance, or tag "
                    "ami-upgrade:strategy=replace-root-volume)")
        if zone and volume.get("AvailabilityZone") not in (None, zone):
            return (f"data volume {volume_id} is in {volume.get('AvailabilityZone')}, not "
                    f"{zone}: it could not attach to the new instance")
    return None


def key_blocker(facts: Facts, instance: Mapping[str, Any], granted: Iterable[str],
                strategy: Strategy) -> str | None:
    """Why a volume's KMS key would refuse the replacement (checked before the stop); None
    when the role may use every key involved.

    A relaunch detaches and attaches every data volume, and its rollback starts the old
    instance on its root volume: all of them count. A root volume replacement restores
    the root volume in place: only it counts. A volume counts when it is encrypted with a
    key neither in ``kmsKeyArns`` nor the AWS-managed ``aws/ebs`` key: the detach would
    succeed, the attach be refused on the new instance and on the rollback. Which count
    is the strategy's :attr:`~.core.Strategy.uses_keys_of`."""
    allowed = set(granted) | ({facts.aws_managed_key} if facts.aws_managed_key else set())
    root = instance.get("RootDeviceName")
    for mapping in instance.get("BlockDeviceMappings", []):
        is_root = mapping.get("DeviceName") == root
        volume_id = mapping.get("Ebs", {}).get("VolumeId", "")
        volume = facts.volumes.get(volume_id) or {}
        key = volume.get("KmsKeyId")
        if ("root" if is_root else "data") not in strategy.uses_keys_of \
                or not volume.get("Encrypted") or not key or key in allowed:
            continue
        what = f"{'root' if is_root else 'data'} volume {volume_id}"
        if KMS_KEYS in facts.unreadable:
            return (f"{what} is encrypted with KMS key {key}, not in kmsKeyArns, and the "
                    f"AWS-managed EBS key could not be read to tell them apart "
                    f"({facts.unreadable[KMS_KEYS]}): redeploy the stack (its role may read "
                    f"{AWS_MANAGED_EBS_ALIAS}), or add the key to ami-upgrade:kmsKeyArns")
        return (f"{what} is encrypted with KMS key {key}, which is not in kmsKeyArns: the role "
                "could not attach it again once detached, nor start the instance on it (add "
                "the key to ami-upgrade:kmsKeyArns and deploy, or tag "
                "ami-upgrade:exclude=true)")
    return None


def review(inputs: PlanInputs, facts: Facts, instance: dict[str, Any],
           plan: InstancePlan) -> InstancePlan:
    """A planned replacement, checked before anything changes: its strategy's own checks
    (which may move it to another strategy, or skip it), then the keys its volumes are
    under and the room for the engine's tags; skipped with the check that failed and its
    fix."""
    if plan.action != PlanAction.REPLACE:
        return plan
    ctx = inputs.ctx
    plan = inputs.strategies[plan.strategy].preflight(inputs, facts, instance, plan)
    if plan.action != PlanAction.REPLACE:
        return plan
    strategy = inputs.strategies[plan.strategy]
    blocker = (key_blocker(facts, instance, ctx.settings.kms_key_arns, strategy)
               or tag_room_blocker(facts, instance, strategy, plan.shape))
    if blocker:
        return inputs.skip(plan.instance_id, f"preflight: {blocker}", Code.PREFLIGHT_FAILED)
    if plan.shape is not None:
        plan = replace(plan, shape=complete(plan.shape, instance, facts, ctx.goal.id))
    return plan


def interfaces_dropped(instance: Mapping[str, Any]) -> str | None:
    """What a relaunch would drop of the instance's network interfaces (it recreates the
    primary one with the primary private IP only); None when nothing."""
    interfaces = instance.get("NetworkInterfaces", [])
    if len(interfaces) > 1:
        others = sorted(n.get("NetworkInterfaceId", "") for n in interfaces
                        if n.get("Attachment", {}).get("DeviceIndex") != 0)
        return (f"{len(interfaces)} network interfaces: {', '.join(others)} would stay "
                "behind, detached")
    if interfaces and len(interfaces[0].get("PrivateIpAddresses", [])) > 1:
        return "secondary private IP addresses would be lost"
    return None


def complete(shape: InstanceShape, instance: Mapping[str, Any], facts: Facts,
             image_id: str | None) -> InstanceShape:
    """The shape plus what needs the estate's facts: the new image's root size (the launch
    asks for at least that), CPU options that differ from the type's defaults, and no
    public IP when the old instance has none in a subnet that would assign one."""
    image = facts.images.get(image_id or "") or {}
    root: Mapping[str, Any] = next((m.get("Ebs", {}) for m in image.get("BlockDeviceMappings", [])
                                    if m.get("DeviceName") == image.get("RootDeviceName")),
                                   {})
    cpu = dict(instance.get("CpuOptions") or {})
    vcpu = (facts.types.get(instance["InstanceType"]) or {}).get("VCpuInfo", {})
    carried = {k: cpu[k] for k, default in (("CoreCount", vcpu.get("DefaultCores")),
                                            ("ThreadsPerCore", vcpu.get("DefaultThreadsPerCore")))
               if k in cpu and default is not None and cpu[k] != default}
    if carried:   # both or neither: AWS wants the pair
        carried = {"CoreCount": cpu.get("CoreCount", vcpu.get("DefaultCores")),
                   "ThreadsPerCore": cpu.get("ThreadsPerCore",
                                             vcpu.get("DefaultThreadsPerCore"))}
    if cpu.get("AmdSevSnp") == "enabled":
        carried["AmdSevSnp"] = "enabled"
    subnet = facts.subnets.get(instance.get("SubnetId") or "") or {}
    private = not instance.get("PublicIpAddress") and bool(subnet.get("MapPublicIpOnLaunch"))
    return replace(shape, image_root_size=root.get("VolumeSize"),
                   cpu_options=tuple(sorted(carried.items())),
                   public_ip_on_launch=False if private else None)
