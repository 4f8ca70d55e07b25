"""The demo's estate, built from a stack's settings on the embedded AWS.

Every kind of resource the engine must tell apart is present: Auto Scaling
groups and standalone instances in scope, excluded by list, excluded by tag and
out of scope, plus a standalone instance already on the new image. Everything
else runs the "old" image, which the stack's parameter names.

The groups named in the stack's ``asgConfigurations`` and ``excludedAsgs`` exist
under those names, so per-group settings show in the run. Instance IDs only
exist once the sandbox launches the instances, so the estate's excluded-by-list
resources go into the stack's exclusions parameter when it has one (as an
operator would do), otherwise into the function's ``EXCLUDED_INSTANCES`` /
``EXCLUDED_ASGS``.

The shape is reproducible: ``seed`` drives instance types, volume counts and
sizes, and moto's own ID generator.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import boto3

from components.stack_settings import StackSettings
from handler.settings import DEFAULT_KEY, RefreshSettings, Settings
from handler.tags import EXCLUDE, PARAMETER, STRATEGY

IN_SCOPE = "in scope"
EXCLUDED_BY_LIST = "excluded by list"
EXCLUDED_BY_TAG = "excluded by tag"
OUT_OF_SCOPE = "out of scope"
CURRENT = "already current"

# The parameter that the out-of-scope resources follow (another team's fleet).
OTHER_PARAMETER = "/ami/linux/other-team"
# Groups that exist in every estate besides the ones the stack's configuration names.
DEFAULT_GROUPS = ("web", "api")
# An in-scope group whose launch template reads the parameter (ImageId resolve:ssm:<name>),
# as the README recommends: the function only refreshes it, without a new template version.
RESOLVING_GROUP = "worker"
SSM_ALIAS = "resolve:ssm:"
EXCLUDED_BY_LIST_GROUP = "legacy-reports"   # used when the stack lists no excluded group
EXCLUDED_BY_TAG_GROUP = "batch-pinned"
OUT_OF_SCOPE_GROUP = "other-team"
INSTANCE_TYPES = ("t3.small", "t3.medium", "m6i.large", "c6i.large")
DATA_DEVICES = ("/dev/sdf", "/dev/sdg", "/dev/sdh")
VOLUME_SIZES = (20, 50, 100)
AVAILABILITY_ZONES = ("a", "b", "c")
MAX_FLEET_SIZE = 200
STOCK_IMAGE = "amzn2-ami-hvm-*-x86_64-gp2"   # the golden images are copies of one of these


@dataclass(frozen=True)
class Group:
    name: str
    role: str
    launch_template_id: str
    launch_template_version: str      # as the group refers to it: 1, $Latest or $Default
    instance_type: str
    capacity: int
    refresh: RefreshSettings           # what the function's settings give this group
    configured: bool                   # has its own entry in asgConfigurations


@dataclass(frozen=True)
class DataVolume:
    id: str
    device: str
    size: int


@dataclass(frozen=True)
class Standalone:
    id: str
    name: str
    role: str
    instance_type: str
    image_id: str
    strategy: str                      # relaunch | replace-root-volume
    volumes: tuple[DataVolume, ...]


@dataclass(frozen=True)
class Estate:
    stack: StackSettings               # as deployed: with the estate's exclusion additions
    environment: Mapping[str, str]     # the function's environment variables
    old_image: str
    new_image: str
    groups: tuple[Group, ...]
    instances: tuple[Standalone, ...]
    exclusions_source: str             # where the excluded-by-list resources were listed

    def groups_in(self, *roles: str) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.role in roles)

    def instances_in(self, *roles: str) -> tuple[Standalone, ...]:
        return tuple(i for i in self.instances if i.role in roles)

    def group(self, name: str) -> Group:
        return next(g for g in self.groups if g.name == name)

    def instance(self, instance_id: str) -> Standalone:
        return next(i for i in self.instances if i.id == instance_id)


def refresh_label(refresh: RefreshSettings) -> str:
    """A short description of a group's refresh settings for the table."""
    prefs = refresh.preferences
    parts: list[str] = [refresh.strategy]
    if "MinHealthyPercentage" in prefs or "MaxHealthyPercentage" in prefs:
        parts.append(f"healthy {prefs.get('MinHealthyPercentage', 90)}-"
                     f"{prefs.get('MaxHealthyPercentage', 100)}%")
    if "InstanceWarmup" in prefs:
        parts.append(f"warmup {prefs['InstanceWarmup']}s")
    if prefs.get("CheckpointPercentages"):
        parts.append("checkpoints " + "/".join(map(str, prefs["CheckpointPercentages"])))
    parts.append(f"if refreshing: {refresh.on_refresh_in_progress}")
    return ", ".join(parts)


