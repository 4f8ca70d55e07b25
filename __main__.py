"""The ami-upgrade Pulumi program: read the stack's configuration once, build the workflow."""

import pulumi

from components.stack_settings import NAMESPACE, load_stack_settings
from components.workflow import AmiUpgradeWorkflow, AmiUpgradeWorkflowArgs


def configured_values() -> dict[str, str]:
    """Every ``ami-upgrade:*`` key the stack sets (unknown keys included, so typos fail)."""
    prefix = f"{NAMESPACE}:"
    keys = set(pulumi.runtime.get_config_env()) | set(pulumi.runtime.config.CONFIG.get())
    config = pulumi.Config(NAMESPACE)
    return {key[len(prefix):]: config.get(key[len(prefix):])
            for key in sorted(keys) if key.startswith(prefix)}


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
