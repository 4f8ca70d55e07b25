"""The trigger registry: every event source that starts a run, in one place. Stdlib only.

One :class:`TriggerSpec` per trigger carries all the project knows about it: the
EventBridge pattern the stack deploys (``components/event_pattern.py``,
``components/trigger.py``), how the function reads the event (``events.py``), the
rule's description, and the event the embedded AWS emits (``sandbox/routing.py``).
A new trigger is one entry in :data:`REGISTRY` plus its recorded event in
``tests/fixtures/events/<fixture>.json`` (the tests walk the registry).

Most triggers follow the parameter (a value of ``ami-upgrade:trigger``). One follows the
estate: ``refresh-ended``, EC2 Auto Scaling's own event when an instance refresh ends,
deployed on a spoke's stack so that the spoke reports again once its refreshes are over
(the hub counts a spoke converged only then). Its event names a group, never the
parameter: the run re-derives everything, and a group out of scope is ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

SOURCE = "aws.ssm"


class EventError(ValueError):
    """The event is not one the function accepts; nothing is touched."""


T = TypeVar("T")


def typed(data: Mapping[str, Any], key: str, kind: type[T], where: str) -> T | None:
    """``data[key]`` when it is a ``kind`` (None when absent or null); EventError naming
    the field otherwise. Every event field is input from whoever may send the event: its
    type is checked before it is used, so a wrong shape ends in a report, not a traceback."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EventError(f"unsupported event: {where}.{key} must be a {_KINDS.get(kind, kind)}, "
                         f"got {type(value).__name__}")
    return value


_KINDS: dict[type, str] = {str: "string", dict: "JSON object", int: "integer", bool: "boolean"}


@dataclass(frozen=True)
class Parsed:
    """What one EventBridge event says: which parameter (None: the configured one), which
    group (an event of the estate), and whether it changed anything."""

    parameter_name: str | None
    event_version: int | None = None
    ignored_reason: str | None = None
    failure_reason: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Emulation:
    """What the sandbox knows when it emits the event AWS would emit after ``PutParameter``."""

    parameter_name: str
    region: str
    account: str
    version: int
    time: datetime
    operation: str = "Update"
    error_code: str | None = None
    group: str = ""            # an event of the estate: the group and its refresh
    refresh_id: str = ""


@dataclass(frozen=True)
class TriggerSpec:
    name: str                                      # the ``ami-upgrade:trigger`` value
    detail_type: str
    described: str                                 # in the rule's description
    fixture: str                                   # tests/fixtures/events/<fixture>.json
    detail_pattern: Callable[[str], dict]          # parameter name -> the pattern's ``detail``
    parse: Callable[[dict], Parsed]                # the event's ``detail`` -> Parsed / EventError
    emulate: Callable[[Emulation], tuple[dict, list[str]]]  # -> (detail, resources)
    source: str = SOURCE
    more_detail_types: tuple[str, ...] = ()        # further detail-types of the same trigger
    follows_parameter: bool = True                 # False: an event of the estate, in the
                                                   # stack's own account (not a choice of
                                                   # ``ami-upgrade:trigger``)

    @property
    def detail_types(self) -> tuple[str, ...]:
        return (self.detail_type, *self.more_detail_types)

    def rule_description(self, parameter_name: str) -> str:
        """The rule's description (EventBridge allows 512 characters)."""
        return f"ami-upgrade: {self.described} of {parameter_name}"

    def event_pattern(self, parameter_name: str) -> dict:
        """The rule's event pattern for ``parameter_name`` (a fresh dict)."""
        if not parameter_name:
            raise ValueError("parameter_name: required")
        owner, name = parameter_owner(parameter_name)
        pattern: dict[str, Any] = {"source": [self.source],
                                   "detail-type": list(self.detail_types)}
        if not self.follows_parameter:   # the account's own service events, any group
            return pattern
        pattern["detail"] = self.detail_pattern(name)
        return pattern if owner is None else {"account": [owner], **pattern}


