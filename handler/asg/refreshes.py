"""Instance refreshes as the engine reads and drives them (one active per group, in AWS)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .launch_templates import TemplateRef, desired_template

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient



class RefreshStatus(StrEnum):
    """An instance refresh's ``Status``, as DescribeInstanceRefreshes gives it."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    BAKING = "Baking"
    CANCELLING = "Cancelling"
    ROLLBACK_IN_PROGRESS = "RollbackInProgress"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    ROLLBACK_SUCCESSFUL = "RollbackSuccessful"
    ROLLBACK_FAILED = "RollbackFailed"


# A refresh in one of these blocks StartInstanceRefresh (InstanceRefreshInProgress).
ACTIVE_STATUSES = frozenset({RefreshStatus.PENDING, RefreshStatus.IN_PROGRESS,
                             RefreshStatus.CANCELLING, RefreshStatus.ROLLBACK_IN_PROGRESS,
                             RefreshStatus.BAKING})
# Ended undone: the group's own alarms or an operator rolled it back, or it failed with
# AutoRollback. Its AMI is remembered on the group (ami-upgrade:failed-ami), not retried.
ROLLED_BACK_STATUSES = frozenset({RefreshStatus.ROLLBACK_SUCCESSFUL,
                                  RefreshStatus.ROLLBACK_FAILED})
IN_PROGRESS_ERROR = "InstanceRefreshInProgress"
NOT_ACTIVE_ERROR = "ActiveInstanceRefreshNotFound"


@dataclass(frozen=True)
class Refresh:
    id: str
    status: str
    percentage: int | None
    template: TemplateRef | None        # from DesiredConfiguration; None: the group's own
    desired_json: str | None = None
    status_reason: str = ""
    auto_rollback: bool = False

    @classmethod
    def from_aws(cls, data: Mapping[str, Any]) -> Refresh:
        desired = data.get("DesiredConfiguration") or None
        rollback = (data.get("RollbackDetails") or {}).get("RollbackReason")
        return cls(data["InstanceRefreshId"], data.get("Status", ""),
                   data.get("PercentageComplete"), desired_template(desired),
                   json.dumps(desired, sort_keys=True) if desired else None,
                   str(rollback or data.get("StatusReason") or ""),
                   bool((data.get("Preferences") or {}).get("AutoRollback")))

    @property
    def rolled_back(self) -> bool:
        """Ended undone: rolled back, or failed although it was to roll back."""
        return self.status in ROLLED_BACK_STATUSES or (
            self.status == RefreshStatus.FAILED and self.auto_rollback)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def latest_refresh(autoscaling: AutoScalingClient, group_name: str) -> Refresh | None:
    """The group's most recent refresh, the only one that can be active.

    AWS returns refreshes newest first and allows one active refresh per group,
    so the first record answers "is one running, and toward what" without paging.
    """
    items = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName=group_name, MaxRecords=1).get("InstanceRefreshes", [])
    return Refresh.from_aws(dict(items[0])) if items else None
