"""Launch templates as Auto Scaling groups use them: which version, what it launches, a new one.

A group names its template by ID or name, with a version that may be ``$Latest`` or
``$Default``. The engine always resolves that to a number: a refresh toward
``$Latest``/``$Default`` cannot roll back, and re-replaces instances whenever a
version appears mid-refresh.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..aws import describe, error_code

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client

SSM_ALIAS = "resolve:ssm:"
LATEST, DEFAULT = "$Latest", "$Default"
VIA_LAUNCH_TEMPLATE, VIA_MIXED_INSTANCES_POLICY = "LaunchTemplate", "MixedInstancesPolicy"


class TemplateError(Exception):
    """A launch template (version) the engine needs cannot be read; the message says which."""


def json_object(text: str) -> dict[str, Any]:
    """A JSON object kept as canonical text in a frozen plan, as a fresh dict."""
    value: dict[str, Any] = json.loads(text)
    return value


@dataclass(frozen=True)
class TemplateRef:
    """A launch template as a group or a refresh's desired configuration names it."""

    template_id: str | None
    template_name: str | None
    version: str                       # as named: "3", "$Latest" or "$Default"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> TemplateRef:
        """AWS's LaunchTemplateSpecification; no version means ``$Default``, as in AWS."""
        return cls(spec.get("LaunchTemplateId") or None, spec.get("LaunchTemplateName") or None,
                   str(spec.get("Version") or DEFAULT))

    @property
    def key(self) -> str:
        return self.template_id or f"name:{self.template_name}"

    @property
    def label(self) -> str:
        return self.template_id or self.template_name or "?"


