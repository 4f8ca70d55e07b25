"""An instance's shape: everything its replacement must inherit, captured before any change.

Captured from ``DescribeInstances`` plus what it does not show (user data,
termination and stop protection, shutdown behaviour, CPU credits: one
``GetLaunchTemplateData``; the root volume: one batched ``DescribeVolumes``), so the replacement
gets the same type, network placement, security groups, key pair, IAM instance
profile, user data, tags, EBS optimisation, monitoring, metadata options,
placement and tenancy (host, affinity, partition, host resource group), credit
specification, source/dest check, capacity reservation specification, maintenance
(auto-recovery), private DNS name and enclave options. ``preflight.complete`` adds
what needs the estate's facts: CPU options that differ from the type's defaults,
and the new image's root snapshot size (the root is made max(old, image): AWS
refuses a root smaller than the image's snapshot, and the request must be the
same whenever it is rebuilt, for the same ClientToken). Data volumes are not
launched with it: the very same volumes are moved across.

Not carried (documented limits): Elastic GPUs/inference accelerators, license
specifications, and the instance's network interfaces beyond the primary one (such
instances are not relaunched: see ``preflight.py``).

``relaunch_blocker`` says why an instance cannot be relaunched without losing
something (instance-store data, a second network interface, ...).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..aws import describe, error_code, tag_map
from ..tags import PROGRESS_TAGS

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client
    from types_boto3_ec2.literals import InstanceAttributeNameType

# Fields of MetadataOptions that RunInstances accepts (State is AWS's own).
METADATA_FIELDS = ("HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "HttpProtocolIpv6",
                   "InstanceMetadataTags")
BURSTABLE_FAMILIES = ("t2", "t3", "t3a", "t4g")


@dataclass(frozen=True)
class DataVolume:
    """A non-root EBS volume and where it sits on its instance."""

    volume_id: str
    device: str
    delete_on_termination: bool


@dataclass(frozen=True)
class RootVolume:
    """The old root volume's size and kind: the new one is made at least as big."""

    size: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    delete_on_termination: bool = True


