"""Emulation: ``RunInstances`` is idempotent by ``ClientToken``, as in AWS.

moto launches new instances for every call. AWS instead answers a repeated
token with the first launch's reservation (the same instances, in their current
state) and rejects a repeated token whose other parameters differ with
``IdempotentParameterMismatch``. The engine's crash-safety relies on this: a
launch repeated after a crash must not start a second instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

from .core import EmbeddedAws, patch_method

STATE_KEY = "client_tokens"


def _fingerprint(params: dict) -> str:
    return json.dumps({k: v for k, v in params.items() if k not in ("ClientToken", "DryRun")},
                      sort_keys=True, default=str)


def install(aws: EmbeddedAws) -> Callable[[], None]:
    tokens: dict[str, tuple[str, str]] = aws.state.setdefault(STATE_KEY, {})
    original = EC2Response.run_instances

    def run_instances(self: EC2Response) -> ActionResult:
        token = self._get_param("ClientToken")
        if not token or self._get_param("DryRun"):
            return original(self)
        fingerprint = _fingerprint(dict(self.params))
        known = tokens.get(token)
        if known is not None:
            reservation_id, first = known
            if first != fingerprint:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"The client token {token} has already been used with different "
                    "parameters.")
            return ActionResult(self.ec2_backend.reservations[reservation_id])
        result = original(self)
        reservation = result.result
        tokens[token] = (reservation.id, fingerprint)
        return result

    return patch_method(EC2Response, "run_instances", run_instances)
