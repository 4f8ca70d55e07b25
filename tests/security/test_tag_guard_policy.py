"""The shipped guard (``components.policy.engine_tag_guard``, exported by the stack as
``engine_tag_guard_policy``): evaluated offline, it denies every call of the tag attacks
(writing or deleting the engine's keys, at creation too) to any principal but the
function's role, and leaves the tags users steer the engine with writable."""

from __future__ import annotations

import json

import pytest

from components.policy import ENGINE_TAG_KEYS, engine_tag_guard
from handler import tags as t
from tests.infra.harness import render

from .iam_eval import ALLOW, DENY, IMPLICIT, Call, evaluate

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ami-upgrade-dev-role"
ATTACKER = f"arn:aws:iam::{ACCOUNT}:role/app-team"
INSTANCE = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"
VOLUME = f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-0123456789abcdef0"
TEMPLATE = f"arn:aws:ec2:us-east-1:{ACCOUNT}:launch-template/lt-0123456789abcdef0"
GROUP = (f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:1234:"
         "autoScalingGroupName/web")
# What the attacker holds: tag writes on everything (the guard must win over it).
ATTACKER_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["ec2:CreateTags", "ec2:DeleteTags",
                                  "autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"],
    "Resource": "*"}]}
GUARD = engine_tag_guard([ROLE])

# Each attack's tag call: (action, resource, the keys it writes, the create action).
ATTACKS = {
    "volume hijack: replaces on the attacker's instance": (
        "ec2:CreateTags", INSTANCE, [t.REPLACES, t.IN_FLIGHT], None),
    "volume hijack: launched already carrying replaces": (
        "ec2:CreateTags", INSTANCE, [t.REPLACES], "RunInstances"),
    "volume hijack: home-instance on a planted volume": (
        "ec2:CreateTags", VOLUME, [t.HOME_INSTANCE, t.HOME_DEVICE], None),
    "volume hijack: created already carrying home-instance": (
        "ec2:CreateTags", VOLUME, [t.HOME_INSTANCE], "CreateVolume"),
    "forged intent: root-volume-ami": (
        "ec2:CreateTags", INSTANCE, [t.IN_FLIGHT, t.ROOT_VOLUME_AMI], None),
    "forged intent: target-ami among other tags": (
        "ec2:CreateTags", INSTANCE, ["Name", t.TARGET_AMI], None),
    "denial of service: attempt=x": ("ec2:CreateTags", INSTANCE, [t.ATTEMPT], None),
    "denial of service: health-waited=abc": (
        "ec2:CreateTags", INSTANCE, [t.HEALTH_WAITED], None),
    "denial of service: a forged launch token": (
        "ec2:CreateTags", INSTANCE, [t.LAUNCH_TOKEN], None),
    "forged shape template": ("ec2:CreateTags", TEMPLATE, [t.REPLACES, t.LAUNCH_TOKEN],
                              "CreateLaunchTemplate"),
    "removing a record": ("ec2:DeleteTags", INSTANCE, [t.VOLUMES], None),
    "removing every tag at once": ("ec2:DeleteTags", INSTANCE, None, None),
    "a group's refresh record": ("autoscaling:CreateOrUpdateTags", GROUP, [t.REFRESH_AMI],
                                 None),
    "deleting a group's refresh record": ("autoscaling:DeleteTags", GROUP, [t.REFRESH_ID],
                                          None),
}


def _call(action: str, resource: str, keys: list[str] | None, create: str | None,
          principal: str) -> Call:
    context: dict = {"aws:PrincipalArn": principal}
    if keys is not None:
        context["aws:TagKeys"] = keys
    if create:
        context["ec2:CreateAction"] = create
    return Call(action, resource, context)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_tag_attack_is_denied_to_anyone_but_the_function(attack):
    call = _call(*ATTACKS[attack], principal=ATTACKER)

    assert evaluate([ATTACKER_POLICY], call) == ALLOW        # without the guard
    assert evaluate([ATTACKER_POLICY, GUARD], call) == DENY


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_guard_never_denies_the_functions_role(attack):
    call = _call(*ATTACKS[attack], principal=ROLE)

    assert evaluate([GUARD], call) == IMPLICIT


@pytest.mark.parametrize("keys", [[t.PARAMETER], [t.EXCLUDE], [t.STRATEGY], ["Name", "team"]])
def test_users_still_steer_the_engine_with_their_own_tags(keys):
    call = _call("ec2:CreateTags", INSTANCE, keys, None, principal=ATTACKER)

    assert evaluate([ATTACKER_POLICY, GUARD], call) == ALLOW


def test_every_key_the_engine_writes_is_guarded():
    assert set(ENGINE_TAG_KEYS) == ({*t.PROGRESS_TAGS, t.REFRESH_ID, t.REFRESH_AMI}
                                    - {t.PARAMETER, t.EXCLUDE, t.STRATEGY})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_exports_the_guard_for_its_own_role(stack):
    rendered = render(stack)
    exported = json.loads(rendered.exports["engine_tag_guard_policy"])

    assert exported == engine_tag_guard([rendered.exports["role_arn"]])


def test_the_guard_is_also_a_valid_scp():
    """An SCP takes the same grammar, with ``Resource: "*"`` and Deny statements only."""
    assert all(s["Effect"] == "Deny" and s["Resource"] == "*" for s in GUARD["Statement"])
    assert len(json.dumps(GUARD, separators=(",", ":"))) <= 5120   # Organizations' limit


def test_parliament_finds_nothing_in_the_guard():
    import parliament

    analysed = parliament.analyze_policy_string(json.dumps(GUARD),
                                                include_community_auditors=True)

    assert [f"{f.issue}: {f.detail}" for f in analysed.findings] == []
