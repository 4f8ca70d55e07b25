"""AWS as the engine uses it: the clients, one describe helper, one error formatter, tags.

Every read of many resources goes through :func:`describe` (paginated when the
operation pages, batched at ``BATCH`` values per request), so no module writes
its own pagination or batching. Every ClientError becomes text through
:func:`describe_error`, so reports quote AWS the same way everywhere.

The client types come from the boto3 stubs, a development dependency only: the
Lambda package imports them under ``TYPE_CHECKING`` and ships stdlib + botocore.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_elb.client import ElasticLoadBalancingClient
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client
    from types_boto3_events.client import EventBridgeClient
    from types_boto3_iam.client import IAMClient
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_sns.client import SNSClient
    from types_boto3_ssm.client import SSMClient

# Standard retries: a throttled or failed call is retried alone, with jittered exponential
# back-off (up to 20 s), 10 retries. Not adaptive: its client-side limiter is per client
# and slows every operation after one throttled call, while EC2 throttles each API
# separately (RunInstances' own bucket is 5 calls, 2 a second, so a wave of launches
# meets it): the benchmark measured 100 replacements at parallelism 10 in 1.15x the
# ideal time with adaptive retries, 1.09x with standard (benchmarks/RESULTS.md).
RETRY_CONFIG: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 10}}
BATCH = 100   # values per request: AWS allows 200 per filter, 100 for DescribeInstanceTypes

# botocore's data loader, kept while the process lives (a warm Lambda reuses it).
_LOADER: Any = None


@dataclass(frozen=True)
class Clients:
    """The AWS clients the engine is given: built once per invocation, standard retries."""

    ec2: EC2Client
    autoscaling: AutoScalingClient
    ssm: SSMClient
    lambda_: LambdaClient
    sns: SNSClient
    # Target-group registrations, read before relaunching (standalone/preflight.py).
    elbv2: ElasticLoadBalancingv2Client | None = None
    iam: IAMClient | None = None   # instance profiles: their roles (passable.py), existence
    elb: ElasticLoadBalancingClient | None = None   # ... and classic load balancers
    events: EventBridgeClient | None = None   # the follow-up rule (handler/follow_up.py)
    kms: Any = None   # the AWS-managed EBS key's ARN (standalone/preflight.py); no stubs pinned

    @classmethod
    def create(cls, session: Any = None) -> Clients:
        """Clients with standard retries (throttling backs off instead of failing the run).

        A fresh session per invocation (credentials and event hooks are not carried
        over), sharing one botocore data loader: parsing the service models (EC2's is
        megabytes of JSON) would otherwise cost most of a second per invocation.
        """
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session(botocore_session=core_session())
        unique_search_paths()
        config = Config(**RETRY_CONFIG, user_agent_extra="ami-upgrade")
        return cls(session.client("ec2", config=config),
                   session.client("autoscaling", config=config),
                   session.client("ssm", config=config),
                   session.client("lambda", config=config),
                   session.client("sns", config=config),
                   session.client("elbv2", config=config),
                   session.client("iam", config=config),
                   session.client("elb", config=config),
                   session.client("events", config=config),
                   session.client("kms", config=config))


def core_session() -> Any:
    """A new botocore session on the process-wide data loader (models parsed once)."""
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _LOADER)
    return core


def unique_search_paths() -> None:
    """boto3 appends its data path to the loader once per session: keep one of each."""
    if _LOADER is not None:
        _LOADER.search_paths[:] = list(dict.fromkeys(_LOADER.search_paths))


# --------------------------------------------------------------------------- reads


def batches(values: Iterable[str], size: int = BATCH) -> Iterator[list[str]]:
    """``values`` sorted, without repeats, in requests of at most ``size``."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def describe(client: EC2Client | AutoScalingClient, operation: str, key: str, *,
             ids: Iterable[str] | None = None,
             id_param: str | None = None, id_filter: str | None = None,
             filters: Sequence[Mapping[str, Any]] = (), per_request: int = BATCH,
             **params: Any) -> list[dict[str, Any]]:
    """Every item under ``key`` that ``operation`` returns, over all pages and batches.

    With ``ids``, one request per ``per_request`` of them, as the parameter ``id_param``
    (``InstanceIds=[...]``) or as the filter ``id_filter`` (``instance-id``); no
    ids, no request. ``filters`` go to every request.
    """
    pager: Any = client   # the operation is named at run time: past the stubs' overloads
    if ids is None:
        groups: Iterable[list[str] | None] = [None]
    else:
        groups = list(batches(ids, per_request))
    found: list[dict[str, Any]] = []
    for batch in groups:
        kwargs = dict(params)
        request_filters = [dict(f) for f in filters]
        if batch is not None and id_filter:
            request_filters.append({"Name": id_filter, "Values": batch})
        elif batch is not None and id_param:
            kwargs[id_param] = batch
        if request_filters:
            kwargs["Filters"] = request_filters
        if pager.can_paginate(operation):
            pages: Iterable[Mapping[str, Any]] = pager.get_paginator(operation).paginate(
                **kwargs)
        else:
            pages = [getattr(pager, operation)(**kwargs)]
        for page in pages:
            found += page.get(key, [])
    return found