def group_template(group: Mapping[str, Any]) -> tuple[TemplateRef | None, str, str | None]:
    """(template, via, why not) for an Auto Scaling group from DescribeAutoScalingGroups.

    ``via`` is ``LaunchTemplate`` or ``MixedInstancesPolicy``; ``why not`` explains a
    group the engine cannot move by writing one template version.
    """
    if group.get("LaunchTemplate"):
        return TemplateRef.from_spec(group["LaunchTemplate"]), VIA_LAUNCH_TEMPLATE, None
    policy = group.get("MixedInstancesPolicy") or {}
    spec = (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    if spec:
        overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
        own = sorted({TemplateRef.from_spec(o["LaunchTemplateSpecification"]).label
                      for o in overrides if o.get("LaunchTemplateSpecification")})
        if own:
            return None, VIA_MIXED_INSTANCES_POLICY, (
                "its mixed instances policy overrides launch instance types from other launch "
                f"templates ({', '.join(own)}); moving them is not supported")
        return TemplateRef.from_spec(spec), VIA_MIXED_INSTANCES_POLICY, None
    if group.get("LaunchConfigurationName"):
        return None, "", (f"uses launch configuration {group['LaunchConfigurationName']}, not a "
                          "launch template; migrate it to a launch template to have it upgraded")
    return None, "", "has no launch template"


def desired_template(desired: Mapping[str, Any] | None) -> TemplateRef | None:
    """The template a refresh's DesiredConfiguration names, if any."""
    if not desired:
        return None
    if desired.get("LaunchTemplate"):
        return TemplateRef.from_spec(desired["LaunchTemplate"])
    spec = ((desired.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
        "LaunchTemplateSpecification")
    return TemplateRef.from_spec(spec) if spec else None


@dataclass(frozen=True)
class ImageAlias:
    """An ImageId of the form ``resolve:ssm:<parameter>[:<version or label>]``."""

    parameter: str
    selector: str | None
    by_arn: bool = False             # an ARN drops the leading '/' of a name like "my-ami"

    @classmethod
    def parse(cls, image_id: str) -> ImageAlias | None:
        if not image_id.startswith(SSM_ALIAS):
            return None
        rest = image_id[len(SSM_ALIAS):]
        by_arn = rest.startswith("arn:") and ":parameter" in rest
        if by_arn:
            rest = rest.split(":parameter", 1)[1]
        name, _, selector = rest.partition(":")
        name = name if name.startswith("/") or "/" not in name else f"/{name}"
        return cls(name, selector or None, by_arn)

    def follows(self, parameter: str) -> bool:
        """True when it resolves ``parameter``'s current value (no pinned version or label)."""
        return self.selector is None and (
            self.parameter == parameter or (self.by_arn and self.parameter == f"/{parameter}"))


@dataclass(frozen=True)
class TemplateVersion:
    template_id: str
    template_name: str
    number: int
    data_json: str                     # LaunchTemplateData, canonical JSON (kept immutable)

    @classmethod
    def from_aws(cls, item: Mapping[str, Any]) -> TemplateVersion:
        return cls(item["LaunchTemplateId"], item.get("LaunchTemplateName", ""),
                   int(item["VersionNumber"]),
                   json.dumps(item.get("LaunchTemplateData") or {}, sort_keys=True, default=str))

    @property
    def data(self) -> dict[str, Any]:
        return json_object(self.data_json)

    @property
    def image_id(self) -> str:
        return str(self.data.get("ImageId") or "")

    @property
    def alias(self) -> ImageAlias | None:
        return ImageAlias.parse(self.image_id)

    def with_image(self, image_id: str) -> dict[str, Any]:
        """This version's data with only the ImageId changed (what SourceVersion yields)."""
        return {**self.data, "ImageId": image_id}


@dataclass(frozen=True)
class TemplateVersions:
    """Versions of one template, read in one call, by the label they were asked for."""

    template_id: str
    template_name: str
    by_label: Mapping[str, TemplateVersion]

    @property
    def latest(self) -> TemplateVersion:
        return self.by_label[LATEST]

    def get(self, label: str) -> TemplateVersion | None:
        return self.by_label.get(label)


def read_versions(ec2: EC2Client, ref: TemplateRef, labels: Iterable[str]) -> TemplateVersions:
    """The versions ``labels`` (numbers, ``$Latest``, ``$Default``) of ``ref``'s template.

    ``$Latest`` is always read: it tells whether the version the engine would write
    already exists (a crash between writing it and starting the refresh).
    """
    wanted = sorted({*labels, LATEST})
    kwargs: dict[str, Any] = ({"LaunchTemplateId": ref.template_id} if ref.template_id
                              else {"LaunchTemplateName": ref.template_name})
    try:
        items = describe(ec2, "describe_launch_template_versions", "LaunchTemplateVersions",
                         Versions=wanted, **kwargs)
    except ClientError as exc:
        raise TemplateError(f"cannot read versions {', '.join(wanted)} of launch template "
                            f"{ref.label}: {error_code(exc)}: "
                            f"{exc.response['Error'].get('Message', '')}") from None
    if not items:
        raise TemplateError(f"launch template {ref.label} has no version {', '.join(wanted)}")
    return _by_label(items, wanted)


def _by_label(items: Iterable[Mapping[str, Any]], labels: Iterable[str]) -> TemplateVersions:
    """One template's versions as described (at least one) by the labels asked for."""
    versions = {int(i["VersionNumber"]): (TemplateVersion.from_aws(i), i) for i in items}
    by_label: dict[str, TemplateVersion] = {}
    for label in labels:
        if label == LATEST:
            by_label[label] = versions[max(versions)][0]
        elif label == DEFAULT:
            default = [v for v, raw in versions.values() if raw.get("DefaultVersion")]
            if default:
                by_label[label] = default[0]
        elif label.isdigit() and int(label) in versions:
            by_label[label] = versions[int(label)][0]
    first = next(iter(versions.values()))[0]
    return TemplateVersions(first.template_id, first.template_name, by_label)


PAGE_SIZE = 200   # DescribeLaunchTemplateVersions: MaxResults at most


def read_current_versions(ec2: EC2Client, labels: Iterable[str]) -> dict[str, TemplateVersions]:
    """The ``$Latest`` (and, asked for, ``$Default``) version of every launch template in
    the account, by template ID and by ``name:<name>`` (``TemplateRef.key``).

    One paginated call for them all (AWS's account-wide form: no template named, no
    version numbers), instead of one call per template: 200 templates a page. A template
    missing from the answer is not in it (the caller reads it alone, for AWS's error).
    """
    wanted = sorted({*(label for label in labels if label in (LATEST, DEFAULT)), LATEST})
    try:
        items = describe(ec2, "describe_launch_template_versions", "LaunchTemplateVersions",
                         Versions=wanted, MaxResults=PAGE_SIZE)
    except ClientError as exc:
        raise TemplateError(f"cannot read the {' and '.join(wanted)} versions of the launch "
                            f"templates: {error_code(exc)}: "
                            f"{exc.response['Error'].get('Message', '')}") from None
    per_template: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        per_template.setdefault(item["LaunchTemplateId"], []).append(item)
    found: dict[str, TemplateVersions] = {}
    for raw in per_template.values():
        read = _by_label(raw, wanted)
        found[read.template_id] = read
        found[f"name:{read.template_name}"] = read
    return found


def client_token(template_id: str, source_version: int, image_id: str) -> str:
    """Deterministic, so a repeated or concurrent run gets the same version back from EC2."""
    digest = hashlib.sha256(f"{template_id}:{source_version}:{image_id}".encode()).hexdigest()
    return f"ami-upgrade-{digest[:40]}"


def create_version(ec2: EC2Client, source: TemplateVersion, image_id: str) -> int:
    """A new version of ``source``'s template: ``source`` with only the ImageId changed."""
    response = ec2.create_launch_template_version(
        LaunchTemplateId=source.template_id, SourceVersion=str(source.number),
        LaunchTemplateData={"ImageId": image_id},
        VersionDescription=f"ami-upgrade: version {source.number} with ImageId {image_id}",
        ClientToken=client_token(source.template_id, source.number, image_id))
    return int(response["LaunchTemplateVersion"]["VersionNumber"])


def desired_configuration(via: str, template_id: str, version: int,
                          mixed_instances_policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """A refresh's DesiredConfiguration naming a numbered version (never $Latest/$Default)."""
    spec = {"LaunchTemplateId": template_id, "Version": str(version)}
    if via != VIA_MIXED_INSTANCES_POLICY:
        return {"LaunchTemplate": spec}
    policy = copy.deepcopy(dict(mixed_instances_policy or {}))
    policy["LaunchTemplate"] = {**(policy.get("LaunchTemplate") or {}),
                                "LaunchTemplateSpecification": spec}
    return {"MixedInstancesPolicy": policy}
