"""Standalone instances: plan their replacement (``plan.py``), then drive it (``runner.py``).

One module per strategy (``relaunch.py``, ``replace_root_volume.py``), listed in
``handler/strategies.py`` and loaded by ``registry.py``; what they share is in
``core.py`` (steps, plans, the base classes), ``observation.py`` (what AWS shows each
round) and ``shape.py`` (what a relaunch keeps).
"""

from .core import InstancePlan
from .plan import plan_instances
from .runner import apply_instances

__all__ = ["InstancePlan", "apply_instances", "plan_instances"]
