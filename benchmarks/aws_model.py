"""A model of real AWS on top of the embedded AWS: per-call latency and request-rate limits.

Installed around moto's ``BaseResponse.call_action`` (outside the fault injection), it
charges every call of the function its latency on the sandbox's emulated clock, and
keeps token buckets as AWS does. A call that finds its bucket empty is answered with
AWS's own throttling error (``RequestLimitExceeded`` for EC2, ``Throttling`` / "Rate
exceeded" for Auto Scaling), so botocore's retry path (the function uses standard
retries; the adaptive mode's client-side rate limiter is modelled too) runs for real;
botocore's back-off sleeps and that limiter wait on the emulated clock instead of the
wall clock.

EC2 (verified 2026-11-27 against "Request throttling for the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): "each API is
evaluated individually" (one request bucket per API), with the size / refill per second
of its category: non-mutating 100 / 20; unfiltered and unpaginated non-mutating 50 / 10
(only DescribeInstances, DescribeInstanceStatus, DescribeNetworkInterfaces,
DescribeSecurityGroups, DescribeSnapshots, DescribeSpotInstanceRequests and
DescribeVolumes, when called with neither a filter nor pagination); mutating 50 / 5;
resource-intensive 50 / 5 (security-group ingress, key pairs, VPC peering, Spot
requests: nothing the function calls); console non-mutating 100 / 10 (not modelled).
"Uncategorized actions" have their own figures, among them CreateLaunchTemplateVersion
100 / 5, CreateTags and DeleteTags 100 / 10, RunInstances and StartInstances 5 / 2,
TerminateInstances 100 / 5 (``EC2_UNCATEGORIZED``); StopInstances, AttachVolume and
DetachVolume are plain mutating. RunInstances, StartInstances, StopInstances and
TerminateInstances also draw one resource token per instance: 1000 / 2, 1000 / 2,
1000 / 20, 1000 / 20. These are an account's defaults (AWS raises them on request).
The model reads "a filter" literally: IDs alone (``InstanceIds``) are not a filter, so
such a call draws from the unfiltered bucket (the pessimistic reading).

Auto Scaling publishes no figures. The Amazon EC2 Auto Scaling API Reference
("Welcome", section "API request rate") says it "throttles API requests based on a
shared API bucket" (DescribeAutoScalingGroups and DescribeScheduledActions "use tokens
from the same bucket"), so the model keeps ONE bucket for every Auto Scaling call; its
size and refill (``AUTOSCALING_BUCKET``, 100 / 20) are an assumption of this project,
configurable (``--autoscaling-bucket SIZE,REFILL``).

Latency: AWS publishes no per-call latency figure for EC2 or Auto Scaling (none found
in the EC2 or Auto Scaling documentation). The default (``DEFAULT_LATENCY``, 50 ms a
read, 150 ms a write) is an assumption of this project, configurable
(``--latency-ms READ,WRITE``).
"""

from __future__ import annotations

import collections
import math
import threading
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse

from sandbox.core import EmbeddedAws, patch_method

READ_PREFIXES = ("Describe", "Get", "List", "Search", "Lookup")


@dataclass(frozen=True)
class Bucket:
    size: float          # tokens the bucket holds when full
    refill: float        # tokens added per second


# EC2's request token buckets, one per API, by category (the doc's "Request token bucket
# sizes and refill rates").
EC2_REQUEST_BUCKETS = {
    "non-mutating": Bucket(100, 20),
    "unfiltered": Bucket(50, 10),          # non-mutating, unfiltered and unpaginated
    "mutating": Bucket(50, 5),
    "resource-intensive": Bucket(50, 5),
}
# The only actions with an unfiltered bucket (when called without a filter or pagination).
EC2_UNFILTERED_ACTIONS = frozenset({
    "DescribeInstances", "DescribeInstanceStatus", "DescribeNetworkInterfaces",
    "DescribeSecurityGroups", "DescribeSnapshots", "DescribeSpotInstanceRequests",
    "DescribeVolumes"})
EC2_RESOURCE_INTENSIVE = frozenset({
    "AcceptVpcPeeringConnection", "AuthorizeSecurityGroupIngress",
    "CancelSpotInstanceRequests", "CreateKeyPair", "CreateVpcPeeringConnection",
    "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
    "RevokeSecurityGroupIngress", "RequestSpotInstances"})
