"""What every standalone strategy speaks: steps, plans, and the two protocols.

A strategy (one module: ``relaunch.py``, ``replace_root_volume.py``) is a
:class:`Strategy`: it recognises its own replacements in flight, plans an instance,
builds a :class:`Machine` that drives one replacement, and declares the IAM
permissions it needs (:class:`Permissions`, rendered by ``components/policy.py``).
``registry.py`` lists them; ``plan.py`` and ``runner.py`` only go through it.

A machine decides from a snapshot (the :class:`~.observation.Observation` plus the
records its strategy read this round) and returns one step: a :class:`Call` (at
most one mutating call), a :class:`Wait`, or a :class:`Finish` with the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ..aws import tag_list
from ..report import InstanceEntry
from ..run import Action
from ..tags import ATTEMPT, OPERATOR_HOLD, ROLLBACK, count_tag

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from types_boto3_ec2.client import EC2Client

    from ..ami import Image
    from ..run import RunContext
    from .iam import Permissions
    from .observation import InstanceView, Needs, Observation
    from .shape import InstanceShape


class OnError(StrEnum):
    """What a failed call leads to."""

    ROLL_BACK = "roll back"
    FAIL = "fail"


ROLL_BACK, FAIL = OnError.ROLL_BACK, OnError.FAIL


@dataclass(frozen=True)
class Call:
    operation: str          # boto3 method name
    kwargs: dict[str, Any]
    on_error: OnError
    step: str               # what it does, for the log


@dataclass(frozen=True)
class Wait:
    reason: str
    health: bool = False    # waiting for status checks (counted against the health timeout)


@dataclass(frozen=True)
class Finish:
    entry: InstanceEntry
    ami_id: str | None = None   # the AMI the instance ended on, when replaced
    # Concluded from the absence of any trace (old instance gone or intent removed): the
    # runner observes again, then asks AWS where the volumes are, before reporting it.
    no_trace: bool = False


def finished_elsewhere(old_id: str, why: str) -> Finish:
    """No trace of a replacement a resume was sent to finish: another invocation
    finished it (or an operator removed it); never reported as this run's failure."""
    return Finish(InstanceEntry(old_id, Action.SKIPPED, why), no_trace=True)


Step = Call | Wait | Finish


def record_intent(old: InstanceView, intent: Mapping[str, str], on_error: OnError
                  ) -> Call | Finish:
    """A replacement's first step: its intent and the next attempt number on the old
    instance, unless it stopped running since it was planned (then nothing is done)."""
    if old.state != "running":
        return Finish(InstanceEntry(old.id, Action.SKIPPED, f"state changed to {old.state} "
                                    "before the replacement started; nothing was changed"))
    attempt = str(count_tag(old.tags.get(ATTEMPT)) + 1)
    return Call("create_tags", {"Resources": [old.id], "Tags": tag_list(
        {**intent, ATTEMPT: attempt})}, on_error, "record the intent")


def hold_of(tags: Mapping[str, str]) -> str | None:
    """The operator hold on an old instance, counted only during a rollback (the only time
    the engine writes it): a hold tag on anything else holds nothing."""
    return (tags.get(OPERATOR_HOLD) or None) if tags.get(ROLLBACK) else None


def held_reason(old_id: str, hold: str) -> str:
    """The report's reason for a rollback held for an operator by ``hold`` (the value of
    the operator-hold tag: what to do, then AWS's words)."""
    return (f"rollback held for an operator: {hold}; then remove tag {OPERATOR_HOLD} from "
            f"{old_id}: the next run (a direct invocation, the scheduled reconcile or a new "
            "AMI) resumes the rollback from its progress tags; until then it is not retried")


class PlanAction(StrEnum):
    """What the runner does with an instance."""

    REPLACE = "replace"
    RESUME = "resume"
    ROLL_BACK = "roll back"   # in flight, but its target AMI is gone: back to the old state
    SKIP = "skip"


