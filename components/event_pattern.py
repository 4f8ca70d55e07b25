"""The EventBridge pattern that starts a run: read from the trigger registry, no Pulumi import.

Used by the trigger component (the deployed rule) and by the sandbox demo, so the
event that reaches the Lambda function in the demo is routed by the very same
pattern as in AWS. The triggers themselves (their patterns, how the function
reads their events, what each needs: a trail for ``cloudtrail``, nothing for
``parameter-store-change``) live in ``handler/triggers.py``.
"""

from __future__ import annotations

from handler.triggers import REGISTRY, TRIGGERS, parameter_arn_suffix, trigger

CLOUDTRAIL_DETAIL_TYPE = REGISTRY["cloudtrail"].detail_type
PARAMETER_STORE_CHANGE_DETAIL_TYPE = REGISTRY["parameter-store-change"].detail_type

__all__ = ["CLOUDTRAIL_DETAIL_TYPE", "PARAMETER_STORE_CHANGE_DETAIL_TYPE", "TRIGGERS",
           "event_pattern", "parameter_arn_suffix"]


def event_pattern(trigger_name: str, parameter_name: str) -> dict:
    """The EventBridge event pattern for ``trigger_name`` on ``parameter_name`` (a fresh dict)."""
    if not parameter_name:
        raise ValueError("parameter_name: required")
    return trigger(trigger_name).event_pattern(parameter_name)
