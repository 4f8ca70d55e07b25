"""What AWS refuses at ``pulumi up`` for this program's resources, checked at preview.

Pure functions, no Pulumi import: ``load_stack_settings`` calls :func:`check_limits`
with the stack's settings, so a configuration AWS would reject fails the preview with
a message naming the key to change. Tags are checked in ``components/tags.py``,
refresh preferences in ``handler/refresh_preferences.py``, names and values of single
keys by their parsers in the settings schema; the rules here span several keys or the
rendered resources (the environment, the role policy, derived names). The function,
alias and log group names need no rule here: the function name's pattern (64 letters,
digits, ``-``, ``_``) keeps ``/aws/lambda/<name>`` valid, and the rule and role are
auto-named from fixed logical names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from components.policy import lambda_policy_document
from handler.schema import SettingsError

LAMBDA_ENVIRONMENT_LIMIT = 4096        # bytes, all variables together
PARAMETER_VALUE_LIMITS = {"Standard": 4096, "Advanced": 8192}
INLINE_POLICY_LIMIT = 10_240           # characters, whitespace excluded, all inline policies
PARAMETER_ARN_LIMIT = 1011             # SSM: the name including its full ARN
ROLE_DESCRIPTION_LIMIT = 1000
PLACEHOLDER_ACCOUNT = "123456789012"   # every account ID has 12 digits: sizes are exact


def partition_of(region: str) -> str:
    return ("aws-us-gov" if region.startswith("us-gov-") else "aws-cn"
            if region.startswith("cn-") else "aws-iso" if region.startswith("us-iso-")
            else "aws")


def dns_suffix_of(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def environment_size(variables: Mapping[str, str]) -> int:
    """The environment as Lambda measures it: the JSON of the variables, in bytes."""
    return len(json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
               .encode())


def policy_size(*documents: Mapping[str, Any]) -> int:
    """IAM's measure of a role's inline policies: their characters, whitespace excluded."""
    return sum(len(re.sub(r"\s", "", json.dumps(doc))) for doc in documents)


def parameter_arn_length(region: str, name: str) -> int:
    return len(f"arn:{partition_of(region)}:ssm:{region}:{PLACEHOLDER_ACCOUNT}:parameter/"
               f"{name.lstrip('/')}")


def role_policy(*, region: str, parameter_name: str, scope: str, function_name: str,
                log_group_name: str, exclusions_parameter_name: str | None,
                kms_key_arns: Sequence[str], notification_topic_arn: str | None,
                instance_roles: Sequence[str] = (), hub_event_bus_arn: str | None = None,
                allowed_ami_owners: Sequence[str] = ("self",)) -> dict[str, Any]:
    """The role policy the stack renders, with the placeholder account (same size)."""
    return lambda_policy_document(
        partition=partition_of(region), dns_suffix=dns_suffix_of(region), region=region,
        account=PLACEHOLDER_ACCOUNT, parameter_name=parameter_name, scope=scope,
        function_name=function_name, log_group_name=log_group_name,
        exclusions_parameter_name=exclusions_parameter_name, kms_key_arns=kms_key_arns,
        notification_topic_arn=notification_topic_arn, instance_roles=instance_roles,
        hub_event_bus_arn=hub_event_bus_arn, allowed_ami_owners=allowed_ami_owners)


def configuration_tier(document: str) -> str:
    """The SSM tier whose value limit holds ``document``; SettingsError if none does."""
    size = len(document.encode())
    for tier, limit in PARAMETER_VALUE_LIMITS.items():
        if size <= limit:
            return tier
    raise SettingsError(f"configuration: {size} bytes, more than an SSM parameter holds "
                        f"({PARAMETER_VALUE_LIMITS['Advanced']} bytes, Advanced tier)")


def largest(sizes: Mapping[str, int], count: int = 2) -> list[str]:
    return [k for k, _ in sorted(sizes.items(), key=lambda kv: -kv[1])[:count]]
