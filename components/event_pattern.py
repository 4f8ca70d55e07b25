"""The EventBridge pattern that starts a run: one pure function, no Pulumi import.

Used by the trigger component (the deployed rule) and by the sandbox demo, so the
event that reaches the Lambda function in the demo is routed by the very same
pattern as in AWS.

Two triggers:

``cloudtrail``
    The ``PutParameter`` API call as recorded by CloudTrail
    (``detail-type: "AWS API Call via CloudTrail"``). Needs a trail that logs
    management events in the region. Tightened over the original design with
    ``detail.eventSource`` and ``"errorCode": [{"exists": false}]`` so failed calls
    (``ParameterAlreadyExists``, ``AccessDenied`` ...) never invoke the function.
    ``requestParameters.name`` is whatever the caller passed: usually the name,
    but SSM also accepts the parameter's ARN, so the pattern matches
    ``.../parameter/<name>`` by suffix as well (``:parameter`` + the name with
    its leading slash, so ``/x/ami/linux/test`` never matches ``/ami/linux/test``).

``parameter-store-change``
    The native ``Parameter Store Change`` event, ``operation`` ``Create`` or
    ``Update``; needs no trail. ``detail.name`` is always the plain name. An
    ``Update`` carrying ``detail.exception`` (AWS rejected the value, e.g. not an
    available image) still matches: the function reports it and touches nothing.
"""

from __future__ import annotations

TRIGGERS = ("cloudtrail", "parameter-store-change")

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
PARAMETER_STORE_CHANGE_DETAIL_TYPE = "Parameter Store Change"


def parameter_arn_suffix(parameter_name: str) -> str:
    """The tail of the parameter's ARN: ``:parameter/ami/linux/test`` for ``/ami/linux/test``."""
    return ":parameter/" + parameter_name.lstrip("/")


def event_pattern(trigger: str, parameter_name: str) -> dict:
    """The EventBridge event pattern for ``trigger`` on ``parameter_name`` (a fresh dict)."""
    if not parameter_name:
        raise ValueError("parameter_name: required")
    if trigger == "cloudtrail":
        return {
            "source": ["aws.ssm"],
            "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
            "detail": {
                "eventSource": ["ssm.amazonaws.com"],
                "eventName": ["PutParameter"],
                "requestParameters": {
                    "name": [parameter_name, {"suffix": parameter_arn_suffix(parameter_name)}],
                },
                "errorCode": [{"exists": False}],
            },
        }
    if trigger == "parameter-store-change":
        return {
            "source": ["aws.ssm"],
            "detail-type": [PARAMETER_STORE_CHANGE_DETAIL_TYPE],
            "detail": {
                "name": [parameter_name],
                "operation": ["Create", "Update"],
            },
        }
    raise ValueError(f"trigger: expected one of {', '.join(TRIGGERS)}, got {trigger!r}")
