"""Auto Scaling groups: plan instance refreshes onto the new AMI, then start them.

``plan.py`` reads (groups, template versions, images, refreshes) and decides per
group; ``apply.py`` writes versions and starts refreshes; ``launch_templates.py``
and ``refreshes.py`` are how the engine reads and writes those two AWS objects.
"""

from .apply import finish_asgs, start_asgs
from .plan import AsgPlan, configuration_warnings, plan_asgs

__all__ = ["AsgPlan", "configuration_warnings", "finish_asgs", "plan_asgs", "start_asgs"]
