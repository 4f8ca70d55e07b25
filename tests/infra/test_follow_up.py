"""Issue 13: the follow-up rule, rendered in both stacks under Pulumi's mocks.

The engine enables it while work is in flight (handler/follow_up.py); the stack
creates it DISABLED, targets the alias with the direct event, lets only it invoke
the alias, and grants the role the switch on that one rule.
"""

from __future__ import annotations

import json

import pytest

from handler.follow_up import RATE, rule_name
from infra.harness import ACCOUNT, Rendered, rendered_stack

RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
ALIAS = "aws:lambda/alias:Alias"
POLICY = "aws:iam/rolePolicy:RolePolicy"
FOLLOW_UP = "ami-upgrade-follow-up-"


@pytest.fixture(params=["dev", "prod"])
def stack(request) -> Rendered:
    return rendered_stack(request.param)


def test_the_rule_is_created_disabled_on_a_five_minute_rate(stack):
    rule = stack.one(RULE, FOLLOW_UP)
    assert (rule.inputs["name"], rule.inputs["scheduleExpression"], rule.inputs["state"]) == (
        rule_name(f"ami-upgrade-{stack.stack}"), RATE, "DISABLED")
    assert stack.ancestors(rule)[0] == "ami-upgrade:components:FollowUp"


def test_the_target_is_the_alias_with_the_direct_event(stack):
    target = stack.one(TARGET, FOLLOW_UP)
    assert target.inputs["arn"] == stack.one(ALIAS).outputs["arn"]
    assert target.inputs["rule"] == stack.one(RULE, FOLLOW_UP).outputs["name"]
    parameter = stack.config["ami-upgrade:parameterName"]
    dry_run = bool(stack.config.get("ami-upgrade:dryRun", False))
    assert json.loads(target.inputs["input"]) == {"parameter_name": parameter,
                                                  "dry_run": dry_run}
    assert stack.one(PERMISSION, FOLLOW_UP).urn in target.dependencies


def test_only_this_rule_may_invoke_the_alias(stack):
    permission = stack.one(PERMISSION, FOLLOW_UP).inputs
    assert (permission["principal"], permission["function"], permission["sourceArn"]) == (
        "events.amazonaws.com", f"ami-upgrade-{stack.stack}",
        stack.one(RULE, FOLLOW_UP).outputs["arn"])


def test_the_role_may_switch_this_rule_and_no_other(stack):
    document = json.loads(stack.one(POLICY).inputs["policy"])
    granting = [s for s in document["Statement"]
                if any(a.startswith("events:") for a in s["Action"])]
    assert granting == [{
        "Sid": "SwitchFollowUpRule", "Effect": "Allow",
        "Action": ["events:DescribeRule", "events:DisableRule", "events:EnableRule"],
        "Resource": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/"
                     f"{rule_name(f'ami-upgrade-{stack.stack}')}"]}]
    assert stack.one(RULE, FOLLOW_UP).outputs["arn"] == granting[0]["Resource"][0]


def test_the_rule_name_fits_eventbridge_for_the_longest_function_name():
    assert len(rule_name("f" * 64)) == 64
    assert rule_name("ami-upgrade-prod") == "ami-upgrade-prod-follow-up"
