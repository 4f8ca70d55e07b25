"""Shared test fixtures. Keep this small: suite-specific fixtures live beside their tests."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Recorded EventBridge events live in the repository, so a fresh clone tests on its own.
FIXTURES_DIR = REPO / "tests" / "fixtures"

if str(REPO) not in sys.path:  # `pytest` run from anywhere imports handler/, components/...
    sys.path.insert(0, str(REPO))

# The embedded AWS holds large object graphs (moto's ~1,300 stock images per EC2 backend,
# the snapshots replayed estates restore): at CPython's default thresholds (700, 10, 10)
# the cyclic collector re-scans them so often that it costs about a third of the suite's
# time. Collect far less often; nothing here depends on when garbage is collected.
gc.set_threshold(50_000, 50, 100)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``tests/fixtures`` (events/ holds recorded EventBridge events)."""
    assert FIXTURES_DIR.is_dir(), f"event fixtures not found at {FIXTURES_DIR}"
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def load_event(fixtures_dir: Path) -> Callable[[str], dict]:
    """``load_event("cloudtrail-put-parameter")``: a fixture event as a fresh dict."""

    def load(name: str) -> dict:
        path = fixtures_dir / "events" / f"{name.removesuffix('.json')}.json"
        return json.loads(path.read_text())

    return load