# "Uncategorized actions" with their own bucket: those the function (or its estate) uses.
EC2_UNCATEGORIZED = {
    "CopyImage": Bucket(100, 1),
    "CreateLaunchTemplateVersion": Bucket(100, 5),
    "CreateTags": Bucket(100, 10),
    "CreateVolume": Bucket(100, 5),
    "DeleteTags": Bucket(100, 10),
    "DeleteVolume": Bucket(100, 5),
    "ModifyLaunchTemplate": Bucket(100, 5),
    "RunInstances": Bucket(5, 2),
    "StartInstances": Bucket(5, 2),
    "TerminateInstances": Bucket(100, 5),
}
# EC2's resource token buckets: one token per instance the request names.
EC2_RESOURCE_BUCKETS = {"RunInstances": Bucket(1000, 2), "StartInstances": Bucket(1000, 2),
                        "StopInstances": Bucket(1000, 20),
                        "TerminateInstances": Bucket(1000, 20)}
# Auto Scaling: one bucket shared by every call (documented); its figures are ASSUMED.
AUTOSCALING_BUCKET = Bucket(100, 20)


def ec2_request_bucket(operation: str, params: Mapping[str, Any] | None = None) -> Bucket:
    """The request bucket EC2 documents for one call of ``operation``."""
    if operation in EC2_UNCATEGORIZED:
        return EC2_UNCATEGORIZED[operation]
    return EC2_REQUEST_BUCKETS[_ec2_category(operation, params or {})]


def rate_floor(ec2: Mapping[str, int], autoscaling: int = 0,
               autoscaling_bucket: Bucket = AUTOSCALING_BUCKET,
               instances: Mapping[str, int] | None = None) -> tuple[float, str]:
    """Seconds the rate limits alone need to serve ``ec2`` (operation -> calls, reads
    filtered or paginated) and ``autoscaling`` calls, and the bucket that binds.

    A full bucket serves ``size`` at once, then ``refill`` a second: ``n`` requests need
    at least ``(n - size) / refill`` seconds, whatever the engine, its parallelism or the
    latency. ``instances`` gives the instances per resource-limited operation (default
    one per call).
    """
    needs: list[tuple[float, str]] = [(0.0, "-")]
    if autoscaling:
        needs.append((_seconds(autoscaling, autoscaling_bucket), "Auto Scaling (shared)"))
    for op, n in ec2.items():
        needs.append((_seconds(n, ec2_request_bucket(op, {"Filter": True})), op))
        if op in EC2_RESOURCE_BUCKETS:
            count = (instances or {}).get(op, n)
            needs.append((_seconds(count, EC2_RESOURCE_BUCKETS[op]), f"{op} (instances)"))
    return max(needs, key=lambda need: need[0])


def _seconds(n: float, bucket: Bucket) -> float:
    return max(0.0, (n - bucket.size) / bucket.refill)


@dataclass(frozen=True)
class Latency:
    """Seconds one call takes, end to end, by kind (an assumption: see the module doc)."""

    read: float = 0.050
    write: float = 0.150

    def of(self, operation: str) -> float:
        return self.read if operation.startswith(READ_PREFIXES) else self.write


DEFAULT_LATENCY = Latency()


class _TokenBucket:
    def __init__(self, spec: Bucket, now: float) -> None:
        self.spec, self.tokens, self.at = spec, float(spec.size), now
        self.taken = 0.0    # tokens served over the run

    def take(self, amount: float, now: float) -> bool:
        if now > self.at:   # a worker's lane may be behind another's: never refill backwards
            self.tokens = min(self.spec.size, self.tokens + (now - self.at) * self.spec.refill)
            self.at = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        self.taken += amount
        return True


class Throttled(ServiceException):
    """AWS's answer when a request-rate limit is exceeded."""