def parameter_owner(parameter: str) -> tuple[str | None, str]:
    """(owner account, name) of a parameter named by ARN; (None, name) for a plain name.

    Another account's parameter (a hub's, shared through RAM) changes in that account:
    its events name the path, and only events sent by that account may match.
    """
    if parameter.startswith("arn:") and ":parameter/" in parameter:
        head, name = parameter.split(":parameter", 1)
        return head.rsplit(":", 1)[1], name
    return None, parameter


def parameter_arn_suffix(parameter_name: str) -> str:
    """The tail of the parameter's ARN: ``:parameter/ami/linux/test`` for ``/ami/linux/test``."""
    return ":parameter/" + parameter_name.lstrip("/")


# ------------------------------------------------------------------ cloudtrail
# The PutParameter API call as CloudTrail records it; needs a trail logging management
# events. Failed calls never match; the name may be given as the parameter's ARN.


def _cloudtrail_pattern(parameter_name: str) -> dict:
    return {
        "eventSource": ["ssm.amazonaws.com"],
        "eventName": ["PutParameter"],
        "requestParameters": {
            "name": [parameter_name, {"suffix": parameter_arn_suffix(parameter_name)}],
        },
        "errorCode": [{"exists": False}],
    }


def _cloudtrail_parse(detail: dict) -> Parsed:
    source = typed(detail, "eventSource", str, "detail")
    operation = typed(detail, "eventName", str, "detail")
    if source != "ssm.amazonaws.com" or operation != "PutParameter":
        raise EventError(f"unsupported CloudTrail event: {source!r} {operation!r} "
                         "(only ssm PutParameter)")
    request = typed(detail, "requestParameters", dict, "detail") or {}
    name = typed(request, "name", str, "detail.requestParameters")
    if not name:
        raise EventError("CloudTrail PutParameter event without requestParameters.name")
    error = typed(detail, "errorCode", str, "detail")
    if error:
        return Parsed(name, ignored_reason=f"PutParameter failed ({error}): nothing changed")
    response = typed(detail, "responseElements", dict, "detail") or {}
    version = typed(response, "version", int, "detail.responseElements")
    return Parsed(name, event_version=version)


PIPELINE_ROLE = "arn:aws:sts::{account}:assumed-role/image-release/release-pipeline"


def _cloudtrail_emulate(e: Emulation) -> tuple[dict, list[str]]:
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "arn": PIPELINE_ROLE.format(account=e.account),
                         "accountId": e.account},
        "eventTime": e.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ssm.amazonaws.com",
        "eventName": "PutParameter",
        "awsRegion": e.region,
        "sourceIPAddress": "203.0.113.24",
        "userAgent": "aws-cli/2.22.4 command/ssm.put-parameter",
        "requestParameters": {"name": e.parameter_name, "type": "String",
                              "value": "HIDDEN_DUE_TO_SECURITY_REASONS",
                              "overwrite": True, "dataType": "aws:ec2:image"},
        "responseElements": None if e.error_code else {"version": e.version, "tier": "Standard"},
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": e.account,
        "eventCategory": "Management",
    }
    if e.error_code:
        detail["errorCode"] = e.error_code
        detail["errorMessage"] = f"{e.error_code} (emulated)"
    return detail, []


# ------------------------------------------------------ parameter-store-change
# SSM's native event, operation Create or Update; needs no trail. An Update carrying
# ``exception`` (AWS rejected the value) still matches: the function reports it.


def _store_change_pattern(parameter_name: str) -> dict:
    return {"name": [parameter_name], "operation": ["Create", "Update"]}


def _store_change_parse(detail: dict) -> Parsed:
    name = typed(detail, "name", str, "detail")
    operation = typed(detail, "operation", str, "detail")
    exception = typed(detail, "exception", str, "detail")
    if not name:
        raise EventError("Parameter Store Change event without detail.name")
    if exception:
        return Parsed(name, failure_reason=f"SSM rejected the new value of {name}: {exception}")
    if operation in ("Create", "Update"):
        return Parsed(name)
    if operation in ("Delete", "LabelParameterVersion"):
        return Parsed(name, ignored_reason=f"operation {operation} does not change the AMI")
    raise EventError(f"unsupported Parameter Store Change operation {operation!r}")


