"""The embedded AWS: moto, plus faithful emulations of the calls moto lacks.

Emulations are modules listed in ``EMULATIONS``; each has
``install(aws: EmbeddedAws) -> Callable[[], None]`` that patches moto's response
classes (so they work in process and in moto's server alike) and returns the undo.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

REGION = "us-east-1"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID

# Modules that emulate what moto lacks or gets wrong; each has install(aws) -> undo.
EMULATIONS = (
    "sandbox.lambda_invoke",
    "sandbox.launch_templates",
    "sandbox.instance_refresh",
    "sandbox.faults",
    "sandbox.client_token",
    "sandbox.root_volume",
    "sandbox.private_ip",
    "sandbox.terminal_states",
    "sandbox.template_tags",
)

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_CLEARED_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE")


class EmulatedClock:
    """Emulated time. ``advance`` moves it and lets every emulation catch up.

    Also usable as the engine's clock (``monotonic``/``sleep``): a sleep in the
    engine advances emulated time instead of waiting.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._start = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._elapsed = 0.0
        self._listeners: list[Callable[[dt.datetime], None]] = []

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def on_advance(self, listener: Callable[[dt.datetime], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def advance(self, seconds: float, step: float = 15.0) -> None:
        """Move time forward in steps of at most ``step`` seconds, so progress is gradual."""
        if seconds < 0:
            raise ValueError("the clock does not go back")
        remaining = float(seconds)
        while remaining > 0:
            delta = min(step, remaining)
            self._elapsed += delta
            remaining -= delta
            for listener in list(self._listeners):
                listener(self.now())


class EmbeddedAws:
    """The handle ``embedded_aws()`` yields."""

    region = REGION
    account_id = ACCOUNT_ID

    def __init__(self) -> None:
        self.clock = EmulatedClock()
        self.state: dict[str, Any] = {}     # per-emulation state, keyed by module

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


@contextlib.contextmanager
def environment(variables: Mapping[str, str], cleared: Iterable[str] = ()) -> Iterator[None]:
    """``os.environ`` with ``variables`` set and ``cleared`` removed, restored afterwards."""
    cleared = tuple(cleared)
    saved = {k: os.environ.get(k) for k in (*variables, *cleared)}
    os.environ.update(variables)
    for key in cleared:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def embedded_aws() -> Iterator[EmbeddedAws]:
    """moto with the sandbox's emulations; boto3 clients created inside reach it."""
    aws = EmbeddedAws()
    undo: list[Callable[[], None]] = []
    with environment(_FAKE_ENV, _CLEARED_ENV), mock_aws():
        try:
            for module_name in EMULATIONS:
                undo.append(importlib.import_module(module_name).install(aws))
            yield aws
        finally:
            for step in reversed(undo):
                step()


def patch_method(cls: type, name: str, func: Callable) -> Callable[[], None]:
    """Set ``cls.name = func`` and return the undo (restoring or deleting the attribute)."""
    missing = object()
    original = cls.__dict__.get(name, missing)
    setattr(cls, name, func)

    def undo() -> None:
        if original is missing:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    return undo