@dataclass
class Model:
    """The latency and rate limits of real AWS, and what the calls met (``aws.model``).

    Calls overlap when made from several threads: the thread that made the model owns the
    clock; a call from any other thread charges its latency to that thread's lane, and
    the thread sees the clock plus its lane. When the owner next calls (or reads ``now``),
    the clock moves by the longest lane and the lanes restart: workers started together
    end together, after the slowest of them, as on real AWS.
    """

    aws: EmbeddedAws
    latency: Latency = DEFAULT_LATENCY
    throttling: bool = True
    throttle_every: int | None = None   # also throttle every n-th call (a busy account)
    autoscaling: Bucket = AUTOSCALING_BUCKET
    enabled: bool = False
    calls: collections.Counter = field(default_factory=collections.Counter)
    throttled: collections.Counter = field(default_factory=collections.Counter)
    first: dict[str, float] = field(default_factory=dict)     # op -> emulated time of 1st call
    last: dict[str, float] = field(default_factory=dict)      # op -> emulated time of last call
    pending: float = 0.0    # latency charged but not yet moved onto the clock
    lanes: dict[int, float] = field(default_factory=dict)     # thread -> its latency to come
    _buckets: dict[tuple[str, str], _TokenBucket] = field(default_factory=dict)
    _seen: int = 0
    _latest: float = 0.0    # the latest ``now`` any thread saw (botocore's clock)
    _owner: int = field(default_factory=threading.get_ident)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    FLUSH_SECONDS = 1.0     # the clock's listeners (refresh emulation...) run at most this late

    def now(self) -> float:
        with self._lock:
            me = threading.get_ident()
            if me == self._owner:
                self._join()
            now = self.aws.clock.monotonic() + self.pending + self.lanes.get(me, 0.0)
            self._latest = max(self._latest, now)
            return now

    def latest(self) -> float:
        """``now`` never going back, whichever thread asks (botocore's clocks): the owner's
        ``now`` (past every lane once joined), a worker's no earlier than any seen."""
        with self._lock:
            now = self.now()
            return now if threading.get_ident() == self._owner else self._latest

    def spend(self, seconds: float) -> None:
        """Time passes (a call's latency, a back-off): onto the clock once it adds up; from
        a thread other than the owner, onto its lane."""
        with self._lock:
            me = threading.get_ident()
            if me != self._owner:
                self.lanes[me] = self.lanes.get(me, 0.0) + seconds
                return
            self._join()
            self._spend(seconds)

    def _join(self) -> None:
        """The owner goes on once every worker's call has ended: the longest lane."""
        if self.lanes:
            longest = max(self.lanes.values())
            self.lanes.clear()
            self._spend(longest)

    def _spend(self, seconds: float) -> None:
        self.pending += seconds
        if self.pending >= self.FLUSH_SECONDS:
            pending, self.pending = self.pending, 0.0
            self.aws.advance(pending)

    def reset(self) -> None:
        self.calls.clear()
        self.throttled.clear()
        self.first.clear()
        self.last.clear()

    def floor(self) -> tuple[float, str]:
        """What the rate limits alone needed for the calls served (see ``rate_floor``)."""
        needs = [(0.0, "-")] + [
            (max(0.0, (b.taken - b.spec.size) / b.spec.refill),
             key[1] + (" (instances)" if key[0] == "resource" else ""))
            for key, b in self._buckets.items()]
        return max(needs, key=lambda need: need[0])

    def _bucket(self, key: tuple[str, str], spec: Bucket) -> _TokenBucket:
        if key not in self._buckets:
            self._buckets[key] = _TokenBucket(spec, self.now())
        return self._buckets[key]

    def _admit(self, service: str, operation: str, params: dict) -> bool:
        with self._lock:
            return self._admit_locked(service, operation, params)

    def _admit_locked(self, service: str, operation: str, params: dict) -> bool:
        self._seen += 1
        if self.throttle_every and self._seen % self.throttle_every == 0:
            return False
        if not self.throttling:
            return True
        now = self.now()
        if service == "ec2":
            spec = ec2_request_bucket(operation, params)
            if not self._bucket(("request", operation), spec).take(1, now):
                return False
            if operation in EC2_RESOURCE_BUCKETS:
                count = _instance_count(operation, params)
                bucket = self._bucket(("resource", operation), EC2_RESOURCE_BUCKETS[operation])
                return bucket.take(count, now)
            return True
        if service == "autoscaling":   # one bucket for the whole service
            shared = self._bucket(("request", "Auto Scaling (shared)"), self.autoscaling)
            return shared.take(1, now)
        return True


