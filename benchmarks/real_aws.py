"""Fleets on the model of real AWS: calls by operation against the lower bound, projected
wall time and invocations, and what throttling does.

Each estate is built on a fresh embedded AWS with plain boto3 calls (not counted), then
the function runs as Lambda runs it (``sandbox.LambdaFunction``: 15-minute timeout,
continuations delivered as they are queued) until nothing is queued. Only the
function's calls are counted and timed; emulated time is what the model projects.

The estates are the scale targets': all in scope, literal-image launch templates (one
instance per group), one data volume per standalone instance.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3

from sandbox import LambdaFunction, embedded_aws
from sandbox.lambda_invoke import STATE_KEY as QUEUE

from .aws_model import (
    AUTOSCALING_BUCKET,
    DEFAULT_LATENCY,
    Bucket,
    Latency,
    ceil_div,
    modelled,
    rate_floor,
)

PARAMETER = "/ami/linux/bench"
SCOPE_TAG = "ami-upgrade:parameter"     # the contract's scope tag
STOCK_IMAGE = "ami-1e749f67"            # an x86_64 HVM image moto ships
TIMEOUT = 900.0
ZONE = "us-east-1a"
MAX_EMULATED_SECONDS = 24 * 3600
LOGGER = "ami-upgrade"                  # the function's logger (handler/log.py)
# Seconds a new instance reports its status checks "initializing" before "ok" (moto: none).
# An assumption (AWS documents no figure); configurable with --boot-seconds.
BOOT_SECONDS = 90.0


def bound_calls(groups: int, instances: int, volumes: int = 1, alias: bool = False
                ) -> dict[str, collections.Counter]:
    """The lower bound, by service and operation: describes at their largest page, two
    calls per group (a version and its refresh: no refresh read, StartInstanceRefresh
    answers whether one runs), and per standalone instance one stop, launch and
    terminate plus a detach and an attach per volume. ``alias``: the groups' templates
    resolve the parameter, so no version is written.

    Reads: GetParameter, DescribeImages, DescribeInstances (1,000 a page); for groups
    DescribeAutoScalingGroups (100 a page), DescribeLaunchTemplates and
    DescribeLaunchTemplateVersions (200 a page).
    """
    ec2 = collections.Counter({"DescribeImages": 1,
                               "DescribeInstances": max(1, ceil_div(groups + instances, 1000))})
    autoscaling: collections.Counter = collections.Counter()
    if groups:
        ec2.update({"DescribeLaunchTemplates": ceil_div(groups, 200),
                    "DescribeLaunchTemplateVersions": ceil_div(groups, 200)})
        if not alias:
            ec2["CreateLaunchTemplateVersion"] = groups
        autoscaling.update({"DescribeAutoScalingGroups": ceil_div(groups, 100),
                            "StartInstanceRefresh": groups})
    if instances:
        ec2.update({"StopInstances": instances, "RunInstances": instances,
                    "TerminateInstances": instances, "DetachVolume": volumes * instances,
                    "AttachVolume": volumes * instances})
    return {"ssm": collections.Counter({"GetParameter": 1}), "ec2": ec2,
            "autoscaling": autoscaling}


def lower_bound(groups: int, instances: int, volumes: int = 1, alias: bool = False) -> int:
    """The bound in calls (``bound_calls``, summed)."""
    return sum(sum(c.values()) for c in bound_calls(groups, instances, volumes,
                                                    alias).values())


def bound_floor(groups: int, instances: int, autoscaling: Bucket = AUTOSCALING_BUCKET,
                volumes: int = 1, alias: bool = False) -> tuple[float, str]:
    """Seconds the rate limits alone need for the bound's calls, and the binding bucket:
    no engine, parallelism or latency converges the estate faster on real AWS."""
    calls = bound_calls(groups, instances, volumes, alias)
    return rate_floor(calls["ec2"], sum(calls["autoscaling"].values()), autoscaling)


@dataclass
class Run:
    groups: int
    instances: int
    latency: Latency | None          # None: no model (counts only)
    throttling: bool
    build_seconds: float = 0.0
    seconds: float = 0.0             # wall clock of the function's run on this machine
    calls: collections.Counter = field(default_factory=collections.Counter)
    throttled: int = 0
    emulated_seconds: float = 0.0    # projected wall time on real AWS
    invocations: int = 0
    longest_invocation: float = 0.0  # emulated seconds
    last_refresh_started: float | None = None
    failed: int = 0
    converged: bool = False
    floor: tuple[float, str] = (0.0, "-")   # the rate limits' floor for the calls it made
    autoscaling: Bucket = AUTOSCALING_BUCKET
    alias: bool = False              # the templates resolve the parameter (resolve:ssm:)
    statuses: list[str] = field(default_factory=list)     # each invocation's report status
    durations: list[float] = field(default_factory=list)  # each invocation's emulated seconds
    verified: int = 0                # groups whose newest refresh heads to the new image

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def bound(self) -> int:
        return lower_bound(self.groups, self.instances, alias=self.alias)

    @property
    def bound_floor(self) -> tuple[float, str]:
        return bound_floor(self.groups, self.instances, self.autoscaling, alias=self.alias)

    @property
    def label(self) -> str:
        parts = [f"{self.groups} ASGs" + (" (resolve:ssm:)" if self.alias else "")
                 if self.groups else "",
                 f"{self.instances} standalone" if self.instances else ""]
        return " + ".join(p for p in parts if p)


def _build(groups: int, instances: int, alias: bool = False, volumes: int = 1) -> str:
    ec2, autoscaling, ssm = (boto3.client(s) for s in ("ec2", "autoscaling", "ssm"))
    old, new = (ec2.copy_image(SourceImageId=STOCK_IMAGE, SourceRegion="us-east-1",
                               Name=f"golden-{label}")["ImageId"] for label in ("old", "new"))
    tag = [{"Key": SCOPE_TAG, "Value": PARAMETER}]
    if alias:   # the templates resolve the parameter: it must hold an image first
        ssm.put_parameter(Name=PARAMETER, Value=old, Type="String", DataType="aws:ec2:image")
    for n in range(groups):
        template = ec2.create_launch_template(
            LaunchTemplateName=f"g{n:05}", LaunchTemplateData={
                "ImageId": f"resolve:ssm:{PARAMETER}" if alias else old,
                "InstanceType": "t3.micro"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": tag}],
        )["LaunchTemplate"]["LaunchTemplateId"]
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=f"g{n:05}", MinSize=1, MaxSize=2, DesiredCapacity=1,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
            AvailabilityZones=[ZONE],
            Tags=[{**t, "PropagateAtLaunch": True} for t in tag])
    for n in range(instances):
        iid = ec2.run_instances(
            ImageId=old, InstanceType="t3.micro", MinCount=1, MaxCount=1,
            Placement={"AvailabilityZone": ZONE},
            # Private, as servers are: an auto-assigned public IP is a reference a relaunch
            # would drop, so the engine would replace the root volume in place instead.
            NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                *tag, {"Key": "Name", "Value": f"i{n:05}"}]}])["Instances"][0]["InstanceId"]
        for device in "fghijklmnop"[:volumes]:
            volume = ec2.create_volume(Size=10, AvailabilityZone=ZONE)["VolumeId"]
            ec2.attach_volume(VolumeId=volume, InstanceId=iid, Device=f"/dev/sd{device}")
    ssm.put_parameter(Name=PARAMETER, Value=new, Type="String", DataType="aws:ec2:image",
                      Overwrite=True)
    return new


def run(groups: int, instances: int, latency: Latency | None = DEFAULT_LATENCY,
        throttling: bool = True, parallelism: int | None = None,
        boot_seconds: float = 0.0, throttle_every: int | None = None,
        autoscaling: Bucket = AUTOSCALING_BUCKET, alias: bool = False, volumes: int = 1
        ) -> Run:
    """One estate converged by the function; ``latency=None`` counts calls only."""
    result = Run(groups, instances, latency, throttling, autoscaling=autoscaling, alias=alias)
    with embedded_aws() as aws, modelled(aws, latency or Latency(0.0, 0.0),
                                         throttling and latency is not None,
                                         throttle_every, autoscaling) as model:
        started = time.perf_counter()
        new_image = _build(groups, instances, alias, volumes)
        result.build_seconds = time.perf_counter() - started
        env = {"AMI_PARAMETER_NAME": PARAMETER}
        if parallelism:
            env["STANDALONE_CONFIGURATION"] = json.dumps({"parallelism": parallelism})
        fn = LambdaFunction(aws, env, timeout_seconds=TIMEOUT)
        if boot_seconds:
            aws.faults.status_checks("ok", after_seconds=boot_seconds)
        model.enabled = True
        begin = model.now()
        started = time.perf_counter()
        event: dict | None = {}
        with _quiet_function_log():
            while event is not None and model.now() - begin < MAX_EMULATED_SECONDS:
                at = model.now()
                result.statuses.append(fn.invoke(event)["status"])
                result.durations.append(model.now() - at)
                result.longest_invocation = max(result.durations)
                event = None
                pending = fn.pending()     # a continuation: Lambda delivers it at once
                if pending:
                    aws.state[QUEUE].remove(pending[0])
                    event = pending[0]["event"]
        model.enabled = False
        result.seconds = time.perf_counter() - started
        result.emulated_seconds = model.now() - begin
        result.invocations = len(fn.reports)
        result.calls = collections.Counter(model.calls)
        result.throttled = sum(model.throttled.values())
        result.floor = model.floor()
        if "StartInstanceRefresh" in model.last:
            result.last_refresh_started = model.last["StartInstanceRefresh"] - begin
        final, done = _outcomes(fn.reports)
        result.failed = sum(a == "failed" for a in final.values())
        result.converged = len(done) == groups + instances
        result.verified = verified_groups(new_image)
    return result


def verified_groups(image_id: str) -> int:
    """Groups whose newest refresh, read straight from the embedded AWS (not from the
    function's reports), heads to ``image_id``: its template version names the image,
    or resolves the parameter that holds it."""
    autoscaling, ec2 = boto3.client("autoscaling"), boto3.client("ec2")
    holds = boto3.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    images: dict[tuple[str, str], str] = {}
    count = 0
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            refreshes = autoscaling.describe_instance_refreshes(
                AutoScalingGroupName=group["AutoScalingGroupName"], MaxRecords=1)
            newest = refreshes["InstanceRefreshes"][:1]
            spec = (newest[0].get("DesiredConfiguration") or {}).get("LaunchTemplate", {}) \
                if newest else {}
            key = (spec.get("LaunchTemplateId", ""), str(spec.get("Version", "")))
            if not all(key):
                continue
            if key not in images:
                version = ec2.describe_launch_template_versions(
                    LaunchTemplateId=key[0], Versions=[key[1]])["LaunchTemplateVersions"][0]
                images[key] = version["LaunchTemplateData"].get("ImageId", "")
            target = images[key]
            count += (target == image_id or (target == f"resolve:ssm:{PARAMETER}"
                                             and holds == image_id))
    return count


@contextmanager
def _quiet_function_log() -> Iterator[None]:
    """The function's JSON log lines muted (thousands per large estate); the reports are
    read from what the handler returns."""
    logger = logging.getLogger(LOGGER)
    was, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = was


def _outcomes(reports: list[dict]) -> tuple[dict[str, str], set[str]]:
    """The last action per group / instance, and those whose refresh started or that
    were replaced in some invocation (a later one reports them as already current)."""
    final: dict[str, str] = {}
    done: set[str] = set()
    for report in reports:
        for section, goal in (("asgs", "refresh_started"), ("instances", "replaced")):
            for entry in report.get(section, []):
                key = f"{section}:{entry.get('name') or entry.get('id')}"
                final[key] = entry.get("action", "")
                if final[key] == goal:
                    done.add(key)
    return final, done
