"""The standalone strategies, by the name the ``strategy`` setting and tag use.

Adding a strategy: a module beside ``relaunch.py`` whose ``STRATEGY`` implements
:class:`~.core.Strategy` (its planning, its machine, its IAM as
:class:`~.core.Permissions`), one line here, and its name in
``handler.settings.STANDALONE_STRATEGIES`` (a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import relaunch, replace_root_volume
from .core import Strategy

STRATEGIES: Mapping[str, Strategy] = {s.name: s for s in (
    relaunch.STRATEGY,
    replace_root_volume.STRATEGY,
)}
# An instance marked in flight whose tags no other strategy recognises is resumed as
# this one (whose machine then reports what it finds).
IN_FLIGHT_FALLBACK = relaunch.NAME
