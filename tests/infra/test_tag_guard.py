"""``ami-upgrade:engineTagGuard``: the guard policy as a managed policy, under Pulumi's mocks."""

from __future__ import annotations

import json

from components.policy import engine_tag_guard
from infra.harness import render

GUARD = "aws:iam/policy:Policy"
ROLE = "aws:iam/role:Role"


def test_no_guard_policy_is_created_by_default():
    stack = render("dev")

    assert stack.of_type(GUARD) == []
    assert "engine_tag_guard_policy_arn" not in stack.exports


def test_the_guard_policy_denies_the_engines_tags_to_all_but_the_functions_role():
    stack = render("dev", {"ami-upgrade:engineTagGuard": True})
    guard = stack.one(GUARD)
    role_arn = stack.one(ROLE).outputs["arn"]

    assert guard.inputs["name"] == "ami-upgrade-dev-tag-guard"
    assert json.loads(guard.inputs["policy"]) == engine_tag_guard([role_arn])
    assert stack.exports["engine_tag_guard_policy_arn"] == guard.outputs["arn"]


def test_the_guard_policy_is_tagged_and_belongs_to_its_component():
    stack = render("prod", {"ami-upgrade:engineTagGuard": "true"})
    guard = stack.one(GUARD)

    assert guard.inputs["tags"]["managed-by"] == "pulumi"
    assert guard.parent.endswith("ami-upgrade:components:EngineTagGuard::ami-upgrade-tag-guard")
