"""The Lambda entrypoint (contract): ``handler.main.lambda_handler(event, context)``.

Thin on purpose: parse settings and event, build clients, call the engine.
"""

from __future__ import annotations

import os
from typing import Any

from .clients import Clients
from .engine import Engine
from .events import EventError, parse_event
from .log import log_event
from .report import FAILED, Report
from .runtime import Deadline, clock_for
from .settings import SettingsError, load_settings


def lambda_handler(event: Any, context: Any) -> dict:
    clients = Clients.create()
    try:
        settings = load_settings(os.environ, clients.ssm)
    except SettingsError as exc:
        # A deployment error: fail the invocation loudly, before any AWS call.
        log_event("invalid_settings", error=str(exc))
        raise
    try:
        request = parse_event(event, settings.parameter_name)
    except EventError as exc:
        log_event("invalid_event", error=str(exc))
        return Report(parameter=settings.parameter_name, ami_id=None, dry_run=settings.dry_run,
                      status=FAILED, reason=str(exc)).to_dict()
    clock = clock_for(context)
    engine = Engine(settings, clients, clock, Deadline.from_context(context, clock),
                    function_arn=getattr(context, "invoked_function_arn", None))
    return engine.run(request).to_dict()
