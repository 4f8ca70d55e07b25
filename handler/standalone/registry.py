"""The standalone strategies, loaded from ``handler/strategies.py`` by their names.

Adding a strategy: a module beside ``relaunch.py`` whose ``STRATEGY`` is a
:class:`~.core.Strategy` (its planning, its machine, its IAM), and its line in
``handler/strategies.py``. :func:`registered` adds one for the length of a block (a
strategy defined outside the package, as a test's).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module

from ..strategies import STANDALONE
from . import relaunch
from .core import Strategy

STRATEGIES: dict[str, Strategy] = {
    name: import_module(module).STRATEGY for name, module in STANDALONE.items()}
# An instance marked in flight whose tags no other strategy recognises is resumed as
# this one (whose machine then reports what it finds).
IN_FLIGHT_FALLBACK = relaunch.NAME


@contextmanager
def registered(strategy: Strategy) -> Iterator[Strategy]:
    """``strategy`` known to the engine inside the block: the ``strategy`` setting and tag
    accept its name, planning and the runner use it, the role policy grants its IAM."""
    if strategy.name in STRATEGIES:
        raise ValueError(f"a strategy named {strategy.name!r} is registered already")
    STANDALONE[strategy.name] = type(strategy).__module__
    STRATEGIES[strategy.name] = strategy
    try:
        yield strategy
    finally:
        del STRATEGIES[strategy.name], STANDALONE[strategy.name]
