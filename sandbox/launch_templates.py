"""Emulation: launch-template behaviour that moto 5.2.5 lacks and the engine relies on.

- ``CreateLaunchTemplateVersion`` with ``SourceVersion``: AWS makes the new version
  from the source's data, each key sent in ``LaunchTemplateData`` replacing the
  inherited one; moto keeps only the data sent (a version with nothing but an
  ImageId).
- ``CreateLaunchTemplateVersion`` with ``ClientToken``: AWS returns the version the
  token already created (idempotency), and ``IdempotentParameterMismatch`` when the
  same token comes with other parameters; moto creates another version.
- An ``ImageId`` of ``resolve:ssm:<parameter>`` is resolved to the parameter's value
  when an Auto Scaling group launches instances, as AWS does; moto launches
  instances whose ImageId is the literal alias.
- ``DescribeLaunchTemplates`` and ``DescribeLaunchTemplateVersions``: AWS answers
  every template (or version) asked for, and pages with ``NextToken`` only when
  ``MaxResults`` is given; moto answers at most 15 (``MaxResults`` or not, IDs asked
  for or not) and never a ``NextToken``, so a caller cannot see past the 15th. Without
  a template, AWS answers ``$Latest``/``$Default`` of every template and refuses
  version numbers ("You cannot specify numbers"); moto ignores the numbers.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
from collections.abc import Callable
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidParameterValue
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data
from moto.ssm.models import ssm_backends

from .core import EmbeddedAws, patch_method

STATE_KEY = "launch_template_client_tokens"
SSM_ALIAS = "resolve:ssm:"


def resolve_image_alias(image_id: str, account_id: str, region: str) -> str:
    """The AMI a ``resolve:ssm:`` ImageId names now (unchanged when it is not an alias)."""
    if not image_id.startswith(SSM_ALIAS):
        return image_id
    name = image_id[len(SSM_ALIAS):]
    parameter = ssm_backends[account_id][region].get_parameter(name)
    return parameter.value if parameter is not None else image_id


def _page(response: LaunchTemplates, items: list) -> tuple[list, str | None]:
    """``items`` as AWS pages them: all without ``MaxResults``, else that many and a token."""
    max_results = response._get_int_param("MaxResults")
    token = response._get_param("NextToken")
    try:
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError:
        raise InvalidParameterValue(f"The token '{token}' is invalid.") from None
    if max_results is None:
        return items[start:], None
    if not 1 <= max_results <= 200:
        raise InvalidParameterValue(f"Value ({max_results}) for parameter maxResults is "
                                    "invalid. Expecting a value between 1 and 200.")
    end = start + max_results
    more = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], more


def _with_token(result: dict, token: str | None) -> ActionResult:
    if token is not None:
        result["NextToken"] = token
    return ActionResult(result)


def describe_launch_templates(self: LaunchTemplates) -> ActionResult:
    filters = self._filters_from_querystring()
    self.error_on_dryrun()
    templates = self.ec2_backend.describe_launch_templates(
        template_names=self._get_param("LaunchTemplateNames", []),
        template_ids=self._get_param("LaunchTemplateIds", []), filters=filters)
    templates, token = _page(self, list(templates))
    return _with_token({"LaunchTemplates": [{
        "CreateTime": template.create_time,
        "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
        "DefaultVersionNumber": template.default_version_number,
        "LatestVersionNumber": template.latest_version_number,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "Tags": template.tags,
    } for template in templates]}, token)


ACCOUNT_WIDE = ("$Latest", "$Default")


def describe_launch_template_versions(self: LaunchTemplates) -> ActionResult:
    min_version = self._get_int_param("MinVersion")
    max_version = self._get_int_param("MaxVersion")
    self.error_on_dryrun()
    versions = self._get_param("Versions", [])
    if (not self._get_param("LaunchTemplateName") and not self._get_param("LaunchTemplateId")
            and any(v not in ACCOUNT_WIDE for v in versions)):
        # AWS: every template's $Latest and/or $Default, "You cannot specify numbers"
        raise InvalidParameterValue(
            "To describe the launch template data for all your launch templates, for "
            "'--versions' specify '$Latest', '$Default', or both, and omit "
            "'--launch-template-id', '--launch-template-name', and version numbers.")
    found = self.ec2_backend.describe_launch_template_versions(
        template_name=self._get_param("LaunchTemplateName"),
        template_id=self._get_param("LaunchTemplateId"),
        versions=versions, min_version=min_version,
        max_version=max_version, max_results=sys.maxsize)   # moto's cap; _page pages
    found, token = _page(self, list(found))
    return _with_token({"LaunchTemplateVersions": [
        _version(self, template, version) for template, version in found]}, token)


def install(aws: EmbeddedAws) -> Callable[[], None]:
    tokens: dict[tuple[str, str, str, str], tuple[int, str]] = aws.state.setdefault(STATE_KEY, {})

    def create_launch_template_version(self):  # type: ignore[no-untyped-def]
        name = self._get_param("LaunchTemplateName")
        template_id = self._get_param("LaunchTemplateId")
        template = (self.ec2_backend.get_launch_template(template_id) if template_id
                    else self.ec2_backend.get_launch_template_by_name(name))
        description = self._get_param("VersionDescription")
        data = self._get_param("LaunchTemplateData", {}) or {}
        if self._get_param("LaunchTemplateData.UserData") is not None:
            data["UserData"] = parse_user_data(self._get_param("LaunchTemplateData.UserData"))
        source = self._get_param("SourceVersion")
        token = self._get_param("ClientToken")
        self.error_on_dryrun()

        fingerprint = json.dumps([source, description, data], sort_keys=True, default=str)
        key = (self.current_account, self.region, template.id, token or "")
        if token and key in tokens:
            number, seen = tokens[key]
            if seen != fingerprint:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"Client token {token} was already used with different parameters.")
            version = template.get_version(number)
        else:
            if source is not None:
                merged = copy.deepcopy(template.get_version(source).data)
                merged.update(data)
                data = merged
            version = template.create_version(data, description)
            if token:
                tokens[key] = (version.number, fingerprint)

        return ActionResult({"LaunchTemplateVersion": _version(self, template, version)})

    original_image_id: Any = FakeAutoScalingGroup.__dict__["image_id"]

    def image_id(self: FakeAutoScalingGroup) -> str:
        return resolve_image_alias(original_image_id.fget(self), self.account_id, self.region)

    undo = [patch_method(LaunchTemplates, "create_launch_template_version",
                         create_launch_template_version),
            patch_method(FakeAutoScalingGroup, "image_id", property(image_id)),
            patch_method(LaunchTemplates, "describe_launch_templates",
                         describe_launch_templates),
            patch_method(LaunchTemplates, "describe_launch_template_versions",
                         describe_launch_template_versions)]

    def uninstall() -> None:
        for step in reversed(undo):
            step()
        tokens.clear()
    return uninstall


def _version(response: Any, template: Any, version: Any) -> dict[str, Any]:
    """One launch-template version as EC2 answers it (describe and create alike)."""
    return {
        "CreateTime": version.create_time,
        "CreatedBy": f"arn:{response.partition}:iam::{response.current_account}:root",
        "DefaultVersion": template.is_default(version),
        "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "VersionDescription": version.description,
        "VersionNumber": version.number,
    }
