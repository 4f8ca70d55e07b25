"""Emulation: asynchronous ``Invoke`` of our function queues the event for the sandbox.

moto would run the function in Docker; the sandbox instead queues asynchronous
invocations (the engine's continuations) and ``LambdaFunction.drain`` delivers
them to ``handler.main.lambda_handler`` as Lambda would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import unquote

from moto.awslambda.responses import LambdaResponse

from .core import EmbeddedAws, patch_method

STATE_KEY = "lambda_invocations"


def install(aws: EmbeddedAws) -> Callable[[], None]:
    queue: list[dict] = aws.state.setdefault(STATE_KEY, [])
    original = LambdaResponse.invoke

    def invoke(self):
        if self.headers.get("X-Amz-Invocation-Type") != "Event":
            return original(self)
        body = self.body.decode() if isinstance(self.body, bytes) else (self.body or "")
        queue.append({"function": unquote(self.path.rsplit("/", 2)[-2]),
                      "qualifier": self._get_param("qualifier"),
                      "event": json.loads(body or "{}")})
        return 202, {"status": "202", "content-type": "application/json"}, b""

    return patch_method(LambdaResponse, "invoke", invoke)
