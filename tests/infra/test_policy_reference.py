"""The role policy against a linter (parliament) and AWS's IAM reference (policy_sentry).

Both run offline: parliament 1.6.4 with its community auditors, and policy_sentry
0.15.2's bundled copy of the Service Authorization Reference. The policy checked is the
one the stack renders, for the dev and prod stacks in both scopes, with every optional
statement present (instance roles, KMS keys, a topic).

Parliament's findings are all accounted for: none is accepted unless it is one of
:data:`SUPPRESSED`, and each suppression re-checks, on the policy itself, the reason
it is given for (so a change that makes the finding real fails the test).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import parliament
import pytest
from policy_sentry.querying import actions as actions_db
from policy_sentry.querying import arns as arns_db

from infra.harness import ACCOUNT, render

POLICY = "aws:iam/rolePolicy:RolePolicy"
CASES = [(stack, scope) for stack in ("dev", "prod") for scope in ("tagged", "all")]
EXTRA = {"ami-upgrade:kmsKeyArns": [
             "arn:aws:kms:us-east-1:123456789012:key/0123abcd-4567-89ab-cdef-0123456789ab"],
         "ami-upgrade:notificationTopicArn": "arn:aws:sns:us-east-1:123456789012:ami-upgrade",
         "ami-upgrade:instanceRoles": ["/ec2/", f"arn:aws:iam::{ACCOUNT}:role/app/web"]}
# Keys AWS evaluates for every request (the tag keys are not: an action or resource type
# must list them, and policy_sentry's data says which do).
TAG_KEYS = re.compile(r"^aws:(ResourceTag/|RequestTag/|TagKeys$)")


@cache
def rendered(stack: str, scope: str) -> dict[str, Any]:
    stack_render = render(stack, {**EXTRA, "ami-upgrade:scope": scope})
    return json.loads(stack_render.one(POLICY).inputs["policy"])


def statements(stack: str, scope: str) -> list[dict[str, Any]]:
    return rendered(stack, scope)["Statement"]


# ----------------------------------------------------------------- the IAM reference


def arn_pattern(raw: str) -> re.Pattern[str]:
    """policy_sentry's ``arn:${Partition}:ec2:${Region}:${Account}:volume/${VolumeId}``
    as a regex: partition, region, account within their field; the rest any text."""
    parts = re.split(r"(\$\{[^}]+\})", raw)
    regex = "".join(
        ("[^:]*" if p in ("${Partition}", "${Region}", "${Account}") else ".+")
        if p.startswith("${") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


@cache
def rows(action: str) -> tuple[dict[str, Any], ...]:
    service, name = action.split(":")
    data = actions_db.get_action_data(service, name)
    assert data and data.get(service), f"{action}: not in the IAM reference"
    return tuple(data[service])


def resource_rows(action: str, resource: str) -> list[dict[str, Any]]:
    """The action's rows (resource types) whose ARN format ``resource`` matches."""
    return [r for r in rows(action) if r["resource_arn_format"] != "*"
            and arn_pattern(r["resource_arn_format"]).match(resource)]


@cache
def resource_type_keys(raw_arn: str) -> frozenset[str]:
    service = raw_arn.split(":")[2]
    for name in arns_db.get_arn_types_for_service(service):
        details = arns_db.get_arn_type_details(service, name)
        if details["raw_arn"] == raw_arn:
            return frozenset(details["condition_keys"])
    return frozenset()


def key_supported(key: str, supported: set[str]) -> bool:
    """``aws:ResourceTag/ami-upgrade:parameter`` against ``aws:ResourceTag/${TagKey}``..."""
    if not TAG_KEYS.match(key) and key.startswith("aws:"):
        return True          # a global key
    return any(arn_pattern_key(s).match(key) for s in supported)


def arn_pattern_key(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{[^}]+\})", template)
    return re.compile("^" + "".join(".+" if p.startswith("${") else re.escape(p)
                                    for p in parts) + "$", re.IGNORECASE)


def condition_keys(statement: dict[str, Any]) -> list[str]:
    return [key for block in statement.get("Condition", {}).values() for key in block]


def reference_problems(statement: dict[str, Any]) -> list[str]:
    """What the IAM reference does not support in one statement, as sentences."""
    problems = []
    resources = statement["Resource"]
    resources = [resources] if isinstance(resources, str) else resources
    for action in statement["Action"]:
        action_level = {k for r in rows(action) if r["resource_arn_format"] == "*"
                        for k in r["condition_keys"]}
        typed = [r for r in rows(action) if r["resource_arn_format"] != "*"]
        for resource in resources:
            if resource == "*":
                if typed:
                    problems.append(f"{action} on *: it supports resource-level permissions "
                                    f"({', '.join(r['resource_arn_format'] for r in typed)})")
                matched: list[dict[str, Any]] = []
            else:
                matched = resource_rows(action, resource)
                if not matched:
                    problems.append(f"{action}: {resource} is none of its resource types")
                    continue
            supported = set(action_level)
            for row in matched:
                supported |= set(row["condition_keys"])
                supported |= resource_type_keys(row["resource_arn_format"])
            problems += [f"{action} on {resource}: condition key {key} is not supported"
                         for key in condition_keys(statement)
                         if not key_supported(key, supported)]
    return problems


@pytest.mark.parametrize(("stack", "scope"), CASES)
def test_every_action_resource_and_condition_key_is_in_the_iam_reference(stack, scope):
    problems = [f"{s['Sid']}: {p}" for s in statements(stack, scope)
                for p in reference_problems(s)]
    assert problems == []


