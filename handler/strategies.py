"""The standalone strategies the engine knows, one line each. Stdlib only.

Name (the value of the ``strategy`` setting and of the ``ami-upgrade:strategy`` tag) ->
the module that defines its ``STRATEGY`` (a :class:`handler.standalone.core.Strategy`).
The settings read the names from here, so ``strategy`` accepts exactly these;
``handler/standalone/registry.py`` loads the modules, and planning, the runner, the
preflight's tag-room check and the role policy (``components/policy.py``) read that.
"""

from __future__ import annotations

STANDALONE: dict[str, str] = {
    "relaunch": "handler.standalone.relaunch",
    "replace-root-volume": "handler.standalone.replace_root_volume",
}

DEFAULT = "relaunch"   # the ``strategy`` setting's default
