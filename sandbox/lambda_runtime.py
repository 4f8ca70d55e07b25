"""Runs ``handler.main.lambda_handler`` as Lambda would, on the embedded AWS.

The function's environment variables are set for the call, the context gives
the remaining time from the emulated clock, and asynchronous invocations of the
function (continuations) are delivered by ``drain``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .core import EmbeddedAws, EmulatedClock, environment
from .lambda_invoke import STATE_KEY


@dataclass
class LambdaContext:
    """The attributes of AWS's Lambda context object that the handler reads."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    ami_upgrade_clock: EmulatedClock
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._started = self.ami_upgrade_clock.monotonic()

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = self.ami_upgrade_clock.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class LambdaFunction:
    """Our function, deployed to the sandbox with an alias and environment variables."""

    def __init__(self, aws: EmbeddedAws, environment: Mapping[str, str],
                 name: str = "ami-upgrade", alias: str = "dev", timeout_seconds: float = 900,
                 memory_mb: int = 512) -> None:
        self.aws = aws
        self.environment = dict(environment)
        self.name = name
        self.alias = alias
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.arn = f"arn:aws:lambda:{aws.region}:{aws.account_id}:function:{name}:{alias}"
        self.reports: list[dict] = []

    def context(self) -> LambdaContext:
        return LambdaContext(self.name, "1", self.arn, self.memory_mb, self.timeout_seconds,
                             self.aws.clock)

    def invoke(self, event: Any) -> dict:
        """One synchronous invocation, as Lambda runs it; returns the handler's report."""
        from handler.main import lambda_handler

        with environment(self.environment):
            report = lambda_handler(event, self.context())
        self.reports.append(report)
        return report

    def pending(self) -> list[dict]:
        """Queued asynchronous invocations of this function."""
        queue = self.aws.state.get(STATE_KEY, [])
        return [item for item in queue if self._is_ours(item)]

    def drain(self, limit: int = 100) -> list[dict]:
        """Deliver queued asynchronous invocations (and those they queue) in order."""
        queue = self.aws.state.setdefault(STATE_KEY, [])
        reports: list[dict] = []
        for _ in range(limit):
            item = next((i for i in queue if self._is_ours(i)), None)
            if item is None:
                return reports
            queue.remove(item)
            reports.append(self.invoke(item["event"]))
        raise RuntimeError(f"more than {limit} asynchronous invocations: not converging")

    def _is_ours(self, item: dict) -> bool:
        target = item["function"]
        names = {self.name, self.arn, self.arn.rsplit(":", 1)[0]}
        return target in names or target.rsplit(":", 1)[0] in names