@dataclass(frozen=True)
class InstanceShape:
    """What a relaunch must carry over from the old instance, captured before any change
    (see the module docstring); ``run_instances_kwargs`` turns it into the launch."""

    instance_id: str
    image_id: str
    instance_type: str
    subnet_id: str | None
    security_group_ids: tuple[str, ...]
    key_name: str | None
    iam_instance_profile_arn: str | None
    user_data: bytes | None
    tags: tuple[tuple[str, str], ...]
    ebs_optimized: bool
    monitoring: bool
    metadata_options: tuple[tuple[str, Any], ...]
    availability_zone: str | None
    tenancy: str | None
    placement_group: str | None
    credit_specification: str | None
    source_dest_check: bool
    disable_api_termination: bool
    disable_api_stop: bool
    shutdown_behavior: str | None
    hibernation: bool
    private_ip: str | None
    ipv6_address_count: int
    root_device_name: str
    root_volume: RootVolume
    data_volumes: tuple[DataVolume, ...] = field(default=())
    # RunInstances fields copied as DescribeInstances shows them (capacity reservation,
    # maintenance, private DNS name and enclave options) and placement beyond the zone
    # (host, affinity, partition, host resource group): as (field, value) pairs.
    launch_options: tuple[tuple[str, Any], ...] = field(default=())
    placement_options: tuple[tuple[str, Any], ...] = field(default=())
    # Completed by preflight.complete: the new image's root snapshot size (the root is made
    # max(old, that), since AWS refuses a smaller one) and CPU options differing from the
    # instance type's defaults.
    image_root_size: int | None = None
    cpu_options: tuple[tuple[str, Any], ...] = field(default=())
    # False when the old instance has no public IP but its subnet assigns one at launch:
    # the new one is launched without (a private server stays private).
    public_ip_on_launch: bool | None = None

    def run_instances_kwargs(self, image_id: str, root_device_name: str, token: str,
                             extra_tags: dict[str, str], data_devices: list[str],
                             preserve_private_ip: bool = False) -> dict[str, Any]:
        """The RunInstances request that relaunches this shape on ``image_id``.

        ``data_devices`` are where the moved volumes go (from their tags, so a
        resumed invocation builds the very same request for the same ClientToken).
        """
        tags = [{"Key": k, "Value": v} for k, v in self.tags]
        tags += [{"Key": k, "Value": v} for k, v in sorted(extra_tags.items())]
        kwargs: dict[str, Any] = {
            "ImageId": image_id, "InstanceType": self.instance_type, "MinCount": 1,
            "MaxCount": 1, "ClientToken": token, "EbsOptimized": self.ebs_optimized,
            "Monitoring": {"Enabled": self.monitoring},
            "DisableApiTermination": self.disable_api_termination,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
            "BlockDeviceMappings": self._block_device_mappings(root_device_name, data_devices),
        }
        network: dict[str, Any] = {"SubnetId": self.subnet_id,
                                   "SecurityGroupIds": list(self.security_group_ids)}
        if preserve_private_ip and self.private_ip:
            network["PrivateIpAddress"] = self.private_ip
        if self.ipv6_address_count:
            network["Ipv6AddressCount"] = self.ipv6_address_count
        if self.public_ip_on_launch is False:   # the subnet would give it one: say no
            nic = {_NETWORK_FIELDS[k]: v for k, v in network.items() if v}
            kwargs["NetworkInterfaces"] = [{"DeviceIndex": 0, **nic,
                                            "AssociatePublicIpAddress": False}]
        else:
            kwargs.update({k: v for k, v in network.items() if v})
        if self.key_name:
            kwargs["KeyName"] = self.key_name
        if self.iam_instance_profile_arn:
            kwargs["IamInstanceProfile"] = {"Arn": self.iam_instance_profile_arn}
        if self.user_data:
            kwargs["UserData"] = self.user_data
        if self.metadata_options:
            kwargs["MetadataOptions"] = dict(self.metadata_options)
        placement = {"AvailabilityZone": self.availability_zone, "Tenancy": self.tenancy,
                     "GroupName": self.placement_group, **dict(self.placement_options)}
        if placement.get("HostResourceGroupArn"):   # AWS picks the host in the group
            placement.pop("HostId", None)
        if any(placement.values()):
            kwargs["Placement"] = {k: v for k, v in placement.items() if v}
        if self.credit_specification:
            kwargs["CreditSpecification"] = {"CpuCredits": self.credit_specification}
        if self.shutdown_behavior:
            kwargs["InstanceInitiatedShutdownBehavior"] = self.shutdown_behavior
        if self.disable_api_stop:
            kwargs["DisableApiStop"] = True
        if self.hibernation:
            kwargs["HibernationOptions"] = {"Configured": True}
        kwargs.update(dict(self.launch_options))
        if self.cpu_options:
            kwargs["CpuOptions"] = dict(self.cpu_options)
        return kwargs

    def _block_device_mappings(self, root_device_name: str, data_devices: list[str]
                               ) -> list[dict[str, Any]]:
        """The root volume as big as before; no image volume where a data volume goes."""
        root = self.root_volume
        size = max(root.size, self.image_root_size) if root.size and self.image_root_size \
            else root.size
        ebs = {"DeleteOnTermination": root.delete_on_termination, "VolumeSize": size,
               "VolumeType": root.volume_type, "Encrypted": root.encrypted,
               "KmsKeyId": root.kms_key_id}
        if root.volume_type in ("io1", "io2", "gp3"):
            ebs["Iops"] = root.iops
        if root.volume_type == "gp3":
            ebs["Throughput"] = root.throughput
        mappings = [{"DeviceName": root_device_name,
                     "Ebs": {k: v for k, v in ebs.items() if v is not None}}]
        mappings += [{"DeviceName": device, "NoDevice": ""} for device in data_devices]
        return mappings


