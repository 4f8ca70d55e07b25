"""The Lambda entrypoint (contract): ``handler.main.lambda_handler(event, context)``.

Thin on purpose: parse settings and event, build clients, call the engine.
"""

from __future__ import annotations

import os
from typing import Any

from .aws import Clients
from .engine import Engine
from .events import EventError, parse_event
from .log import log_event
from .report import Report
from .run import Deadline, Status, clock_for
from .settings import Settings, SettingsError


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        # A deployment error: fail the invocation loudly, before any AWS call.
        log_event("invalid_settings", error=str(exc))
        raise
    try:
        request = parse_event(event, settings.parameter_name)
    except EventError as exc:
        log_event("invalid_event", error=str(exc))
        return Report(parameter=settings.parameter_name, ami_id=None, dry_run=settings.dry_run,
                      status=Status.FAILED, reason=str(exc)).to_dict()
    clock = clock_for(context)
    engine = Engine(settings, Clients.create(), clock, Deadline.from_context(context, clock),
                    function_arn=getattr(context, "invoked_function_arn", None))
    return engine.run(request).to_dict()
