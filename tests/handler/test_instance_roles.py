"""An instance whose profile's role the function may not pass is reported, never stopped.

The role policy grants ``iam:PassRole`` only for ``ami-upgrade:instanceRoles``
(``INSTANCE_ROLES``); relaunching an instance with another role would stop it, then
fail at ``RunInstances`` and roll back. The preflight (``handler/passable.py``)
reads the profile's role at planning and reports the instance with the fix instead.
"""

from __future__ import annotations

import json

import boto3
import pytest
from standalone_estate import APP_ROLE, build_estate, entry, function, set_parameter

from handler.passable import role_blocker, template_profile
from handler.settings import SettingsError, parse_instance_roles, role_passable

ACCOUNT = "123456789012"


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def untouched(estate, instance_id: str) -> bool:
    instance = estate.describe(instance_id)
    return (instance["State"]["Name"] == "running"
            and not any(t["Key"] in ("ami-upgrade:in-flight", "ami-upgrade:target-ami")
                        for t in instance.get("Tags", [])))


def test_no_instance_roles_configured_reports_the_instance_before_stopping_it(aws, estate):
    old = estate.launch("app")
    report = function(aws, instance_roles="").invoke({})
    assert entry(report, old) == {
        "id": old, "action": "skipped", "code": "preflight_failed", "volumes": [],
        "reason": "its instance profile app passes a role and ami-upgrade:instanceRoles names "
                  "none, so the function may not pass it to EC2: add the role's ARN or path "
                  "to ami-upgrade:instanceRoles"}
    assert untouched(estate, old)


def test_a_role_outside_the_configured_ones_is_named_with_its_path(aws, estate):
    old = estate.launch("app")
    report = function(aws, instance_roles='["/ec2/"]').invoke({})
    assert entry(report, old)["reason"] == (
        f"the role {APP_ROLE} of its instance profile app is not in ami-upgrade:instanceRoles "
        "(/ec2/), so the function may not pass it to EC2: add the role's ARN to "
        "ami-upgrade:instanceRoles")
    assert untouched(estate, old)


@pytest.mark.parametrize("roles", [[APP_ROLE]])
def test_a_configured_role_or_path_lets_the_instance_be_relaunched(aws, estate, roles):
    old = estate.launch("app")
    report = function(aws, instance_roles=json.dumps(roles)).invoke({})
    assert entry(report, old)["action"] == "replaced"


def test_the_profile_is_read_once_per_planning_pass(aws):
    iam = boto3.client("iam")
    iam.create_role(RoleName="web", Path="/ec2/", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="web")
    iam.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile/web"
    seen: dict[str, str | None] = {}
    assert role_blocker(iam, profile, ("/ec2/",), seen) is None
    iam.remove_role_from_instance_profile(InstanceProfileName="web", RoleName="web")
    assert role_blocker(iam, profile, ("/ec2/",), seen) is None    # memoised
    assert seen == {profile: None}
    assert role_blocker(iam, None, (), {}) is None                 # no profile, no role


def test_a_launch_templates_profile_by_arn_or_name_is_checked_the_same_way(aws):
    """For groups: a refresh naming a template passes its profile's role too."""
    iam = boto3.client("iam")
    iam.create_role(RoleName="web", Path="/ec2/", AssumeRolePolicyDocument="{}")
    arn = iam.create_instance_profile(InstanceProfileName="web")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")
    for data in ({"IamInstanceProfile": {"Arn": arn}}, {"IamInstanceProfile": {"Name": "web"}}):
        assert role_blocker(iam, template_profile(data), ("/ec2/",)) is None
        assert "is not in ami-upgrade:instanceRoles (/app/)" in (
            role_blocker(iam, template_profile(data), ("/app/",)) or "")
    assert template_profile({"ImageId": "ami-12345678"}) is None


def test_a_deleted_profile_is_reported_as_gone_with_the_fix(aws):
    arn = f"arn:aws:iam::{ACCOUNT}:instance-profile/gone"
    reason = role_blocker(boto3.client("iam"), arn, ("/",))
    assert reason == (f"its instance profile {arn} no longer exists: the launch would be "
                      "refused (create it again under that name, or disassociate it from the "
                      "instance)")


def test_an_unreadable_profile_is_reported_with_aws_words(aws):
    aws.faults.fail("GetInstanceProfile", "AccessDenied", "not authorized", times=None)
    reason = role_blocker(boto3.client("iam"), f"arn:aws:iam::{ACCOUNT}:instance-profile/app",
                          ("/",))
    assert reason is not None
    assert reason.startswith("its instance profile app could not be read to check its role: "
                             "GetInstanceProfile failed: AccessDenied: not authorized")


@pytest.mark.parametrize(("arn", "path", "allowed", "passable"), [
    (f"arn:aws:iam::{ACCOUNT}:role/ec2/web", "/ec2/", ("/ec2/",), True),
    (f"arn:aws:iam::{ACCOUNT}:role/ec2/deep/web", "/ec2/deep/", ("/ec2/",), True),
    (f"arn:aws:iam::{ACCOUNT}:role/web", "/", ("/ec2/",), False),
    (f"arn:aws:iam::{ACCOUNT}:role/web", "/", (f"arn:aws:iam::{ACCOUNT}:role/web",), True),
    (f"arn:aws:iam::{ACCOUNT}:role/web2", "/", (f"arn:aws:iam::{ACCOUNT}:role/web",), False),
    (f"arn:aws:iam::{ACCOUNT}:role/web", "/", (), False),
])
def test_role_passable_matches_what_the_policy_renders(arn, path, allowed, passable):
    """A path grants ``role<path>*`` (every role under it), an ARN exactly that role."""
    assert role_passable(arn, path, allowed) is passable


@pytest.mark.parametrize(("value", "says"), [
    ("arn:aws:iam::123456789012:role/*", "no wildcards"),
    ("arn:aws:iam::123456789012:user/bob", "not an IAM role ARN"),
    ("arn:aws:iam::12345:role/web", "not an IAM role ARN"),
    ("ec2/", "a role path must start and end with '/'"),
    ("/ec2", "a role path must start and end with '/'"),
    ("/ec2//x/", "not a valid IAM role path"),
    (["arn:aws:iam::123456789012:role/a", "arn:aws:iam::210987654321:role/b"],
     "role ARNs of several accounts (123456789012, 210987654321)"),
])
def test_instance_roles_refused(value, says):
    with pytest.raises(SettingsError, match=r"^INSTANCE_ROLES: ") as raised:
        parse_instance_roles(value, "INSTANCE_ROLES")
    assert says in str(raised.value)


def test_instance_roles_accepted_sorted():
    assert parse_instance_roles('["/ec2/", "arn:aws:iam::123456789012:role/app/web"]',
                                "INSTANCE_ROLES") == (
        "/ec2/", "arn:aws:iam::123456789012:role/app/web")
    assert parse_instance_roles(None, "INSTANCE_ROLES") == ()
