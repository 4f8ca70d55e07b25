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

    # ------------------------------------------------------------ runs (the report's own)
    EVENT_IGNORED = "event_ignored"              # not this deployment's event: nothing done
    EVENT_REJECTED = "event_rejected"            # malformed or refused event: nothing done
    AMI_REJECTED = "ami_rejected"                # the parameter holds no usable AMI
    AMI_NOT_READY = "ami_not_ready"              # the AMI is still pending: retried
    SETTINGS_INVALID = "settings_invalid"        # a setting (exclusions document) is invalid
    STEP_FAILED = "step_failed"                  # the AMI check or exclusions read failed
    PLANNING_FAILED = "planning_failed"          # a subsystem's planning read failed

    # ------------------------------------------------------------ Auto Scaling groups
    # skipped: nothing to do, or not the engine's to do
    EXCLUDED = "excluded"                        # an exclusion (tag, list or parameter) names it
    OUT_OF_SCOPE = "out_of_scope"                # the scope does not take it in
    OWNED_ELSEWHERE = "owned_elsewhere"          # another orchestrator manages it
    GROUP_BEING_DELETED = "group_being_deleted"  # the group has a status (Delete in progress)
    GROUP_GONE = "group_gone"                    # the group no longer exists when planned again
    FOLLOWS_OTHER_PARAMETER = "follows_other_parameter"   # its template resolves another one
    PINNED_AMI_NOT_APPLICABLE = "pinned_ami_not_applicable"   # resolves the parameter itself
    INCOMPATIBLE_IMAGE = "incompatible_image"    # architecture or platform cannot take the AMI
    FAILED_AMI_RECORDED = "failed_ami_recorded"  # a rollback onto this AMI is remembered
    REFRESH_ROLLED_BACK = "refresh_rolled_back"  # its refresh toward this AMI ended rolled back
    REFRESH_ALREADY_RUNNING = "refresh_already_running"   # a refresh toward this AMI runs
    REFRESH_IN_PROGRESS_SKIP = "refresh_in_progress_skip"   # another refresh runs, policy skip
    REFRESH_IN_PROGRESS_WAIT = "refresh_in_progress_wait"   # held behind a refresh not ended
    ALREADY_CURRENT = "already_current"          # template and every instance on the AMI
    STARTED_EARLIER = "started_earlier"          # recorded started by this rollout
    # planned (dry run) and started
    REFRESH_PLANNED = "refresh_planned"
    REFRESH_STARTED = "refresh_started"
    REFRESH_RESTARTED = "refresh_restarted"      # a refresh in the way cancelled, then started
    # failed by the group's configuration (the entry has ``fix``)
    MISCONFIGURED_LAUNCH_TEMPLATE = "misconfigured_launch_template"   # none, or unsupported
    MISCONFIGURED_TEMPLATE_UNTAGGED = "misconfigured_template_untagged"   # tagged scope
    MISCONFIGURED_INSTANCE_ROLE = "misconfigured_instance_role"   # role not passable
    MISCONFIGURED_FOREIGN_ALIAS = "misconfigured_foreign_alias"   # another parameter's alias
    MISCONFIGURED_SHARED_TEMPLATE = "misconfigured_shared_template"   # $Latest followers
    # failed by AWS's answer
    TEMPLATE_UNREADABLE = "template_unreadable"  # the template or its version cannot be read
    READ_FAILED = "read_failed"                  # a read of the group failed
    START_FAILED = "start_failed"                # writing the version or starting failed
    START_RACED = "start_raced"                  # another refresh started since planning
    CANCEL_FAILED = "cancel_failed"              # the refresh in the way could not be cancelled
    # deferred to a continuation
    READ_DEFERRED = "read_deferred"
    START_DEFERRED = "start_deferred"

    # ------------------------------------------------------------ standalone instances
    ROLLED_BACK = "rolled_back"                  # the replacement was undone: old instance back
    PROGRESS_TAGS_KEPT = "progress_tags_kept"    # failed mid-way; tags kept, the next run resumes