def user_tags(tags: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The tags a replacement inherits: not AWS's (``aws:``), not the engine's progress."""
    return tuple(sorted((k, v) for k, v in tags.items()
                        if not k.lower().startswith("aws:") and k not in PROGRESS_TAGS))


def data_volumes(instance: dict[str, Any]) -> tuple[DataVolume, ...]:
    root = instance.get("RootDeviceName")
    return tuple(
        DataVolume(m["Ebs"]["VolumeId"], m["DeviceName"],
                   bool(m["Ebs"].get("DeleteOnTermination", False)))
        for m in instance.get("BlockDeviceMappings", [])
        if "Ebs" in m and m["DeviceName"] != root)


def _launch_options(instance: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """What RunInstances takes back as DescribeInstances shows it (only what is set)."""
    options: dict[str, Any] = {}
    reservation = instance.get("CapacityReservationSpecification") or {}
    if reservation.get("CapacityReservationTarget") or \
            reservation.get("CapacityReservationPreference") not in (None, "open"):
        options["CapacityReservationSpecification"] = {
            k: reservation[k] for k in ("CapacityReservationPreference",
                                        "CapacityReservationTarget") if reservation.get(k)}
    recovery = (instance.get("MaintenanceOptions") or {}).get("AutoRecovery")
    if recovery and recovery != "default":
        options["MaintenanceOptions"] = {"AutoRecovery": recovery}
    dns = instance.get("PrivateDnsNameOptions") or {}
    if dns:
        options["PrivateDnsNameOptions"] = {k: dns[k] for k in (
            "HostnameType", "EnableResourceNameDnsARecord", "EnableResourceNameDnsAAAARecord")
            if k in dns}
    if (instance.get("EnclaveOptions") or {}).get("Enabled"):
        options["EnclaveOptions"] = {"Enabled": True}
    return tuple(sorted(options.items()))


def _placement_options(placement: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, placement[k]) for k in ("Affinity", "HostId", "HostResourceGroupArn",
                                             "PartitionNumber") if placement.get(k))


def _configuration(ec2: EC2Client, instance: dict[str, Any]) -> dict[str, Any]:
    """What DescribeInstances does not show (user data, protection flags, shutdown
    behaviour, CPU credits), in one GetLaunchTemplateData: AWS has no batched form, and
    the alternative is one DescribeInstanceAttribute per attribute (four). AWS runs it
    through other reads the role may lack (Spot requests, elastic GPUs): refused, the
    attributes are read one by one instead."""
    try:
        return dict(ec2.get_launch_template_data(InstanceId=instance["InstanceId"])
                    .get("LaunchTemplateData", {}))
    except ClientError as error:
        if error_code(error) not in DENIED:
            raise
    return _attributes(ec2, instance)


DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException")


def _attributes(ec2: EC2Client, instance: dict[str, Any]) -> dict[str, Any]:
    """The fields of :func:`_configuration` from DescribeInstanceAttribute (one call per
    attribute) and DescribeInstanceCreditSpecifications."""
    iid = instance["InstanceId"]
    found: dict[str, Any] = {}
    names: tuple[InstanceAttributeNameType, ...] = (
        "userData", "disableApiTermination", "disableApiStop",
        "instanceInitiatedShutdownBehavior")
    for name in names:
        key = name[0].upper() + name[1:]
        value = ec2.describe_instance_attribute(InstanceId=iid, Attribute=name).get(key)
        found[key] = value.get("Value") if isinstance(value, dict) else value
    if instance["InstanceType"].split(".")[0] in BURSTABLE_FAMILIES:
        try:
            specs = ec2.describe_instance_credit_specifications(
                InstanceIds=[iid])["InstanceCreditSpecifications"]
        except ClientError:
            specs = []
        if specs:
            found["CreditSpecification"] = {"CpuCredits": specs[0]["CpuCredits"]}
    return found


def _root(instance: dict[str, Any]) -> dict[str, Any] | None:
    return next((m for m in instance.get("BlockDeviceMappings", [])
                 if m["DeviceName"] == instance.get("RootDeviceName") and "Ebs" in m), None)


def _root_volumes(ec2: EC2Client, instances: list[dict[str, Any]],
                  known: Mapping[str, Mapping[str, Any]]) -> dict[str, RootVolume]:
    """Instance ID -> its root volume (``known`` volumes, the others in one batched read)."""
    roots = {i["InstanceId"]: root for i in instances if (root := _root(i)) is not None}
    found = dict(known)
    found.update({v["VolumeId"]: v for v in describe(
        ec2, "describe_volumes", "Volumes", ids=[r["Ebs"]["VolumeId"] for r in roots.values()
                                                 if r["Ebs"]["VolumeId"] not in known],
        id_filter="volume-id")})
    result = {}
    for iid, root in roots.items():
        dot = bool(root["Ebs"].get("DeleteOnTermination", True))
        v = found.get(root["Ebs"]["VolumeId"])
        result[iid] = RootVolume(delete_on_termination=dot) if v is None else RootVolume(
            size=v.get("Size"), volume_type=v.get("VolumeType"), iops=v.get("Iops"),
            throughput=v.get("Throughput"), encrypted=v.get("Encrypted"),
            kms_key_id=v.get("KmsKeyId"), delete_on_termination=dot)
    return result


def capture(ec2: EC2Client, instance: dict[str, Any],
            known_volumes: Mapping[str, Mapping[str, Any]] | None = None) -> InstanceShape:
    """The whole shape of ``instance`` (a DescribeInstances item); reads only."""
    return capture_all(ec2, [instance], known_volumes)[instance["InstanceId"]]


def capture_all(ec2: EC2Client, instances: list[dict[str, Any]],
                known_volumes: Mapping[str, Mapping[str, Any]] | None = None
                ) -> dict[str, InstanceShape]:
    """The shapes of ``instances``: the root volumes in one batched read (unless already
    read: ``known_volumes``), the rest of the configuration one read per instance
    (:func:`_configuration`)."""
    roots = _root_volumes(ec2, instances, known_volumes or {})
    return {i["InstanceId"]: _capture(i, _configuration(ec2, i),
                                      roots.get(i["InstanceId"], RootVolume()))
            for i in instances}


def _capture(instance: dict[str, Any], config: dict[str, Any], root_volume: RootVolume
             ) -> InstanceShape:
    instance_id = instance["InstanceId"]
    user_data = config.get("UserData")
    burstable = instance["InstanceType"].split(".")[0] in BURSTABLE_FAMILIES
    credit = (config.get("CreditSpecification") or {}).get("CpuCredits") if burstable else None
    placement = instance.get("Placement", {})
    interfaces = instance.get("NetworkInterfaces", [])
    primary = next((n for n in interfaces if n.get("Attachment", {}).get("DeviceIndex") == 0),
                   interfaces[0] if interfaces else {})
    metadata = instance.get("MetadataOptions", {})
    return InstanceShape(
        instance_id=instance_id,
        image_id=instance["ImageId"],
        instance_type=instance["InstanceType"],
        subnet_id=instance.get("SubnetId"),
        security_group_ids=tuple(g["GroupId"] for g in instance.get("SecurityGroups", [])),
        key_name=instance.get("KeyName"),
        iam_instance_profile_arn=(instance.get("IamInstanceProfile") or {}).get("Arn"),
        user_data=base64.b64decode(user_data) if user_data else None,
        tags=user_tags(tag_map(instance.get("Tags"))),
        ebs_optimized=bool(instance.get("EbsOptimized", False)),
        monitoring=instance.get("Monitoring", {}).get("State") in ("enabled", "pending"),
        metadata_options=tuple((k, metadata[k]) for k in METADATA_FIELDS if k in metadata),
        availability_zone=placement.get("AvailabilityZone"),
        tenancy=placement.get("Tenancy"),
        placement_group=placement.get("GroupName") or None,
        credit_specification=credit,
        source_dest_check=bool(instance.get("SourceDestCheck", True)),
        disable_api_termination=bool(config.get("DisableApiTermination", False)),
        disable_api_stop=bool(config.get("DisableApiStop", False)),
        shutdown_behavior=config.get("InstanceInitiatedShutdownBehavior"),
        hibernation=bool(instance.get("HibernationOptions", {}).get("Configured", False)),
        private_ip=primary.get("PrivateIpAddress") or instance.get("PrivateIpAddress"),
        ipv6_address_count=len(primary.get("Ipv6Addresses", [])),
        root_device_name=instance.get("RootDeviceName", ""),
        root_volume=root_volume,
        data_volumes=data_volumes(instance),
        launch_options=_launch_options(instance),
        placement_options=_placement_options(placement),
    )


def relaunch_blocker(instance: dict[str, Any], shape: InstanceShape, has_instance_store: bool,
                     keep_old_instance: bool, new_root_device: str) -> str | None:
    """Why relaunching would lose something or cannot work; None when it is safe."""
    if instance.get("RootDeviceType") == "instance-store":
        return "instance-store root device: it cannot be stopped without losing its data"
    if has_instance_store:
        return (f"instance type {shape.instance_type} has instance-store volumes, whose data "
                "would be lost when it stops")
    if instance.get("InstanceLifecycle"):
        return (f"{instance['InstanceLifecycle']} instance: only On-Demand instances are "
                "replaced")
    interfaces = instance.get("NetworkInterfaces", [])
    if len(interfaces) > 1:
        return (f"{len(interfaces)} network interfaces: only the primary one would be "
                "recreated")
    if interfaces and len(interfaces[0].get("PrivateIpAddresses", [])) > 1:
        return "secondary private IP addresses would be lost"
    if shape.disable_api_stop:
        return "stop protection (DisableApiStop) is enabled"
    if shape.disable_api_termination and not keep_old_instance:
        return ("termination protection (DisableApiTermination) is enabled; set "
                "keep_old_instance to replace it and keep the old one stopped")
    if any(v.device == new_root_device for v in shape.data_volumes):
        return f"a data volume sits at {new_root_device}, the new image's root device"
    return None


# Top-level RunInstances fields a launch template keeps in its network interface instead.
_NETWORK_FIELDS = {"SubnetId": "SubnetId", "SecurityGroupIds": "Groups",
                   "PrivateIpAddress": "PrivateIpAddress", "Ipv6AddressCount": "Ipv6AddressCount"}


def to_template_data(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A RunInstances request as LaunchTemplateData (to keep a shape while no instance has it)."""
    data = {k: v for k, v in kwargs.items()
            if k not in (*_NETWORK_FIELDS, "MinCount", "MaxCount", "ClientToken", "UserData")}
    nic = {"DeviceIndex": 0, **{lt: kwargs[rk] for rk, lt in _NETWORK_FIELDS.items()
                                if rk in kwargs}}
    data["NetworkInterfaces"] = kwargs.get("NetworkInterfaces") or [nic]
    if kwargs.get("UserData"):
        data["UserData"] = base64.b64encode(kwargs["UserData"]).decode()
    return data


def from_template_data(data: dict[str, Any], token: str) -> dict[str, Any]:
    """The RunInstances request that ``to_template_data`` kept (inverse of it)."""
    kwargs = {k: v for k, v in data.items() if k not in ("NetworkInterfaces", "UserData")}
    nic = (data.get("NetworkInterfaces") or [{}])[0]
    if "AssociatePublicIpAddress" in nic:   # only expressible on the interface
        kwargs["NetworkInterfaces"] = [dict(nic)]
    else:
        kwargs.update({rk: nic[lt] for rk, lt in _NETWORK_FIELDS.items() if lt in nic})
    if data.get("UserData"):
        kwargs["UserData"] = base64.b64decode(data["UserData"])
    kwargs.update(MinCount=1, MaxCount=1, ClientToken=token)
    return kwargs
