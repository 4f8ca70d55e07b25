"""Which resources a run may touch (contract: scope and tags), with the reason when not."""

from __future__ import annotations

from .settings import Exclusions, Settings
from .tags import EXCLUDE, PARAMETER, is_excluded_by_tag


def out_of_scope_reason(settings: Settings, tags: dict[str, str]) -> str | None:
    """None when the resource follows this deployment's parameter under its SCOPE."""
    if settings.scope == "tagged" and tags.get(PARAMETER) != settings.parameter_name:
        current = tags.get(PARAMETER)
        return (f"not tagged {PARAMETER}={settings.parameter_name}" if current is None else
                f"tagged {PARAMETER}={current}, not {settings.parameter_name}")
    return None


def exclusion_reason(kind: str, name: str, tags: dict[str, str],
                     exclusions: Exclusions) -> str | None:
    """Why an in-scope ASG (``kind="asg"``) or instance (``"instance"``) is excluded."""
    listed = exclusions.asgs if kind == "asg" else exclusions.instances
    if name in listed:
        source = "EXCLUDED_ASGS" if kind == "asg" else "EXCLUDED_INSTANCES"
        return f"excluded by the exclusion list ({source} or the exclusions parameter)"
    if is_excluded_by_tag(tags):
        return f"excluded by tag {EXCLUDE}=true"
    return None


def skip_reason(settings: Settings, exclusions: Exclusions, kind: str, name: str,
                tags: dict[str, str]) -> str | None:
    """Exclusions first (they always win), then scope."""
    return exclusion_reason(kind, name, tags, exclusions) or out_of_scope_reason(settings, tags)
