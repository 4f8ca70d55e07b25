"""The embedded AWS: moto, plus faithful emulations of the calls moto lacks.

Emulations are modules listed in ``EMULATIONS``; each has
``install(aws: EmbeddedAws) -> Callable[[], None]`` that patches moto's response
classes (so they work in process and in moto's server alike) and returns the undo.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BackendDict

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
    "sandbox.launch_template_data",
    "sandbox.fast_lookups",
    "sandbox.volume_in_use",
    "sandbox.launch_protection",
    "sandbox.scheduled_rules",
    "sandbox.read_lag",
    "sandbox.shared_parameters",
    "sandbox.cross_account_events",
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

    def snapshot(self) -> Snapshot:
        """Everything the embedded AWS holds now: moto's backends and the emulations' state.

        ``restore`` brings it back, so a test can build an estate once and replay many
        scenarios from it (building costs more than copying).
        """
        return Snapshot(self)

    def restore(self, snapshot: Snapshot) -> None:
        """Back to ``snapshot`` (taken from this handle); the snapshot stays reusable."""
        snapshot.restore(self)


class Snapshot:
    """A deep copy of moto's live backends and of the emulations' state, restorable in place.

    The emulations close over their state objects (``aws.state`` values, ``aws.faults``,
    ...), so those are restored in place, keeping their identity; moto's backends are
    swapped whole. One ``deepcopy`` covers both, so references between them stay shared.
    """

    def __init__(self, aws: EmbeddedAws) -> None:
        self._aws = aws
        # The state objects the emulations hold on to: restored in place.
        self._objects = [*aws.state.values(),
                         *(v for k, v in vars(aws).items() if k not in ("clock", "state"))]
        backends = {(id(bd), account, region): backend
                    for bd in BackendDict._instances   # the services in use
                    for account, per_account in bd.items()
                    for region, backend in dict.items(per_account)}
        clock = {k: v for k, v in vars(aws.clock).items() if k != "_listeners"}
        roots = {"backends": backends, "clock": clock, "state": dict(aws.state),
                 "contents": [_contents(obj) for obj in self._objects]}
        self._frozen = _deepcopy(roots, self._memo())

    def _memo(self) -> dict[int, Any]:
        return {id(obj): obj for obj in (self._aws, self._aws.clock, *self._objects)}

    def restore(self, aws: EmbeddedAws) -> None:
        if aws is not self._aws:
            raise ValueError("a snapshot restores only the embedded AWS it was taken from")
        fresh = _deepcopy(self._frozen, self._memo())
        wanted = fresh["backends"]
        by_id = {id(bd): bd for bd in BackendDict._instances}
        for bd in by_id.values():
            for account, per_account in bd.items():
                for region in list(dict.keys(per_account)):
                    if (id(bd), account, region) not in wanted:
                        dict.__delitem__(per_account, region)   # created after the snapshot
        for (bd_id, account, region), backend in wanted.items():
            dict.__setitem__(by_id[bd_id][account], region, backend)
        vars(aws.clock).update(fresh["clock"])
        aws.state.clear()
        aws.state.update(fresh["state"])
        for obj, contents in zip(self._objects, fresh["contents"], strict=True):
            _assign(obj, contents)


def _copy_parameter_dict(original: Any, memo: dict[int, Any]) -> Any:
    """moto's SSM ``ParameterDict`` (a defaultdict whose __init__ takes other arguments)."""
    new = type(original)(original.account_id, original.region_name)
    memo[id(original)] = new
    vars(new).update(copy.deepcopy(vars(original), memo))
    for key, value in original.items():
        new[key] = copy.deepcopy(value, memo)
    return new


def _deepcopy(roots: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy``, taught the moto types that cannot be copied generically."""
    from moto.ssm.models import ParameterDict

    dispatch = copy._deepcopy_dispatch  # type: ignore[attr-defined]
    dispatch[ParameterDict] = _copy_parameter_dict
    try:
        return copy.deepcopy(roots, memo)
    finally:
        del dispatch[ParameterDict]


def _contents(obj: Any) -> Any:
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    return dict(vars(obj))


def _assign(obj: Any, contents: Any) -> None:
    if isinstance(obj, dict):
        obj.clear()
        obj.update(contents)
    elif isinstance(obj, list):
        obj[:] = contents
    else:
        vars(obj).clear()
        vars(obj).update(contents)


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
            undo.append(_cache_method_names())
            _default_session_on_shared_loader()
            for module_name in EMULATIONS:
                undo.append(importlib.import_module(module_name).install(aws))
            yield aws
        finally:
            for step in reversed(undo):
                step()
            _discard_backends()


def _default_session_on_shared_loader() -> None:
    """A fresh boto3 default session (as ``mock_aws`` wants), on a process-wide data loader.

    ``mock_aws`` drops boto3's default session, so each embedded AWS would parse the
    service models again for the caller's ``boto3.client(...)`` (EC2's is megabytes of
    JSON): a quarter of a second per embedded AWS. Credentials and event hooks stay per
    session; only the parsed models are shared. ``mock_aws`` restores the previous
    default session on exit.
    """
    import boto3

    from handler.aws import core_session, unique_search_paths

    boto3.setup_default_session(botocore_session=core_session())
    unique_search_paths()


def _discard_backends() -> None:
    """Drop moto's backends, as leaving ``mock_aws`` does, without building them anew first.

    moto's reset re-runs each backend's ``__init__`` and then drops it (EC2's loads
    some 1,300 images: a quarter of a second wasted per embedded AWS); none of the
    services the sandbox uses has a reset with other effects.
    """
    for backends in BackendDict._instances:
        backends.clear()
    BackendDict._instances.clear()


_method_names: dict[type, list[str]] = {}


def _cache_method_names() -> Callable[[], None]:
    """moto lists a response class's methods with ``inspect`` on every request; cache it.

    ``patch_method`` (the only way the sandbox changes a class) empties the cache.
    """
    from moto.core import responses

    original = responses.method_names_from_class

    def method_names(cls: Any) -> list[str]:
        if cls not in _method_names:
            _method_names[cls] = original(cls)
        return _method_names[cls]

    responses.method_names_from_class = method_names

    def undo() -> None:
        responses.method_names_from_class = original
        _method_names.clear()
    return undo


def patch_method(cls: type, name: str, func: Callable | property) -> Callable[[], None]:
    """Set ``cls.name = func`` and return the undo (restoring or deleting the attribute)."""
    missing = object()
    original = cls.__dict__.get(name, missing)
    setattr(cls, name, func)
    _method_names.clear()

    def undo() -> None:
        _method_names.clear()
        if original is missing:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    return undo