def _store_change_emulate(e: Emulation) -> tuple[dict, list[str]]:
    detail = {"operation": e.operation, "name": e.parameter_name, "type": "String",
              "dataType": "aws:ec2:image", "description": "the image the fleet follows"}
    return detail, [f"arn:aws:ssm:{e.region}:{e.account}:parameter{e.parameter_name}"]


# -------------------------------------------------------------- refresh-ended
# EC2 Auto Scaling's events when an instance refresh ends (Amazon EventBridge events
# reference, "Amazon EC2 Auto Scaling events"); emitted by AWS in the group's account and
# region, on its default bus. Deployed on spoke stacks: the run they start re-derives the
# estate and reports to the hub again.

REFRESH_ENDED = "refresh-ended"
AUTOSCALING_SOURCE = "aws.autoscaling"
REFRESH_ENDED_DETAIL_TYPES: Mapping[str, str] = MappingProxyType({   # by refresh status
    "Successful": "EC2 Auto Scaling Instance Refresh Succeeded",
    "Failed": "EC2 Auto Scaling Instance Refresh Failed",
    "Cancelled": "EC2 Auto Scaling Instance Refresh Cancelled",
    "RollbackSuccessful": "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
    "RollbackFailed": "EC2 Auto Scaling Instance Refresh Rollback Failed",
})


def _refresh_ended_pattern(parameter_name: str) -> dict:
    return {}   # a pattern cannot know the groups in scope: the run decides


def _refresh_ended_parse(detail: dict) -> Parsed:
    group = typed(detail, "AutoScalingGroupName", str, "detail")
    if not group:
        raise EventError("instance refresh event without detail.AutoScalingGroupName")
    typed(detail, "InstanceRefreshId", str, "detail")
    return Parsed(None, group=group)


def _refresh_ended_emulate(e: Emulation) -> tuple[dict, list[str]]:
    detail = {"InstanceRefreshId": e.refresh_id or str(uuid.uuid4()),
              "AutoScalingGroupName": e.group}
    arn = (f"arn:aws:autoscaling:{e.region}:{e.account}:autoScalingGroup:"
           f"{uuid.uuid5(uuid.NAMESPACE_URL, e.group)}:autoScalingGroupName/{e.group}")
    return detail, [arn]


# -------------------------------------------------------------------- registry

REGISTRY: Mapping[str, TriggerSpec] = MappingProxyType({spec.name: spec for spec in (
    TriggerSpec("cloudtrail", "AWS API Call via CloudTrail", "PutParameter (CloudTrail)",
                "cloudtrail-put-parameter", _cloudtrail_pattern, _cloudtrail_parse,
                _cloudtrail_emulate),
    TriggerSpec("parameter-store-change", "Parameter Store Change", "Parameter Store Change",
                "parameter-store-change-update", _store_change_pattern, _store_change_parse,
                _store_change_emulate),
    TriggerSpec(REFRESH_ENDED, REFRESH_ENDED_DETAIL_TYPES["Successful"],
                "an instance refresh ended in the estate", "autoscaling-refresh-succeeded",
                _refresh_ended_pattern, _refresh_ended_parse, _refresh_ended_emulate,
                source=AUTOSCALING_SOURCE,
                more_detail_types=tuple(REFRESH_ENDED_DETAIL_TYPES.values())[1:],
                follows_parameter=False),
)})
TRIGGERS = tuple(name for name, spec in REGISTRY.items() if spec.follows_parameter)
"""The values of ``ami-upgrade:trigger``: the triggers that follow the parameter."""
DEFAULT_TRIGGER = "parameter-store-change"


def trigger(name: str, key: str = "trigger") -> TriggerSpec:
    """The registered trigger ``name``; ValueError naming ``key`` and the known ones."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"{key}: expected one of {', '.join(TRIGGERS)}, got {name!r}")
    return spec


def by_detail_type(source: Any, detail_type: Any) -> TriggerSpec | None:
    """The trigger whose events carry ``source`` and ``detail_type``, if any."""
    return next((s for s in REGISTRY.values()
                 if s.source == source and detail_type in s.detail_types), None)