def test_the_reference_check_catches_what_aws_would_not_match():
    """The check fails on what IAM would silently never match (the test can fail)."""
    assert reference_problems({"Action": ["ec2:AttachVolume"], "Resource": [
        "arn:aws:ec2:us-east-1:123456789012:snapshot/*"]}) != []
    assert reference_problems({"Action": ["ec2:DescribeInstanceAttribute"],
                               "Resource": "*"}) != []
    assert reference_problems({
        "Action": ["ssm:GetParameter"],
        "Resource": ["arn:aws:ssm:us-east-1:123456789012:parameter/x"],
        "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}}) != []
    assert reference_problems({
        "Action": ["iam:PassRole"], "Resource": ["arn:aws:iam::123456789012:role/ec2/*"],
        "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}}) == []


# -------------------------------------------------------------------- parliament


def granted_elsewhere(policy: dict[str, Any], finding_location: int, action: str,
                      required_format: str) -> bool:
    """Another statement grants ``action`` on a resource of ``required_format``'s type,
    one that policy_sentry's IAM reference also lists as a resource type of the action."""
    pattern = parliament_format(required_format)
    return any(action in s["Action"] and any(pattern.match(r) and resource_rows(action, r)
                                             for r in s["Resource"])
               for i, s in enumerate(policy["Statement"]) if i != finding_location)


def parliament_format(required_format: str) -> re.Pattern[str]:
    """parliament's ``arn:*:ec2:*:*:volume/*`` as a regex over rendered ARNs."""
    return re.compile("^" + ".*".join(map(re.escape, required_format.split("*"))) + "$")


def statement_index(policy: dict[str, Any], text: str, column: int) -> int:
    """The statement parliament's location (a column of the one-line JSON) starts at."""
    sid = re.search(r'"Sid": "([^"]+)"', text[column:])
    assert sid, column
    return [s["Sid"] for s in policy["Statement"]].index(sid[1])


def split_launch(policy: dict[str, Any], finding: Any, text: str) -> bool:
    """RESOURCE_MISMATCH: each resource type parliament misses in this statement is granted
    by another one. IAM authorises each resource of a request against every statement, so a
    call spread over statements (to condition some resource types only: the scope tag on
    instances, the in-flight tag on volumes) is whole; parliament checks one at a time."""
    index = statement_index(policy, text, finding.location["column"])
    return all(granted_elsewhere(policy, index, m["action"], m["required_format"])
               for m in finding.detail)


def pass_role_bounded(policy: dict[str, Any], finding: Any, text: str) -> bool:
    """PRIVILEGE_ESCALATION (CreateEC2WithExistingIP: PassRole + RunInstances) is raised on
    the actions alone. It is bounded when PassRole names the configured instance roles
    only (never role/*) and only for EC2: the function can start an instance with a role
    its fleet already runs with, which is the relaunch's job."""
    passing = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    return (finding.location.get("type") == "CreateEC2WithExistingIP" and len(passing) == 1
            and passing[0]["Action"] == ["iam:PassRole"]
            and all(not r.endswith(":role/*") for r in passing[0]["Resource"])
            and passing[0]["Condition"] == {
                "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}})


def management_bounded(policy: dict[str, Any], finding: Any, text: str) -> bool:
    """PERMISSIONS_MANAGEMENT_ACTIONS: iam:PassRole (bounded as above) and kms:CreateGrant,
    which EC2 needs for encrypted volumes: only through EC2, only for AWS resources, only
    on the configured keys."""
    if not set(finding.location["actions"]) <= {"iam:passrole", "kms:creategrant"}:
        return False
    grants = [s for s in policy["Statement"] if "kms:CreateGrant" in s["Action"]]
    return all(s["Condition"].get("Bool") == {"kms:GrantIsForAWSResource": "true"}
               and "kms:ViaService" in s["Condition"]["StringEquals"]
               and all(":key/" in r for r in s["Resource"]) for s in grants)


# The one list of parliament findings accepted, and why (README, "Permissions").
SUPPRESSED = {
    "RESOURCE_MISMATCH": split_launch,
    "PRIVILEGE_ESCALATION": pass_role_bounded,
    "PERMISSIONS_MANAGEMENT_ACTIONS": management_bounded,
}


def unaccounted(policy: dict[str, Any]) -> list[str]:
    text = json.dumps(policy)
    analysed = parliament.analyze_policy_string(text, include_community_auditors=True)
    # The community auditors put their detail (type, actions) in the finding's location.
    return [f"{f.issue}: {f.detail or f.location}" for f in analysed.findings
            if f.issue not in SUPPRESSED or not SUPPRESSED[f.issue](policy, f, text)]


@pytest.mark.parametrize(("stack", "scope"), CASES)
def test_parliament_finds_nothing_unaccounted_for(stack, scope):
    assert unaccounted(rendered(stack, scope)) == []


def test_parliament_suppressions_do_not_hide_real_findings():
    """Each suppression re-checks its reason: PassRole on role/*, a RunInstances statement
    whose other resource types nobody grants, a grant without the KMS conditions."""
    policy = rendered("dev", "tagged")
    widened = json.loads(json.dumps(policy))
    for s in widened["Statement"]:
        if s["Action"] == ["iam:PassRole"]:
            s["Resource"] = [f"arn:aws:iam::{ACCOUNT}:role/*"]
        if s["Action"] == ["kms:CreateGrant"]:
            del s["Condition"]["Bool"]
    widened["Statement"] = [s for s in widened["Statement"] if s["Sid"] != "LaunchResources"]
    issues = {line.split(":")[0] for line in unaccounted(widened)}
    assert issues == {"PRIVILEGE_ESCALATION", "PERMISSIONS_MANAGEMENT_ACTIONS",
                      "RESOURCE_MISMATCH"}
    assert unaccounted(policy) == []