class _Builder:
    def __init__(self, stack: StackSettings, size: int, seed: int) -> None:
        self.stack = stack
        self.size = size
        self.rng = random.Random(seed)
        self.ec2 = boto3.client("ec2", region_name=stack.region)
        self.autoscaling = boto3.client("autoscaling", region_name=stack.region)
        self.ssm = boto3.client("ssm", region_name=stack.region)

    # ------------------------------------------------------------------ images
    def images(self) -> tuple[str, str]:
        """Two images copied from one stock x86_64 Linux image: same architecture."""
        filters = [{"Name": "architecture", "Values": ["x86_64"]},
                   {"Name": "state", "Values": ["available"]}]
        images = self.ec2.describe_images(   # narrowed by name: moto holds ~1300 stock images
            Owners=["amazon"], Filters=[*filters, {"Name": "name", "Values": [STOCK_IMAGE]}]
        )["Images"] or self.ec2.describe_images(Owners=["amazon"], Filters=filters)["Images"]
        stock = sorted((i for i in images if not i.get("Platform")),
                       key=lambda i: i["ImageId"])[0]
        ids = []
        for label in ("2026.10", "2026.11"):
            ids.append(self.ec2.copy_image(SourceImageId=stock["ImageId"],
                                           SourceRegion=self.stack.region,
                                           Name=f"golden-linux-{label}",
                                           Description=f"golden Linux image {label}")["ImageId"])
        return ids[0], ids[1]

    def zone(self) -> str:
        return self.stack.region + self.rng.choice(AVAILABILITY_ZONES)

    # ------------------------------------------------------------------ groups
    def group(self, name: str, role: str, image: str, capacity: int, version: str,
              tags: dict[str, str]) -> tuple[str, str, str]:
        instance_type = self.rng.choice(INSTANCE_TYPES)
        template = self.ec2.create_launch_template(
            LaunchTemplateName=f"{name}-template",
            LaunchTemplateData={"ImageId": image, "InstanceType": instance_type},
            TagSpecifications=[{"ResourceType": "launch-template",
                                "Tags": [{"Key": k, "Value": v} for k, v in
                                         {"Name": f"{name}-template", **tags}.items()]}],
        )["LaunchTemplate"]
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": version},
            MinSize=min(1, capacity), MaxSize=max(2, 2 * capacity), DesiredCapacity=capacity,
            AvailabilityZones=[self.zone()],
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True}
                  for k, v in {"Name": name, **tags}.items()],
        )
        return template["LaunchTemplateId"], instance_type, role

    # ------------------------------------------------------------------ instances
    def instance(self, name: str, image: str, tags: dict[str, str]
                 ) -> tuple[str, str, tuple[DataVolume, ...]]:
        instance_type = self.rng.choice(INSTANCE_TYPES)
        zone = self.zone()
        instance = self.ec2.run_instances(
            ImageId=image, InstanceType=instance_type, MinCount=1, MaxCount=1,
            Placement={"AvailabilityZone": zone},
            # Private, as servers are: an auto-assigned public IP would make the engine
            # replace the root volume in place rather than relaunch (it would change).
            NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}],
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v}
                                         for k, v in {"Name": name, **tags}.items()]}],
        )["Instances"][0]
        volumes = []
        for index in range(self.rng.randint(1, 2)):
            size = self.rng.choice(VOLUME_SIZES)
            volume = self.ec2.create_volume(
                AvailabilityZone=zone, Size=size, VolumeType="gp3",
                TagSpecifications=[{"ResourceType": "volume", "Tags": [
                    {"Key": "Name", "Value": f"{name}-data-{index + 1}"}]}])
            self.ec2.attach_volume(VolumeId=volume["VolumeId"],
                                   InstanceId=instance["InstanceId"],
                                   Device=DATA_DEVICES[index])
            volumes.append(DataVolume(volume["VolumeId"], DATA_DEVICES[index], size))
        return instance["InstanceId"], instance_type, tuple(volumes)


