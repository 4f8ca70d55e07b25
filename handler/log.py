"""One structured JSON line per decision, so CloudWatch Logs Insights can query them.

Every line of a run carries the run's context (``request_id``, ``attempt``,
``parameter``, ``ami``) from a context variable: the entrypoint opens the
invocation (:func:`invocation`) and the engine adds each field where it becomes
known (:func:`scope`, :func:`bind`), so no code in between passes them around.
Binding a context field to None removes it from the context; an event's own fields
are logged as given, a None one as ``null`` (the ``report`` line keeps the contract's
keys, such as ``"ami_id": null``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

_LOGGER = logging.getLogger("ami-upgrade")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_INVOCATION = "_invocation"     # marks the context an invocation opened (never logged)
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("ami_upgrade_log_context", default=_EMPTY)


def _configure() -> None:
    if not _LOGGER.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        _LOGGER.addHandler(handler)
        _LOGGER.setLevel(logging.INFO)
        _LOGGER.propagate = False


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _merged(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    current = dict(_CONTEXT.get())
    for key, value in fields.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    return MappingProxyType(current)


@contextlib.contextmanager
def invocation(**fields: Any) -> Iterator[None]:
    """One invocation: a fresh context holding ``fields``, gone when the block ends."""
    token = _CONTEXT.set(MappingProxyType({_INVOCATION: True, **_clean(fields)}))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


@contextlib.contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """``fields`` on every line from here on, until the invocation ends.

    Inside an invocation they are bound to it, so the lines written after the block (the
    run's metrics) still carry them; outside one (an engine driven directly) they last
    for the block only.
    """
    if _CONTEXT.get().get(_INVOCATION):
        bind(**fields)
        yield
        return
    token = _CONTEXT.set(_merged(fields))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` to the current context, until its invocation or scope ends."""
    _CONTEXT.set(_merged(fields))


def context() -> Mapping[str, Any]:
    """The fields every line currently carries."""
    return {k: v for k, v in _CONTEXT.get().items() if k != _INVOCATION}


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``{**context, "event": event, **fields}`` as one JSON line."""
    log_document({**context(), "event": event, **fields}, level)


def log_document(document: Mapping[str, Any], level: int = logging.INFO) -> None:
    """Log ``document`` as is, one JSON line (also how the EMF metrics reach the log)."""
    _configure()
    _LOGGER.log(level, json.dumps(document, default=str, sort_keys=True))
