"""Emulation: fault injection, so tests and the demo can make AWS misbehave on cue.

Installed on every ``embedded_aws()`` and exposed on the handle as ``aws.faults``
(a :class:`Faults`). It wraps moto's ``BaseResponse.call_action``, the one place
every query- and JSON-protocol call (EC2, Auto Scaling, SSM, SNS, ...) passes
through, so it sees calls from boto3 clients created anywhere in the process.

The API:

``aws.faults.fail(operation, code, message="...", times=1, when=None)``
    The next ``times`` calls of ``operation`` (e.g. ``"RunInstances"``) answer
    with the AWS error ``code`` (e.g. ``"InsufficientInstanceCapacity"``) and do
    nothing. ``when(params) -> bool`` narrows it to matching requests (``params``
    are the request's parameters with AWS's names, e.g. ``params["InstanceId"]``).
    ``times=None`` fails every matching call until ``clear()``.

``aws.faults.crash_after(n)``
    The ``n``-th mutating call from now completes on the AWS side, then the
    caller dies with :class:`SimulatedCrash` (a ``BaseException``, as a killed
    Lambda would: code under test must not swallow it). In process only: in
    moto's server the exception would end the request, not the client.

``aws.faults.status_checks(outcome="ok", after_seconds=0, image_id=None)``
    Instances launched from now on (from ``image_id`` only, when given) report
    their status checks ``initializing`` for ``after_seconds`` of emulated time,
    then ``outcome``: ``"ok"``, ``"impaired"`` or ``"never"`` (initializing
    forever). Without a rule, moto's own behaviour stays: ``ok`` at once.

``aws.faults.mutating_calls``
    Every successful mutating call so far, as ``(service, operation)`` in order;
    ``aws.faults.requests(operation)`` gives the parameters of the successful
    calls of ``operation`` (what was really sent to AWS).

``aws.faults.clear()``
    Drops every pending fault, crash and status-check rule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.models.instances import Instance

from .core import EmbeddedAws, patch_method

READ_PREFIXES = ("Describe", "Get", "List", "Lookup", "Search")


class SimulatedCrash(BaseException):
    """The invocation died right after an AWS call completed (timeout, killed process)."""


class InjectedFault(ServiceException):
    """An AWS error answered instead of running the call (serialised for the call's service)."""


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


@dataclass
class _Failure:
    operation: str
    code: str
    message: str
    remaining: int | None
    when: Callable[[dict], bool] | None


@dataclass
class _StatusRule:
    outcome: str
    after_seconds: float
    image_id: str | None


@dataclass(repr=False)
class Faults:
    """The fault plan and the call log of one embedded AWS (``aws.faults``)."""

    aws: EmbeddedAws
    mutating_calls: list[tuple[str, str]] = field(default_factory=list)
    _requests: list[tuple[str, dict]] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _crash_at: int | None = None
    _status_rules: list[_StatusRule] = field(default_factory=list)
    _launched: dict[str, tuple[float, _StatusRule]] = field(default_factory=dict)

    # ------------------------------------------------------------ the plan
    def fail(self, operation: str, code: str, message: str | None = None, times: int | None = 1,
             when: Callable[[dict], bool] | None = None) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every call)")
        self._failures.append(_Failure(operation, code,
                                       message or f"Injected fault: {code} from {operation}",
                                       times, when))

    def crash_after(self, n: int) -> None:
        if n < 1:
            raise ValueError("crash_after needs n >= 1")
        self._crash_at = len(self.mutating_calls) + n

    def status_checks(self, outcome: str = "ok", after_seconds: float = 0,
                      image_id: str | None = None) -> None:
        if outcome not in ("ok", "impaired", "never"):
            raise ValueError(f"outcome must be ok, impaired or never, not {outcome!r}")
        self._status_rules.append(_StatusRule(outcome, after_seconds, image_id))

    def clear(self) -> None:
        self._failures.clear()
        self._status_rules.clear()
        self._crash_at = None

    def requests(self, operation: str) -> list[dict]:
        return [copy.deepcopy(p) for op, p in self._requests if op == operation]

    def count(self, operation: str) -> int:
        return sum(op == operation for _, op in self.mutating_calls)

    # ------------------------------------------------------------ the hooks
    def _injected(self, operation: str, params: dict) -> _Failure | None:
        for failure in self._failures:
            if failure.operation != operation:
                continue
            if failure.when is not None and not failure.when(params):
                continue
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._failures.remove(failure)
            return failure
        return None

    def _completed(self, service: str, operation: str, params: dict) -> None:
        self._requests.append((operation, copy.deepcopy(params)))
        if not is_mutating(operation):
            return
        self.mutating_calls.append((service, operation))
        if self._crash_at is not None and len(self.mutating_calls) >= self._crash_at:
            self._crash_at = None
            raise SimulatedCrash(f"crashed after mutating call #{len(self.mutating_calls)} "
                                 f"({service} {operation})")

    def _instance_created(self, instance: Instance) -> None:
        for rule in reversed(self._status_rules):
            if rule.image_id is None or rule.image_id == instance.image_id:
                self._launched[instance.id] = (self.aws.clock.monotonic(), rule)
                return

    def _status(self, instance: Instance) -> str:
        """``ok``, ``initializing`` or ``impaired`` for a running instance."""
        launched = self._launched.get(instance.id)
        if launched is None:
            return "ok"
        at, rule = launched
        if self.aws.clock.monotonic() - at < rule.after_seconds or rule.outcome == "never":
            return "initializing"
        return rule.outcome


def _params(response: BaseResponse) -> dict:
    params = getattr(response, "params", None)
    if isinstance(params, dict):
        return params
    try:
        return response._get_params()
    except Exception:   # some REST services have no query parameters to show
        return {}


def _status_property(faults: Faults, system: bool) -> property:
    """moto's ``instance_status``/``system_status``, following the status-check rules."""
    def status(self: Instance) -> dict[str, Any]:
        if self.state_code != 16:
            return {"Status": "not-applicable"}
        value = faults._status(self)
        if system and value == "impaired":
            value = "ok"              # an impaired instance, on healthy AWS hardware
        detail = {"ok": "passed", "initializing": "initializing", "impaired": "failed"}[value]
        return {"Details": [{"Name": "reachability", "Status": detail}], "Status": value}
    return property(status)


def install(aws: EmbeddedAws) -> Callable[[], None]:
    faults = Faults(aws)
    original_call = BaseResponse.call_action
    original_init = Instance.__init__

    def call_action(self: BaseResponse) -> TYPE_RESPONSE:
        operation = self._get_action()
        params = _params(self)
        failure = faults._injected(operation, params)
        if failure is not None:
            status, headers, body = self.serialized(
                ActionResult(InjectedFault(failure.code, failure.message)))
            headers["status"] = status
            return status, headers, body
        status, headers, body = original_call(self)
        if int(status) < 400:
            faults._completed(self.service_name or "", operation, params)
        return status, headers, body

    def instance_init(self: Instance, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        faults._instance_created(self)

    undo = [patch_method(BaseResponse, "call_action", call_action),
            patch_method(Instance, "__init__", instance_init),
            patch_method(Instance, "instance_status", _status_property(faults, system=False)),
            patch_method(Instance, "system_status", _status_property(faults, system=True))]
    aws.faults = faults  # type: ignore[attr-defined]

    def uninstall() -> None:
        for step in reversed(undo):
            step()
        del aws.faults  # type: ignore[attr-defined]
    return uninstall
