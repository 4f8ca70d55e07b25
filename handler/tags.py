"""The tag vocabulary (prefix ``ami-upgrade:``), in one place.

Scope tags are set by users; progress tags are written by the engine so that an
interrupted invocation can be finished or rolled back by the next one.
"""

PREFIX = "ami-upgrade:"

# Set by users (contract).
PARAMETER = f"{PREFIX}parameter"   # resource follows this SSM parameter (SCOPE=tagged)
EXCLUDE = f"{PREFIX}exclude"       # "true": never touched
STRATEGY = f"{PREFIX}strategy"     # per-instance override: relaunch | replace-root-volume

# Set by AWS: an instance that belongs to an Auto Scaling group.
ASG_MEMBER = "aws:autoscaling:groupName"


def tag_map(tags: list[dict] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as a dict."""
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def is_excluded_by_tag(tags: dict[str, str]) -> bool:
    return tags.get(EXCLUDE, "").strip().lower() == "true"
