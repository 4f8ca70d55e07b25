"""The standard tag set: pure functions, no Pulumi import.

Every taggable resource of a stack carries the same tags: ``project``,
``environment`` (the stack name), ``managed-by`` and the stack's configured
``ami-upgrade:tags``. Configured tags may add keys but not replace the standard
ones, so a resource can always be traced back to its project and stack.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

STANDARD_TAG_KEYS = ("project", "environment", "managed-by")
MANAGED_BY = "pulumi"
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
# IAM, Lambda, CloudWatch Logs, EventBridge and CloudWatch all allow 50 tags per resource.
MAX_TAGS = 50
# The characters IAM and CloudWatch Logs accept in keys and values: [\p{L}\p{Z}\p{N}_.:/=+\-@]
ALLOWED_PUNCTUATION = frozenset("_.:/=+-@")


def disallowed_characters(text: str) -> list[str]:
    """The characters of ``text`` outside ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``, in order."""
    return [c for c in dict.fromkeys(text) if c not in ALLOWED_PUNCTUATION
            and unicodedata.category(c)[0] not in ("L", "Z", "N")]


class TagError(ValueError):
    """A configured tag is invalid; the message names the key."""


def check_tags(tags: object, name: str) -> Mapping[str, str]:
    """Validate configured tags (``name`` is the config key used in messages)."""
    if tags is None:
        return MappingProxyType({})
    if not isinstance(tags, Mapping):
        raise TagError(f"{name}: expected an object of tag key -> value, got {tags!r}")
    if len(tags) + len(STANDARD_TAG_KEYS) > MAX_TAGS:
        raise TagError(f"{name}: {len(tags)} tags plus the {len(STANDARD_TAG_KEYS)} standard ones "
                       f"exceed AWS's {MAX_TAGS} tags per resource")
    checked: dict[str, str] = {}
    for key, value in tags.items():
        where = f"{name}.{key}"
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise TagError(f"{where}: a tag key is 1 to {MAX_KEY_LENGTH} characters")
        if key.lower().startswith("aws:"):
            raise TagError(f"{where}: the aws: prefix is reserved by AWS")
        if key in STANDARD_TAG_KEYS:
            raise TagError(f"{where}: {key!r} is a standard tag set by the stack "
                           f"({', '.join(STANDARD_TAG_KEYS)}) and cannot be overridden")
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise TagError(f"{where}: a tag value is a string of at most {MAX_VALUE_LENGTH} "
                           f"characters (quote numbers in YAML), got {value!r}")
        for what, text in (("key", key), ("value", value)):
            bad = disallowed_characters(text)
            if bad:
                raise TagError(f"{where}: the tag {what} {text!r} has character(s) AWS refuses "
                               f"({' '.join(map(repr, bad))}); allowed are letters, digits, "
                               "spaces and _ . : / = + - @")
        checked[key] = value
    return MappingProxyType(checked)


def standard_tags(project: str, stack: str, extra: Mapping[str, str] | None = None
                  ) -> dict[str, str]:
    """The tags for every taggable resource: the standard set merged with ``extra``."""
    merged = dict(extra or {})
    clash = sorted(set(merged) & set(STANDARD_TAG_KEYS))
    if clash:
        raise TagError(f"tags: standard tag(s) {', '.join(clash)} cannot be overridden")
    merged.update({"project": project, "environment": stack, "managed-by": MANAGED_BY})
    return dict(sorted(merged.items()))
