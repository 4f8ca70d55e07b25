"""The outcome vocabulary: a stable ``code`` on every report entry, beside its ``reason``.

The ``reason`` is for people and may be reworded; the ``code`` is the contract that
metrics, alarms, the engine and operators' queries read (``docs/contracts.md`` lists
them). A code names *why* an entry has its ``action``; one code may go with several
actions only where the contract says so. Codes are grouped by who emits them.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Why a group or instance has the action its entry reports, or a run its reason."""

    # ------------------------------------------------------------ runs
    # ignored:
    EVENT_IGNORED = "event_ignored"              # not this deployment's event: nothing done
    # failed:
    EVENT_REJECTED = "event_rejected"            # malformed or refused event: nothing done
    AMI_REJECTED = "ami_rejected"                # the parameter names no usable, allowed AMI
    AMI_NOT_READY = "ami_not_ready"              # the AMI is still pending: a later run retries
    SETTINGS_INVALID = "settings_invalid"        # the exclusions parameter is unreadable or bad
    STEP_FAILED = "step_failed"                  # AWS failed the AMI check or exclusions read
    # failed, partial:
    PLANNING_FAILED = "planning_failed"          # AWS failed a subsystem's planning read

    # ------------------------------------------------------------ groups and instances
    # skipped:
    EXCLUDED = "excluded"                        # the exclusion lists, parameter or tag
    OUT_OF_SCOPE = "out_of_scope"                # outside the scope, or another orchestrator's
    ALREADY_CURRENT = "already_current"          # already on the AMI
    INCOMPATIBLE = "incompatible"                # another architecture or platform
    FAILED_BEFORE = "failed_before"              # an earlier move onto this AMI failed

    # ------------------------------------------------------------ Auto Scaling groups
    # skipped:
    GROUP_BEING_DELETED = "group_being_deleted"  # the group has a status (Delete in progress)
    GROUP_GONE = "group_gone"                    # the group was gone when planned again
    FOLLOWS_OTHER_PARAMETER = "follows_other_parameter"   # its template resolves another parameter
    PINNED_AMI_NOT_APPLICABLE = "pinned_ami_not_applicable"   # resolves it: ami_id cannot apply
    REFRESH_ROLLED_BACK = "refresh_rolled_back"  # its refresh toward the AMI rolled back now
    REFRESH_ALREADY_RUNNING = "refresh_already_running"   # a refresh toward the AMI runs
    REFRESH_IN_PROGRESS_SKIP = "refresh_in_progress_skip"   # another refresh runs; policy skip
    REFRESH_IN_PROGRESS_WAIT = "refresh_in_progress_wait"   # held behind a refresh not ended
    STARTED_EARLIER = "started_earlier"          # this rollout's refresh, recorded on it
    # planned:
    REFRESH_PLANNED = "refresh_planned"          # a dry run: the refresh it would start
    # refresh_started:
    REFRESH_STARTED = "refresh_started"          # the refresh toward the AMI started
    REFRESH_RESTARTED = "refresh_restarted"      # the refresh in its way cancelled, then started
    # failed (with fix):
    MISCONFIGURED_LAUNCH_TEMPLATE = "misconfigured_launch_template"   # none the engine can use
    MISCONFIGURED_TEMPLATE_UNTAGGED = "misconfigured_template_untagged"   # template lacks scope tag
    MISCONFIGURED_INSTANCE_ROLE = "misconfigured_instance_role"   # its role is not passable
    MISCONFIGURED_FOREIGN_ALIAS = "misconfigured_foreign_alias"   # tagged, resolves another one
    MISCONFIGURED_SHARED_TEMPLATE = "misconfigured_shared_template"   # groups not moved: $Latest
    # failed:
    TEMPLATE_UNREADABLE = "template_unreadable"  # its template or version could not be read
    READ_FAILED = "read_failed"                  # AWS failed a read of the group
    START_FAILED = "start_failed"                # AWS failed the version write or the start
    START_RACED = "start_raced"                  # another refresh started since planning
    CANCEL_FAILED = "cancel_failed"              # AWS failed the cancel of the one in its way
    # deferred:
    READ_DEFERRED = "read_deferred"              # not read for lack of time: a continuation
    START_DEFERRED = "start_deferred"            # not started for lack of time: a continuation

    # ------------------------------------------------------------ standalone instances
    # planned:
    PLANNED = "planned"                    # a dry run's plan: replaced, resumed or rolled back
    # replaced:
    REPLACED = "replaced"                  # on the new AMI (by this or another invocation)
    # failed:
    ROLLED_BACK = "rolled_back"            # undone: the old instance is back, failed-ami recorded
    PROGRESS_TAGS_KEPT = "progress_tags_kept"   # stopped mid-way; tags kept, the next run resumes
    NEEDS_OPERATOR = "needs_operator"      # a state the engine does not resolve: reason says what
    HELD_FOR_OPERATOR = "held_for_operator"     # a rollback waits for the operator-hold tag to go
    REPLACEMENT_FAILED = "replacement_failed"   # AWS refused or failed it; nothing in flight
    # in_progress:
    IN_PROGRESS = "in_progress"            # in flight: the next invocation continues it
    NOT_STARTED = "not_started"            # not started in this invocation (limits, a read)
    RETRY_SCHEDULED = "retry_scheduled"    # rolled back after transient errors: retried later
    # skipped:
    ASG_MEMBER = "asg_member"              # its group's entry says what happens to it
    INCONSISTENT_RECORD = "inconsistent_record"  # engine tags not as the engine writes them
    NOT_RUNNING = "not_running"            # stopped, terminating, or its state changed
    KEPT_AFTER_REPLACEMENT = "kept_after_replacement"  # a replacement's old instance, kept
    UNKNOWN_STRATEGY = "unknown_strategy"  # its strategy tag names no strategy
    NOT_SUPPORTED = "not_supported"        # the strategy cannot replace this instance
    PREFLIGHT_FAILED = "preflight_failed"  # a launch precondition, key, role or tag room fails
    REFERENCES_DROPPED = "references_dropped"   # a relaunch would cut references to it
    UNREADABLE = "unreadable"              # its own reads were refused; nothing changed
    ENDED_ELSEWHERE = "ended_elsewhere"    # another invocation (or an operator) ended it
