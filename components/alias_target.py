"""A rule that invokes the function's alias: the permission first, then the target.

The trigger, the scheduled reconcile and the follow-up rule all invoke the alias the
same way; the target depends on the permission, since a target without it would drop
the first events.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws


def invoke_alias(parent: pulumi.Resource, name: str, rule: aws.cloudwatch.EventRule, *,
                 function_name: pulumi.Input[str], alias_name: pulumi.Input[str],
                 alias_arn: pulumi.Input[str], event: dict[str, Any] | None = None,
                 ) -> tuple[aws.lambda_.Permission, aws.cloudwatch.EventTarget]:
    """``<name>-permission`` (``rule`` may invoke the alias) and ``<name>-target``
    (the alias, with ``event`` as its input when given, else the matched event)."""
    permission = aws.lambda_.Permission(
        f"{name}-permission",
        action="lambda:InvokeFunction",
        function=function_name,
        qualifier=alias_name,
        principal="events.amazonaws.com",
        source_arn=rule.arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    target = aws.cloudwatch.EventTarget(
        f"{name}-target",
        rule=rule.name,
        arn=alias_arn,
        input=json.dumps(event) if event is not None else None,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[permission]),
    )
    return permission, target
