"""Fixtures shared by the handler tests: the embedded AWS, images, an estate builder, the
function, and a record of the AWS calls the function makes.

Add fixtures for other suites below the existing ones; keep each builder small.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import boto3
import boto3.session
import pytest

from sandbox import LambdaFunction, embedded_aws

PARAMETER = "/ami/linux/test"
READ_PREFIXES = ("Describe", "Get", "List")


# ------------------------------------------------------------------- the embedded AWS


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


# ---------------------------------------------------------------------------- images

_SOURCES: dict[str, str] = {}


def _source_images() -> dict[str, str]:
    """One of moto's built-in AMIs per kind (looked up once per process)."""
    if not _SOURCES:
        ec2 = boto3.client("ec2")
        for kind, filters in {
            "x86_64": [{"Name": "architecture", "Values": ["x86_64"]}],
            "arm64": [{"Name": "architecture", "Values": ["arm64"]}],
            "windows": [{"Name": "platform", "Values": ["windows"]}],
        }.items():
            images = ec2.describe_images(Owners=["amazon"], Filters=filters)["Images"]
            if kind != "windows":
                images = [i for i in images if not i.get("Platform")]
            _SOURCES[kind] = sorted(i["ImageId"] for i in images)[0]
    return _SOURCES


@dataclass(frozen=True)
class Images:
    """Fresh AMIs for one test: three generations of a Linux x86_64 image, and others."""

    old: str
    new: str
    newer: str
    arm: str
    windows: str


def make_images(region: str, ec2=None) -> Images:
    ec2 = ec2 or boto3.client("ec2")
    sources = _source_images()

    def copy(kind: str, name: str) -> str:
        return ec2.copy_image(SourceImageId=sources[kind], SourceRegion=region,
                              Name=name)["ImageId"]

    return Images(old=copy("x86_64", "golden-1"), new=copy("x86_64", "golden-2"),
                  newer=copy("x86_64", "golden-3"), arm=copy("arm64", "golden-arm"),
                  windows=copy("windows", "golden-windows"))


@pytest.fixture
def ec2(aws):
    """The test's own EC2 client (clients are slow to build: one per test)."""
    return boto3.client("ec2")


@pytest.fixture
def images(aws, ec2) -> Images:
    return make_images(aws.region, ec2)


# ---------------------------------------------------------------------------- estate


class Estate:
    """Builds Auto Scaling groups on launch templates, and reads back what changed."""

    def __init__(self, images: Images, ec2=None) -> None:
        self.images = images
        self.ec2 = ec2 or boto3.client("ec2")
        self.autoscaling = boto3.client("autoscaling")
        self.ssm = boto3.client("ssm")

    # ------------------------------------------------------------ building
    def publish(self, ami_id: str, name: str = PARAMETER, *, image_type: bool = False) -> int:
        """Write ``ami_id`` to the parameter; returns the parameter version. ``image_type``:
        the parameter is (re)created with the recommended data type ``aws:ec2:image``
        (otherwise ``text``, which the report warns about)."""
        extra = {"DataType": "aws:ec2:image"} if image_type else {}
        return self.ssm.put_parameter(Name=name, Value=ami_id, Type="String",
                                      Overwrite=True, **extra)["Version"]

    def template(self, name: str, image_id: str | None = None, *,
                 parameter: str | None = PARAMETER, **data) -> str:
        """A launch template (version 1), tagged for ``parameter``; returns its ID."""
        data = {"ImageId": image_id or self.images.old, "InstanceType": "t3.micro", **data}
        tags = ([{"ResourceType": "launch-template",
                  "Tags": [{"Key": "ami-upgrade:parameter", "Value": parameter}]}]
                if parameter else [])
        return self.ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data,
                                               TagSpecifications=tags)["LaunchTemplate"][
            "LaunchTemplateId"]

    def add_version(self, template_id: str, source: int = 1, **data) -> int:
        return self.ec2.create_launch_template_version(
            LaunchTemplateId=template_id, SourceVersion=str(source),
            LaunchTemplateData=data)["LaunchTemplateVersion"]["VersionNumber"]

    def group(self, name: str, template_id: str | None = None, *, version: str | None = "1",
              image_id: str | None = None, capacity: int = 2, parameter: str | None = PARAMETER,
              tags: dict[str, str] | None = None, mixed: bool = False,
              launch_configuration: bool = False, grace: int = 60) -> str:
        """An Auto Scaling group of ``capacity`` instances, tagged for ``parameter``.

        Without ``template_id`` a template named after the group is made from
        ``image_id``; ``version=None`` leaves the version out ($Default, as AWS does).
        """
        all_tags = {**({"ami-upgrade:parameter": parameter} if parameter else {}), **(tags or {})}
        kwargs: dict = {
            "AutoScalingGroupName": name, "MinSize": 0, "MaxSize": capacity * 2 + 2,
            "DesiredCapacity": capacity, "AvailabilityZones": ["us-east-1a"],
            "HealthCheckGracePeriod": grace,
            "Tags": [{"Key": k, "Value": v, "PropagateAtLaunch": True}
                     for k, v in all_tags.items()]}
        if launch_configuration:
            self.autoscaling.create_launch_configuration(
                LaunchConfigurationName=f"{name}-lc", ImageId=image_id or self.images.old,
                InstanceType="t3.micro")
            kwargs["LaunchConfigurationName"] = f"{name}-lc"
        else:
            template_id = template_id or self.template(f"{name}-lt", image_id,
                                                       parameter=parameter)
            spec = {"LaunchTemplateId": template_id, **({"Version": version} if version else {})}
            if mixed:
                kwargs["MixedInstancesPolicy"] = {"LaunchTemplate": {
                    "LaunchTemplateSpecification": spec,
                    "Overrides": [{"InstanceType": "t3.small"}, {"InstanceType": "t3a.small"}]}}
            else:
                kwargs["LaunchTemplate"] = spec
        self.autoscaling.create_auto_scaling_group(**kwargs)
        return name

    # ------------------------------------------------------------ reading
    def describe(self, name: str) -> dict:
        return self.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    def template_id(self, name: str) -> str:
        group = self.describe(name)
        spec = group.get("LaunchTemplate") or group["MixedInstancesPolicy"]["LaunchTemplate"][
            "LaunchTemplateSpecification"]
        return spec["LaunchTemplateId"]

    def versions(self, template_id: str) -> dict[int, dict]:
        """LaunchTemplateData by version number."""
        pages = self.ec2.get_paginator("describe_launch_template_versions").paginate(
            LaunchTemplateId=template_id)
        return {v["VersionNumber"]: v["LaunchTemplateData"]
                for page in pages for v in page["LaunchTemplateVersions"]}

    def refreshes(self, name: str) -> list[dict]:
        """The group's instance refreshes, newest first."""
        return self.autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=name)["InstanceRefreshes"]

    def instance_images(self, name: str) -> dict[str, str]:
        ids = [i["InstanceId"] for i in self.describe(name)["Instances"]]
        if not ids:
            return {}
        reservations = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}