@dataclass(frozen=True)
class InstancePlan:
    instance_id: str
    action: PlanAction
    reason: str
    strategy: str = "relaunch"
    shape: InstanceShape | None = None
    volumes: tuple[str, ...] = ()
    target: str | None = None   # a resume's recorded target AMI (None: the run's AMI)
    retry_at: str | None = None  # a skip until then (a transient rollback's retry time)
    held: bool = False           # a skip held for an operator (operator-hold): failed
    # Its strategy's own reads (the shape) and the checks needing them, left to when it
    # starts (planning reads only what every candidate shares): the whole plan, or a skip.
    completion: Callable[[], InstancePlan] | None = field(default=None, compare=False,
                                                          repr=False)

    @property
    def deferred(self) -> bool:
        return self.completion is not None

    def entry(self) -> InstanceEntry:
        if self.action == PlanAction.SKIP:
            return InstanceEntry(self.instance_id, Action.FAILED if self.held
                                 else Action.IN_PROGRESS if self.retry_at
                                 else Action.SKIPPED, self.reason)
        return InstanceEntry(self.instance_id, Action.PLANNED, self.reason,
                             volumes=self.volumes, details={"strategy": self.strategy})


@dataclass
class PlanInputs:
    """What planning read once for every candidate, and the strategies to plan with."""

    ctx: RunContext
    strategies: Mapping[str, Strategy]
    images: dict[str, Image] = field(default_factory=dict)
    instance_store: set[str] = field(default_factory=set)
    profile_roles: dict[str, str | None] = field(default_factory=dict)  # passable's memo
    volumes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # read already

    def skip(self, instance_id: str, reason: str) -> InstancePlan:
        return InstancePlan(instance_id, PlanAction.SKIP, reason)


class Machine(Protocol):
    """One replacement in flight, resumable from what AWS shows."""

    old_id: str
    waiting: Wait | None

    def step(self, obs: Observation, records: Sequence[Mapping[str, Any]]) -> Step: ...
    def succeeded(self, call: Call, obs: Observation,
                  response: Mapping[str, Any]) -> Finish | None: ...
    def refused(self, call: Call, error: ClientError, obs: Observation) -> Finish | None: ...
    def progress_entry(self) -> InstanceEntry: ...
    def note_health_wait(self, now: float) -> None: ...
    def health_tag(self) -> Call | None: ...
    def health_pending(self) -> tuple[str, ...]:
        """The instances whose status checks it waits for, while its wait is within its
        bound (empty: the next round must observe everything)."""
        ...
    def needs(self) -> Needs:
        """What the next round must read for it (see :class:`~.observation.Needs`)."""
        ...
    def effect(self, call: Call, obs: Observation,
               response: Mapping[str, Any]) -> Observation | None:
        """``obs`` as it is after ``call`` succeeded, when the call's response says so
        (so the machine goes on without a new round); None: observe again first."""
        ...


class Strategy(Protocol):
    """One way of moving a standalone instance onto the new AMI."""

    name: str                 # the value of ``ami-upgrade:strategy`` / ``strategy`` setting
    target_tag: str           # on the old instance: the AMI its replacement heads to
    needs_addresses: bool     # its machines read Elastic IPs in the round's observation
    permissions: Permissions  # the IAM it needs (``iam.py``), rendered into the role

    def recognises(self, tags: Mapping[str, str]) -> bool:
        """True when an in-flight old instance's tags record this strategy's intent."""
        ...

    def claims(self, tags: Mapping[str, str]) -> str | None:
        """The old instance a resource it made or moved (new instance, volume) belongs to."""
        ...

    def plan(self, inputs: PlanInputs, instance: dict[str, Any], note: str = "") -> InstancePlan:
        """Replace (with what it needs) or skip, with the reason; reads only."""
        ...

    def resume_shape(self, ec2: EC2Client, instance: dict[str, Any]) -> InstanceShape | None:
        """What a resumed replacement needs captured from the live old instance."""
        ...

    def read(self, ec2: EC2Client, old_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Records its machines decide from besides the observation (batched, per round)."""
        ...

    def machine(self, ctx: RunContext, plan: InstancePlan,
                root_device_for: Callable[[str], str]) -> Machine: ...
