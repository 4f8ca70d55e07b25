"""One structured JSON line per decision, so CloudWatch Logs Insights can query them."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_LOGGER = logging.getLogger("ami-upgrade")


def _configure() -> None:
    if not _LOGGER.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        _LOGGER.addHandler(handler)
        _LOGGER.setLevel(logging.INFO)
        _LOGGER.propagate = False


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``{"event": event, **fields}`` as one JSON line."""
    _configure()
    _LOGGER.log(level, json.dumps({"event": event, **fields}, default=str, sort_keys=True))