def build_estate(stack: StackSettings, size: int = 2, seed: int = 0) -> Estate:
    """Build the estate on the embedded AWS (call inside ``embedded_aws()``)."""
    if not 1 <= size <= MAX_FLEET_SIZE:
        raise ValueError(f"fleet size: expected 1 to {MAX_FLEET_SIZE}, got {size}")
    from moto.moto_api._internal import mock_random

    mock_random.seed(seed)
    builder = _Builder(stack, size, seed)
    old, new = builder.images()
    builder.ssm.put_parameter(Name=stack.parameter_name, Value=old, Type="String",
                              DataType="aws:ec2:image", Overwrite=True,
                              Description="the image the fleet follows")
    follows = {PARAMETER: stack.parameter_name}

    # Groups: roles first, so that an excluded name wins over a configuration entry.
    configured = [n for n in stack.asg_configurations if n != DEFAULT_KEY]
    listed = list(stack.excluded_asgs) or [EXCLUDED_BY_LIST_GROUP]
    plan: dict[str, tuple[str, dict[str, str]]] = {}
    for name in listed:
        plan[name] = (EXCLUDED_BY_LIST, follows)
    for name in (*DEFAULT_GROUPS, RESOLVING_GROUP, *configured):
        plan.setdefault(name, (IN_SCOPE, follows))
    plan.setdefault(EXCLUDED_BY_TAG_GROUP, (EXCLUDED_BY_TAG, {**follows, EXCLUDE: "true"}))
    if stack.scope == "tagged":
        plan.setdefault(OUT_OF_SCOPE_GROUP, (OUT_OF_SCOPE, {PARAMETER: OTHER_PARAMETER}))
    group_rows = []
    for index, (name, (role, tags)) in enumerate(plan.items()):
        capacity = size if role == IN_SCOPE else 1
        # In scope: a numbered version, as infrastructure code pins it (and as AutoRollback
        # requires); the others use the moving aliases.
        version = "1" if role == IN_SCOPE else ("$Latest" if index % 2 == 0 else "$Default")
        image = f"{SSM_ALIAS}{stack.parameter_name}" if name == RESOLVING_GROUP else old
        template_id, instance_type, _ = builder.group(name, role, image, capacity, version, tags)
        group_rows.append((name, role, template_id, version, instance_type, capacity))

    # Standalone instances.
    default_strategy = stack.standalone_configuration.get("strategy", "relaunch")
    other_strategy = "replace-root-volume" if default_strategy == "relaunch" else "relaunch"
    specs: list[tuple[str, str, str, dict[str, str], str]] = []
    for index in range(size):
        strategy = other_strategy if size >= 2 and index == size - 1 else default_strategy
        tags = dict(follows)
        if strategy != default_strategy:
            tags[STRATEGY] = strategy
        specs.append((f"db-{index + 1}", IN_SCOPE, old, tags, strategy))
    specs.append(("ci-runner", EXCLUDED_BY_LIST, old, follows, default_strategy))
    specs.append(("license-server", EXCLUDED_BY_TAG, old, {**follows, EXCLUDE: "true"},
                  default_strategy))
    if stack.scope == "tagged":
        specs.append(("other-team-box", OUT_OF_SCOPE, old, {PARAMETER: OTHER_PARAMETER},
                      default_strategy))
    specs.append(("bastion", CURRENT, new, follows, default_strategy))
    instances = []
    for name, role, image, tags, strategy in specs:
        instance_id, instance_type, volumes = builder.instance(name, image, tags)
        instances.append(Standalone(instance_id, name, role, instance_type, image, strategy,
                                    volumes))

    # The excluded-by-list resources, where this stack keeps its exclusions.
    listed_instances = [i.id for i in instances if i.role == EXCLUDED_BY_LIST]
    extra_groups = [] if stack.excluded_asgs else [EXCLUDED_BY_LIST_GROUP]
    if stack.exclusions_parameter_name:
        builder.ssm.put_parameter(
            Name=stack.exclusions_parameter_name, Type="String", Overwrite=True,
            Value=json.dumps({"instances": listed_instances, "asgs": extra_groups}))
        deployed = stack
        source = f"exclusions parameter {stack.exclusions_parameter_name}"
    else:
        deployed = dataclasses.replace(
            stack,
            excluded_instances=tuple(sorted({*stack.excluded_instances, *listed_instances})),
            excluded_asgs=tuple(sorted({*stack.excluded_asgs, *extra_groups})))
        source = "EXCLUDED_INSTANCES / EXCLUDED_ASGS"
    environment = deployed.environment()
    settings = Settings.from_env(environment)
    groups = tuple(
        Group(name, role, template_id, version, instance_type, capacity,
              settings.asg_configurations.for_group(name), name in stack.asg_configurations)
        for name, role, template_id, version, instance_type, capacity in group_rows)
    return Estate(deployed, MappingProxyType(environment), old, new, groups, tuple(instances),
                  source)
