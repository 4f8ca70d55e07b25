"""The Lambda entrypoint (contract): ``handler.main.lambda_handler(event, context)``.

Thin on purpose: parse settings and event, build clients, call the engine, then write
the run's metrics (EMF, ``handler.metrics``); every line carries the request id.
"""

from __future__ import annotations

import os
from typing import Any

from . import log, metrics
from .aws import Clients
from .engine import Engine
from .events import EventError, parse_event
from .log import log_event
from .outcomes import Code
from .report import Report
from .run import Clock, Deadline, Status, clock_for
from .settings import SettingsError, load_settings


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    # Every log line of the invocation carries its request id (handler/log.py).
    with log.invocation(request_id=getattr(context, "aws_request_id", None)):
        clock = clock_for(context)
        started = clock.monotonic()
        try:
            report = _handle(event, context, clock)
        except Exception as exc:
            # Raised on purpose (invalid settings, a parameter read older than its event:
            # Lambda retries) or not: either way one line names it before Lambda sees it.
            log_event("invocation_failed", error_type=type(exc).__name__, error=str(exc)[:500])
            raise
        metrics.publish(report, clock.monotonic() - started)
        return report


def _handle(event: Any, context: Any, clock: Clock) -> dict[str, Any]:
    clients = Clients.create()
    try:
        settings = load_settings(os.environ, clients.ssm)
    except SettingsError as exc:
        # A deployment error: fail the invocation loudly, before any AWS call.
        log_event("invalid_settings", error=str(exc))
        raise
    log.bind(parameter=settings.parameter_name)
    try:
        request = parse_event(event, settings.parameter_name)
    except EventError as exc:
        log_event("invalid_event", error=str(exc))
        return Report(parameter=settings.parameter_name, ami_id=None, dry_run=settings.dry_run,
                      status=Status.FAILED, reason=str(exc), code=Code.EVENT_REJECTED).to_dict()
    engine = Engine(settings, clients, clock, Deadline.from_context(context, clock),
                    function_arn=getattr(context, "invoked_function_arn", None))
    return engine.run(request).to_dict()