def describe_instances(ec2: EC2Client, filters: Sequence[Mapping[str, Any]] = (), *,
                       ids: Iterable[str] | None = None, id_filter: str = "instance-id"
                       ) -> list[dict[str, Any]]:
    """Instances (not reservations) matching ``filters``, and with ``ids``, those."""
    reservations = describe(ec2, "describe_instances", "Reservations", ids=ids,
                            id_filter=id_filter, filters=filters)
    return [i for r in reservations for i in r.get("Instances", [])]


# -------------------------------------------------------------------------- errors


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# Errors that say "not now" rather than "no": AWS's throttling, capacity and service
# errors, and the eventual consistency of a resource just created (a new instance's ID
# may be unknown to the next call for a few seconds). Retried later, never a failure.
TRANSIENT_CODES = frozenset({
    # throttling, past the SDK's own retries
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
    "EC2ThrottledException", "SlowDown", "PriorRequestNotComplete", "IDPCommunicationError",
    "ProvisionedThroughputExceededException", "BandwidthLimitExceeded",
    # the service itself
    "ServiceUnavailable", "ServiceUnavailableException", "Unavailable", "InternalError",
    "InternalFailure", "InternalServerError", "InternalServiceError", "RequestTimeout",
    "RequestTimeoutException", "RequestExpired",
    # capacity: another AZ, type or minute may have it
    "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity", "InsufficientCapacityOnHost",
    "InsufficientAddressCapacity", "InsufficientFreeAddressesInSubnet",
    # eventual consistency (the machines wait for states themselves: an
    # IncorrectInstanceState after that is AWS refusing, so permanent)
    "InvalidInstanceID.NotFound", "ConcurrentTagAccess",
})


def is_transient(error: BaseException) -> bool:
    """True when ``error`` may well not happen again: retry later, do not fail or roll back.

    The one classification every caller uses. A ClientError is transient when its code
    is in ``TRANSIENT_CODES`` or AWS answered 5xx/429; botocore's own errors (connection
    reset, read timeout, endpoint unreachable) are transient; anything else is permanent.
    """
    if isinstance(error, ClientError):
        if error_code(error) in TRANSIENT_CODES:
            return True
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return int(status) >= 500 or int(status) == 429
    return isinstance(error, BotoCoreError)


def describe_error(error: ClientError | BotoCoreError, operation: str = "call") -> str:
    """AWS's own words: ``RunInstances failed: InsufficientInstanceCapacity: ...``.

    ``operation`` names the call when the error does not (it always does from botocore).
    """
    if not isinstance(error, ClientError):
        return f"{operation} failed: {type(error).__name__}: {error}"
    e = error.response.get("Error", {})
    name = getattr(error, "operation_name", None) or operation
    return f"{name} failed: {e.get('Code') or 'Error'}: {e.get('Message', '')}".rstrip(": ")


# ---------------------------------------------------------------------------- tags


def tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as a dict."""
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def tag_list(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    """A dict as AWS's ``[{"Key": k, "Value": v}]``, values cut to AWS's 256 characters."""
    return [{"Key": k, "Value": v[:256]} for k, v in mapping.items()]
