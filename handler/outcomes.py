"""The outcome vocabulary: a stable ``code`` on every report entry, beside its ``reason``.

The ``reason`` is for people and may be reworded; the ``code`` is the contract that
metrics, alarms, the engine and operators' queries read (``docs/contracts.md`` lists
them). A code names *why* an entry has its ``action``; one code may go with several
actions only where the contract says so. Codes are grouped by who emits them.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Why a group or instance has the action its entry reports."""

    # ------------------------------------------------------------ Auto Scaling groups

    # ------------------------------------------------------------ standalone instances
    ROLLED_BACK = "rolled_back"                  # the replacement was undone: old instance back
    PROGRESS_TAGS_KEPT = "progress_tags_kept"    # failed mid-way; tags kept, the next run resumes
