"""Shared test fixtures. Keep this small: suite-specific fixtures live beside their tests."""

from __future__ import annotations

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