def _ec2_category(operation: str, params: Mapping[str, Any]) -> str:
    if operation in EC2_RESOURCE_INTENSIVE:
        return "resource-intensive"
    if not operation.startswith(READ_PREFIXES):
        return "mutating"
    if operation not in EC2_UNFILTERED_ACTIONS:
        return "non-mutating"
    narrowed = any(k.startswith(("Filter", "MaxResults", "NextToken")) for k in params)
    return "non-mutating" if narrowed else "unfiltered"


def _instance_count(operation: str, params: dict) -> int:
    if operation == "RunInstances":
        return int(params.get("MaxCount", 1) or 1)
    ids = params.get("InstanceId") or params.get("InstanceIds") or []
    return max(1, len(ids) if isinstance(ids, list) else 1)


def _throttle_error(service: str) -> ServiceException:
    if service == "ec2":
        return Throttled("RequestLimitExceeded", "Request limit exceeded.")
    return Throttled("Throttling", "Rate exceeded")


@contextmanager
def modelled(aws: EmbeddedAws, latency: Latency = DEFAULT_LATENCY, throttling: bool = True,
             throttle_every: int | None = None,
             autoscaling: Bucket = AUTOSCALING_BUCKET) -> Iterator[Model]:
    """``aws`` with the model installed (disabled until ``model.enabled = True``)."""
    model = Model(aws, latency, throttling, throttle_every, autoscaling)
    undo = [_wrap_call_action(model), *_botocore_on_emulated_time(model)]
    try:
        with warnings.catch_warnings():   # moto's Auto Scaling model lacks the error shape
            warnings.filterwarnings("ignore", message=".*does not match an error shape")
            yield model
    finally:
        for step in reversed(undo):
            step()


def _wrap_call_action(model: Model) -> Callable[[], None]:
    inner = BaseResponse.call_action

    def call_action(self: BaseResponse):  # type: ignore[no-untyped-def]
        if not model.enabled:
            return inner(self)
        operation = self._get_action()
        service = self.service_name or ""
        try:
            params = self._get_params()
        except Exception:   # some REST services have no query parameters to show
            params = {}
        model.spend(model.latency.of(operation))
        if service in ("ec2", "autoscaling") and not model._admit(service, operation, params):
            with model._lock:
                model.throttled[operation] += 1
            status, headers, body = self.serialized(ActionResult(_throttle_error(service)))
            status = 503 if service == "ec2" else 400
            headers["status"] = status
            return status, headers, body
        with model._lock:
            now = model.now()
            model.first[operation] = min(now, model.first.get(operation, now))
            model.last[operation] = max(now, model.last.get(operation, now))
        result = inner(self)
        if int(result[0]) < 400:
            with model._lock:
                model.calls[operation] += 1
        return result

    return patch_method(BaseResponse, "call_action", call_action)


def _botocore_on_emulated_time(model: Model) -> list[Callable[[], None]]:
    """botocore's retry back-off and adaptive rate limiter, on the emulated clock."""
    import time

    from botocore import endpoint
    from botocore.retries import bucket

    epoch = time.time()
    real_time = endpoint.time
    endpoint.time = types.SimpleNamespace(  # type: ignore[attr-defined]
        sleep=model.spend, time=lambda: epoch + model.latest(), monotonic=model.latest,
        perf_counter=real_time.perf_counter)

    def acquire(self, amount=1, block=True):  # type: ignore[no-untyped-def]
        """botocore's TokenBucket._acquire, waiting on the emulated clock."""
        self._refill()
        if amount > self._current_capacity:
            if not block:
                raise bucket.CapacityNotAvailableError()
            model.spend(self._sleep_amount(amount))
            self._refill()
        self._current_capacity = max(0.0, self._current_capacity - amount)
        return True

    undo = [patch_method(bucket.Clock, "current_time", lambda self: epoch + model.latest()),
            patch_method(bucket.Clock, "sleep", lambda self, amount: model.spend(amount)),
            patch_method(bucket.TokenBucket, "_acquire", acquire)]

    def restore_endpoint_time() -> None:
        endpoint.time = real_time  # type: ignore[attr-defined]
    return [*undo, restore_endpoint_time]


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b) if a else 0
