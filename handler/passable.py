"""Preflight: may the function pass the role of an instance's profile to EC2?

Relaunching an instance that has an instance profile passes the profile's role
(``iam:PassRole``), which the role policy grants only for the roles named in
``ami-upgrade:instanceRoles`` (``INSTANCE_ROLES``: ARNs, or paths such as ``/ec2/``).
Checked at planning, so an instance whose role is not passable is reported with the
fix before anything is stopped, instead of being stopped and then rolled back when
``RunInstances`` is refused.

Groups need the same: Auto Scaling checks that whoever starts a refresh naming a
launch template may launch from it, ``iam:PassRole`` on its profile's role included.
:func:`template_profile` gives that profile for :func:`role_blocker`: the group
planner (``asg/plan.py``) reports such a group ``failed`` with the fix, before any
version is written or refresh started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws import describe_error, error_code
from .settings import role_passable

if TYPE_CHECKING:
    from types_boto3_iam.client import IAMClient

KEY = "ami-upgrade:instanceRoles"


def profile_name(profile_arn: str) -> str:
    """``arn:aws:iam::<account>:instance-profile/<path/>name`` (or a name) -> ``name``."""
    return profile_arn.rsplit("/", 1)[-1]


def template_profile(launch_template_data: Mapping[str, Any]) -> str | None:
    """The instance profile (ARN or name) a launch template version launches with."""
    profile = launch_template_data.get("IamInstanceProfile") or {}
    return profile.get("Arn") or profile.get("Name") or None


def role_blocker(iam: IAMClient | None, profile_arn: str | None,
                 allowed: tuple[str, ...], seen: dict[str, str | None] | None = None
                 ) -> str | None:
    """Why the role of ``profile_arn`` (an ARN, or a name) cannot be passed (None: no
    profile, or passable).

    ``seen`` memoises per profile within one planning pass (fleets share profiles).
    """
    if not profile_arn:
        return None
    if seen is not None and profile_arn in seen:
        return seen[profile_arn]
    reason = _blocker(iam, profile_arn, allowed)
    if seen is not None:
        seen[profile_arn] = reason
    return reason


def _blocker(iam: IAMClient | None, profile_arn: str, allowed: tuple[str, ...]) -> str | None:
    name = profile_name(profile_arn)
    if not allowed:
        return (f"its instance profile {name} passes a role and {KEY} names none, so the "
                f"function may not pass it to EC2: add the role's ARN or path to {KEY}")
    if iam is None:
        return f"its instance profile {name} could not be checked (no IAM client)"
    try:
        roles = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return (f"its instance profile {profile_arn} no longer exists: the launch would be "
                    "refused (create it again under that name, or disassociate it from the "
                    "instance)")
        return (f"its instance profile {name} could not be read to check its role: "
                f"{describe_error(exc, 'GetInstanceProfile')}")
    for role in roles:    # a profile holds at most one role
        if not role_passable(role["Arn"], role.get("Path", "/"), allowed):
            path = role.get("Path", "/")
            fix = "the role's ARN" + (f" or its path {path!r}" if path != "/" else "")
            return (f"the role {role['Arn']} of its instance profile {name} is not in {KEY} "
                    f"({', '.join(allowed)}), so the function may not pass it to EC2: add "
                    f"{fix} to {KEY}")
    return None
