"""Which resources a run may touch (contract: scope and tags), with the reason when not.

A resource is out of scope when it follows another parameter (its ``ami-upgrade:parameter``
tag names one, whatever the SCOPE) or when another orchestrator owns it: replacing an
instance that an EC2 Fleet, EMR, EKS or Karpenter manages fights that orchestrator (it
relaunches, drains or terminates on its own terms), and refreshing a group that EKS,
Elastic Beanstalk or ECS manages bypasses the service that owns its template.
:data:`OWNERS` is the one table of those markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .settings import Exclusions, Settings
from .tags import ASG_MEMBER, EXCLUDE, EXCLUDE_FALSE, EXCLUDE_TRUE, PARAMETER, excluded_by_tag

INSTANCE, GROUP = "instance", "asg"


@dataclass(frozen=True)
class Owner:
    """A mark another orchestrator leaves on what it manages, and why that rules us out.

    ``key`` is a tag key, or a prefix when it ends with ``/`` or ``:``; ``attribute``
    (with ``value``) is a field of DescribeInstances instead of a tag.
    """

    who: str
    key: str
    kinds: frozenset[str]
    why: str
    attribute: str | None = None
    value: str | None = None

    def marks(self, kind: str, tags: Mapping[str, str],
              resource: Mapping[str, Any] | None) -> str | None:
        """The marker found (``key=value``), or None."""
        if kind not in self.kinds:
            return None
        if self.attribute is not None:
            found = (resource or {}).get(self.attribute)
            if found is None:
                return None
            if isinstance(found, Mapping):   # e.g. Operator: {"Managed": true}
                return f"{self.attribute}.Managed" if found.get("Managed") else None
            return f"{self.attribute}={found}" if found == self.value else None
        if self.key.endswith(("/", ":")):
            key = next((k for k in sorted(tags) if k.startswith(self.key)), None)
        else:
            key = self.key if self.key in tags else None
        return None if key is None else f"{key}={tags[key]}"


_I, _G, _BOTH = frozenset({INSTANCE}), frozenset({GROUP}), frozenset({INSTANCE, GROUP})

# One row per orchestrator mark (README "Tags": the same table). Not here, on purpose:
# aws:cloudformation:* (a stack-created standalone instance or group is the user's own, and
# the stack references the AMI through the parameter; see README "How application stacks
# should reference the AMI"), aws:ec2launchtemplate:* (launched from a template, not managed).
# AWS Batch and ECS capacity is launched through an Auto Scaling group or an EC2 Fleet and
# carries that mark.
OWNERS: tuple[Owner, ...] = (
    Owner("Auto Scaling", ASG_MEMBER, _I,
          "a group member: the group's instance refresh replaces it"),
    Owner("EC2 Fleet", "aws:ec2:fleet-id", _I,
          "the fleet maintains its capacity and would replace or double it"),
    Owner("Spot Fleet", "aws:ec2spot:fleet-request-id", _I,
          "the Spot Fleet request maintains its capacity and would replace or double it"),
    Owner("Spot", "InstanceLifecycle", _I,
          "a Spot instance belongs to its Spot request: it cannot be stopped and relaunched "
          "as an On-Demand copy, and a persistent request relaunches it itself",
          attribute="InstanceLifecycle", value="spot"),
    Owner("an AWS service", "Operator", _I,
          "an EC2 managed instance: only the service that operates it may replace it",
          attribute="Operator"),
    Owner("EMR", "aws:elasticmapreduce:", _I,
          "an EMR cluster node: EMR replaces nodes it did not launch as failed"),
    Owner("EKS managed node group", "eks:nodegroup-name", _BOTH,
          "EKS updates its node groups (UpdateNodegroupVersion drains the nodes first)"),
    Owner("EKS", "eks:cluster-name", _BOTH,
          "an EKS node: the cluster drains and replaces its nodes"),
    Owner("Kubernetes", "kubernetes.io/cluster/", _I,
          "a Kubernetes node: replacing it without cordon and drain kills its pods"),
    Owner("Karpenter", "karpenter.sh/", _I,
          "Karpenter owns the node's lifecycle (drift replaces it onto its own AMI)"),
    Owner("ECS", "AmazonECSManaged", _G,
          "an ECS capacity provider's group: ECS protects its instances from scale-in, so "
          "a refresh waits on them; update it through ECS"),
    Owner("Elastic Beanstalk", "elasticbeanstalk:environment-id", _BOTH,
          "Elastic Beanstalk owns the environment's template and instances (managed "
          "platform updates)"),
    Owner("OpsWorks", "opsworks:", _I,
          "an OpsWorks instance: OpsWorks starts, stops and rebuilds it"),
)


def owner_reason(kind: str, tags: Mapping[str, str],
                 resource: Mapping[str, Any] | None = None) -> str | None:
    """Why another orchestrator's mark puts the resource out of scope, or None."""
    for owner in OWNERS:
        found = owner.marks(kind, tags, resource)
        if found:
            return f"managed by {owner.who} ({found}): {owner.why}; not replaced by this function"
    return None


def out_of_scope_reason(settings: Settings, tags: Mapping[str, str]) -> str | None:
    """None when the resource follows this deployment's parameter under its SCOPE.

    A resource tagged for another parameter is out of scope in ``all`` too: that tag is
    another deployment's (or the owner's) claim on it.
    """
    current = tags.get(PARAMETER)
    if current is not None and current != settings.parameter_name:
        return f"tagged {PARAMETER}={current}, not {settings.parameter_name}"
    if settings.scope == "tagged" and current is None:
        return f"not tagged {PARAMETER}={settings.parameter_name}"
    return None


def exclusion_reason(kind: str, name: str, tags: Mapping[str, str],
                     exclusions: Exclusions) -> str | None:
    """Why an in-scope ASG (``kind="asg"``) or instance (``"instance"``) is excluded."""
    listed = exclusions.asgs if kind == GROUP else exclusions.instances
    if name in listed:
        source = "EXCLUDED_ASGS" if kind == GROUP else "EXCLUDED_INSTANCES"
        return f"excluded by the exclusion list ({source} or the exclusions parameter)"
    verdict = excluded_by_tag(tags)
    if verdict is None:   # neither a yes nor a no: reported, and the resource left alone
        return (f"tag {EXCLUDE} has the unknown value {tags[EXCLUDE][:64]!r}, so whether it "
                f"is excluded is unknown and it is not touched; set it to one of "
                f"{', '.join(EXCLUDE_TRUE)} (excluded) or {', '.join(filter(None, EXCLUDE_FALSE))}"
                " (not excluded)")
    if verdict:
        return f"excluded by tag {EXCLUDE}={tags[EXCLUDE].strip()}"
    return None


def skip_reason(settings: Settings, exclusions: Exclusions, kind: str, name: str,
                tags: Mapping[str, str], resource: Mapping[str, Any] | None = None
                ) -> str | None:
    """Exclusions first (they always win), then scope, then another orchestrator's mark."""
    return (exclusion_reason(kind, name, tags, exclusions) or out_of_scope_reason(settings, tags)
            or owner_reason(kind, tags, resource))
