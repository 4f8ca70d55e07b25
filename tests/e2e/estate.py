"""Reads of the estate straight from boto3, for the end-to-end tests' assertions.

Deliberately independent of ``sandbox.convergence``: the tests check the demo's
verdict against what AWS (the embedded one) says, not against itself.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import boto3
from rich.console import Console

from sandbox import embedded_aws
from sandbox.demo import DemoOptions, DemoResult, run_demo

REGION = "us-east-1"


@contextlib.contextmanager
def demo_run(report_dir: Path, **options) -> Iterator[tuple[object, DemoResult]]:
    """Run the demo in process; the embedded AWS stays open for the assertions."""
    with embedded_aws() as aws:
        result = run_demo(DemoOptions(json_path=report_dir / "report.json", **options), aws,
                          Console(file=io.StringIO(), width=150))
        yield aws, result


def ec2():
    return boto3.client("ec2", region_name=REGION)


def autoscaling():
    return boto3.client("autoscaling", region_name=REGION)


def instance(instance_id: str) -> dict:
    return ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def all_instances() -> list[dict]:
    return [i for page in ec2().get_paginator("describe_instances").paginate()
            for r in page["Reservations"] for i in r["Instances"]]


def group(name: str) -> dict:
    return autoscaling().describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def group_members(name: str) -> list[str]:
    return sorted(i["InstanceId"] for i in group(name)["Instances"])


def refreshes(name: str) -> list[dict]:
    return autoscaling().describe_instance_refreshes(
        AutoScalingGroupName=name)["InstanceRefreshes"]


def template_versions(template_id: str) -> list[int]:
    return sorted(v["VersionNumber"] for v in ec2().describe_launch_template_versions(
        LaunchTemplateId=template_id)["LaunchTemplateVersions"])


def group_template_image(name: str) -> str:
    spec = group(name)["LaunchTemplate"]
    version = ec2().describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"],
        Versions=[spec["Version"]])["LaunchTemplateVersions"][0]
    return version["LaunchTemplateData"]["ImageId"]


def volume_attachments(volume_ids: list[str]) -> dict[str, tuple[str, str] | None]:
    """Volume ID -> (instance ID, device) where attached, None when not."""
    out: dict[str, tuple[str, str] | None] = {}
    for volume in ec2().describe_volumes(VolumeIds=volume_ids)["Volumes"]:
        attached = [a for a in volume["Attachments"] if a["State"] == "attached"]
        out[volume["VolumeId"]] = ((attached[0]["InstanceId"], attached[0]["Device"])
                                   if attached else None)
    return out


def holder(standalone) -> str:
    """The one instance holding all of ``standalone``'s data volumes at their devices."""
    attachments = volume_attachments([v.id for v in standalone.volumes])
    expected = {v.id: v.device for v in standalone.volumes}
    holders = {a[0] for a in attachments.values() if a}
    assert all(attachments.values()), f"{standalone.name}: detached volume(s) {attachments}"
    assert len(holders) == 1, f"{standalone.name}: volumes split across {holders}"
    assert {v: a[1] for v, a in attachments.items() if a} == expected
    return holders.pop()