@pytest.fixture
def estate(aws, images, ec2) -> Estate:
    """An estate whose parameter holds ``images.old`` until the test publishes another."""
    built = Estate(images, ec2)
    built.publish(images.old)
    return built


# -------------------------------------------------------------------------- function


@pytest.fixture
def function(aws) -> Callable[..., LambdaFunction]:
    """``function(**env)``: the function, following PARAMETER, with extra env variables."""

    def make(timeout_seconds: float = 900, **env: str) -> LambdaFunction:
        return LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER, **env},
                              timeout_seconds=timeout_seconds)

    return make


# ------------------------------------------------------------------------- API calls


@dataclass
class ApiCalls:
    """The AWS calls made by clients from new boto3 sessions (the function's), in order."""

    calls: list[tuple[str, str, dict]] = field(default_factory=list)

    def record(self, params: dict, model, **_: object) -> None:
        self.calls.append((model.service_model.service_name, model.name, dict(params)))

    def count(self) -> dict[str, int]:
        """Calls by ``service:Operation``."""
        return dict(sorted(collections.Counter(f"{s}:{op}" for s, op, _ in self.calls).items()))

    def of(self, operation: str) -> list[dict]:
        """The parameters of each call of ``operation``."""
        return [params for _, op, params in self.calls if op == operation]

    def mutating(self) -> list[str]:
        return [op for _, op, _ in self.calls if not op.startswith(READ_PREFIXES)]

    def clear(self) -> None:
        self.calls.clear()


def record_calls(monkeypatch: pytest.MonkeyPatch) -> ApiCalls:
    """Records the calls of every boto3 session created from now (Clients.create makes one).

    A botocore ``before-parameter-build`` hook: it sees each call once, as sent by the
    caller (retries are not counted again). The test's own ``boto3.client`` calls use
    boto3's default session and are not recorded.
    """
    recorded = ApiCalls()
    base = boto3.session.Session

    class RecordingSession(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.events.register("before-parameter-build", recorded.record)

    monkeypatch.setattr(boto3.session, "Session", RecordingSession)
    return recorded


@pytest.fixture
def api_calls(monkeypatch) -> ApiCalls:
    return record_calls(monkeypatch)


@pytest.fixture
def one_at_a_time(monkeypatch) -> None:
    """Refreshes started one group at a time (``START_WORKERS = 1``): the plan's exact call
    order, which the tests of call order and crash points rely on."""
    from handler.asg import apply
    monkeypatch.setattr(apply, "START_WORKERS", 1)


@pytest.fixture
def no_sdk_retries(monkeypatch) -> None:
    """Past the SDK's retries at once (its back-off would sleep for real): an injected
    error reaches the engine as one that outlasted the retries."""
    import handler.aws

    monkeypatch.setitem(handler.aws.RETRY_CONFIG, "retries", {"mode": "standard",
                                                              "max_attempts": 1})


# ---------------------------------------------------------------- module-scoped use


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The builders above, for module-scoped fixtures (which cannot use function ones)."""
    return SimpleNamespace(make_images=make_images, Estate=Estate, record_calls=record_calls,
                           PARAMETER=PARAMETER)


# ---------------------------------------------------------------------------- the log


@pytest.fixture
def log_lines():
    """Every line the function logs, as it would reach CloudWatch Logs (raw JSON text)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("ami-upgrade")
    collect, level = Collect(), logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)


@pytest.fixture
def logged_events(log_lines):
    """``logged_events()``: every JSON line the function logged so far, parsed."""
    return lambda: [json.loads(line) for line in log_lines if line.startswith("{")]


# ------------------------------------------------------------------------ summaries


@dataclass(frozen=True)
class Summaries:
    """An SNS topic with a queue subscribed (raw delivery): what the function published."""

    topic_arn: str
    queue_url: str

    def bodies(self) -> list[str]:
        got = boto3.client("sqs").receive_message(QueueUrl=self.queue_url,
                                                  MaxNumberOfMessages=10)
        return [m["Body"] for m in got.get("Messages", [])]


@pytest.fixture
def summaries(aws) -> Summaries:
    topic = boto3.client("sns").create_topic(Name="ami-upgrade")["TopicArn"]
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="summaries")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                                  Attributes={"RawMessageDelivery": "true"})
    return Summaries(topic, url)
