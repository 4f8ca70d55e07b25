"""Attack surface: what the role may reach. ``instanceRoles`` that would let the function
pass every role of the account (the path ``/``, wildcards) are refused by the settings,
which the preview runs before any resource is registered."""

from __future__ import annotations

import pytest

from components.stack_settings import load_stack_settings
from handler.settings import SettingsError


@pytest.mark.parametrize("roles", [["/"], ["/ec2/", "/"], '["/"]', "/", ["*"], "*",
                                   ["role/*"], ["arn:aws:iam::123456789012:role/*"], ["/*/"]])
def test_instance_roles_reaching_every_role_are_refused_before_any_resource(roles):
    with pytest.raises(SettingsError, match=r"^ami-upgrade:instanceRoles: "):
        load_stack_settings({"parameterName": "/ami/linux/test", "instanceRoles": roles},
                            stack="dev", region="us-east-1")


def test_a_narrow_role_path_is_accepted():
    settings = load_stack_settings({"parameterName": "/ami/linux/test",
                                    "instanceRoles": ["/ec2/"]}, stack="dev", region="us-east-1")

    assert settings.instance_roles == ("/ec2/",)


@pytest.mark.parametrize("roles", [["arn:aws:iam::210987654321:role/app"],
                                   ["/ec2/", "arn:aws:iam::210987654321:role/ec2/web"]])
def test_a_role_of_another_account_is_refused_before_any_resource(roles):
    with pytest.raises(SettingsError, match=r"^ami-upgrade:instanceRoles: arn:aws:iam::"
                                            r"210987654321:role/.* not of the deployment's "
                                            r"account 123456789012$"):
        load_stack_settings({"parameterName": "/ami/linux/test", "instanceRoles": roles},
                            stack="dev", region="us-east-1", account="123456789012")


def test_a_role_of_the_deployments_account_is_accepted():
    role = "arn:aws:iam::123456789012:role/app"
    settings = load_stack_settings({"parameterName": "/ami/linux/test", "instanceRoles": [role]},
                                   stack="dev", region="us-east-1", account="123456789012")

    assert settings.instance_roles == (role,)
