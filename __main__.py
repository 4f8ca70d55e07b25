"""The ami-upgrade Pulumi program: read the stack's configuration once, build the workflow."""

import json

import pulumi

from components.policy import engine_tag_guard
from components.stack_settings import KNOWN_KEYS, NAMESPACE, load_stack_settings
from components.workflow import AmiUpgradeWorkflow, AmiUpgradeWorkflowArgs


def configured_values() -> dict[str, str | None]:
    """Every ``ami-upgrade:*`` key the stack sets, through public Pulumi API only.

    Known keys are read with ``pulumi.Config``. A misspelt key must fail the preview,
    and ``pulumi.Config`` cannot list keys: the CLI hands the program its whole
    configuration in ``PULUMI_CONFIG`` (``pulumi.runtime.get_config_env``), so the
    keys of our namespace found there that the schema does not know are passed on
    and refused by :func:`load_stack_settings`, naming them.
    """
    config = pulumi.Config(NAMESPACE)
    values = {key: config.get(key) for key in KNOWN_KEYS}
    prefix = f"{NAMESPACE}:"
    for full_key in pulumi.runtime.get_config_env():
        key = full_key.removeprefix(prefix).removeprefix("config:")
        if full_key.startswith(prefix) and key not in values:
            values[key] = ""
    return {key: value for key, value in values.items() if value is not None}


settings = load_stack_settings(
    configured_values(),
    stack=pulumi.get_stack(),
    region=pulumi.Config("aws").get("region"),
    project=pulumi.get_project(),
)
workflow = AmiUpgradeWorkflow("ami-upgrade", AmiUpgradeWorkflowArgs(settings=settings))

pulumi.export("function_name", workflow.function_name)
pulumi.export("alias_arn", workflow.alias_arn)
pulumi.export("rule_arn", workflow.rule_arn)
pulumi.export("role_arn", workflow.role_arn)
# What a customer attaches so that only the function writes its tags (docs/security.md):
# the same document as an IAM policy (or permissions boundary) and as an SCP.
pulumi.export("engine_tag_guard_policy",
              workflow.role_arn.apply(lambda arn: json.dumps(engine_tag_guard([arn]))))
