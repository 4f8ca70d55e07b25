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
    # planned (a dry run, or a replacement about to start), and how it ended
    PLANNED = "planned"                          # planned: replaced, resumed or rolled back
    REPLACED = "replaced"                        # on the new AMI (by this or another invocation)
    ROLLED_BACK = "rolled_back"                  # the replacement was undone: old instance back
    PROGRESS_TAGS_KEPT = "progress_tags_kept"    # failed mid-way; tags kept, the next run resumes
    NEEDS_OPERATOR = "needs_operator"            # failed on a state the engine does not resolve
    HELD_FOR_OPERATOR = "held_for_operator"      # a rollback waits for the operator-hold tag to go
    REPLACEMENT_FAILED = "replacement_failed"    # AWS refused or failed it; nothing in flight
    # work left to a later invocation (action in_progress)
    IN_PROGRESS = "in_progress"                  # in flight: the next invocation continues it
    NOT_STARTED = "not_started"                  # not started in this invocation (limits, a read)
    RETRY_SCHEDULED = "retry_scheduled"          # rolled back after transient errors: retried later
    # skipped: why the instance is not replaced (nothing was changed)
    ASG_MEMBER = "asg_member"                    # its group's entry says what happens to it
    EXCLUDED = "excluded"                        # the exclusion lists, parameter or tag
    OUT_OF_SCOPE = "out_of_scope"                # outside the scope, or another orchestrator's
    INCONSISTENT_RECORD = "inconsistent_record"  # engine tags not in the form the engine writes
    NOT_RUNNING = "not_running"                  # stopped, terminating, or its state changed
    KEPT_AFTER_REPLACEMENT = "kept_after_replacement"  # the old instance of a replacement
    ALREADY_CURRENT = "already_current"          # already on the AMI
    INCOMPATIBLE = "incompatible"                # another architecture or platform
    FAILED_BEFORE = "failed_before"              # an earlier replacement onto this AMI failed
    UNKNOWN_STRATEGY = "unknown_strategy"        # its strategy tag names no strategy
    NOT_SUPPORTED = "not_supported"              # the strategy cannot replace this instance
    PREFLIGHT_FAILED = "preflight_failed"        # a launch precondition, key or tag room fails
    REFERENCES_DROPPED = "references_dropped"    # a relaunch would cut references to it
    UNREADABLE = "unreadable"                    # its own reads were refused
    ENDED_ELSEWHERE = "ended_elsewhere"          # another invocation (or an operator) ended it
