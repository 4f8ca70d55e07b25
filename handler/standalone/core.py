"""What every standalone strategy speaks: steps, plans, and the two base classes.

A strategy (one module: ``relaunch.py``, ``replace_root_volume.py``) subclasses
:class:`Strategy`: it recognises its own replacements in flight, plans an instance,
builds a :class:`Machine` (subclassed too) that drives one replacement, and declares the
IAM permissions it needs (:class:`Permissions`, rendered by ``components/policy.py``).
Both base classes hold defaults for what most strategies do not need, so a strategy
overrides only what it does. ``handler/strategies.py`` lists them (``registry.py`` loads
them); ``plan.py``, ``preflight.py`` and ``runner.py`` only go through the registry.

A machine decides from a snapshot (the :class:`~.observation.Observation` plus the
records its strategy read this round) and returns one step: a :class:`Call` (at
most one mutating call), a :class:`Wait`, or a :class:`Finish` with the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..aws import describe_error, tag_list
from ..log import log_event
from ..outcomes import Code
from ..report import InstanceEntry
from ..run import Action
from ..tags import ATTEMPT, IN_FLIGHT, OPERATOR_HOLD, ROLLBACK, count_tag
from .observation import Needs

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from types_boto3_ec2.client import EC2Client

    from ..ami import Image
    from ..run import RunContext
    from .iam import Permissions
    from .observation import InstanceView, Observation
    from .preflight import Facts
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


def log_refusal(old_id: str, call: Call, error: ClientError) -> None:
    log_event("replacement_call_failed", instance=old_id, step=call.step,
              reason=describe_error(error, call.operation))


def stopped_at(old_id: str, call: Call, error: ClientError) -> Finish:
    """A replacement that stops at ``call`` (refused), its tags kept for the next run."""
    return Finish(InstanceEntry(old_id, Action.FAILED, Code.PROGRESS_TAGS_KEPT,
                                f"stopped at '{call.step}': "
                                f"{describe_error(error, call.operation)}; the next "
                                "invocation resumes it (progress tags kept)"))


def finished_elsewhere(old_id: str, why: str) -> Finish:
    """No trace of a replacement a resume was sent to finish: another invocation
    finished it (or an operator removed it); never reported as this run's failure."""
    return Finish(InstanceEntry(old_id, Action.SKIPPED, Code.ENDED_ELSEWHERE, why),
                  no_trace=True)


Step = Call | Wait | Finish


def record_intent(old: InstanceView, intent: Mapping[str, str], on_error: OnError
                  ) -> Call | Finish:
    """A replacement's first step: its intent and the next attempt number on the old
    instance, unless it stopped running since it was planned (then nothing is done)."""
    if old.state != "running":
        return Finish(InstanceEntry(old.id, Action.SKIPPED, Code.NOT_RUNNING,
                                    f"state changed to {old.state} before the replacement "
                                    "started; nothing was changed"))
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
class Unchecked:
    """What planning read for a plan whose strategy checks it when it starts: the
    instance as described, the preflight's facts, the images of the candidates."""

    instance: Mapping[str, Any]
    facts: Facts
    images: Mapping[str, Image]


@dataclass(frozen=True)
class InstancePlan:
    instance_id: str
    action: PlanAction
    reason: str
    strategy: str = ""          # its strategy's name (a skip names none)
    shape: InstanceShape | None = None
    volumes: tuple[str, ...] = ()
    target: str | None = None   # a resume's recorded target AMI (None: the run's AMI)
    retry_at: str | None = None  # a skip until then (a transient rollback's retry time)
    code: Code = Code.PLANNED    # a skip's: why (held for an operator: reported failed)
    # Its strategy's own reads (the shape) and the checks needing them are left to when it
    # starts (planning reads only what every candidate shares): what planning read for it.
    unchecked: Unchecked | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.action == PlanAction.SKIP and self.code == Code.PLANNED:
            raise ValueError(f"a skip of {self.instance_id} needs the code saying why")

    def entry(self) -> InstanceEntry:
        if self.action == PlanAction.SKIP:
            return InstanceEntry(self.instance_id, SKIP_ACTIONS.get(self.code, Action.SKIPPED),
                                 self.code, self.reason)
        return InstanceEntry(self.instance_id, Action.PLANNED, Code.PLANNED, self.reason,
                             volumes=self.volumes, details={"strategy": self.strategy})


# A skipped plan is reported skipped, except these: nothing to drive now, but not done.
SKIP_ACTIONS = {Code.HELD_FOR_OPERATOR: Action.FAILED, Code.RETRY_SCHEDULED: Action.IN_PROGRESS}


@dataclass
class PlanInputs:
    """What planning read once for every candidate, and the strategies to plan with."""

    ctx: RunContext
    strategies: Mapping[str, Strategy]
    images: dict[str, Image] = field(default_factory=dict)
    instance_store: set[str] = field(default_factory=set)
    profile_roles: dict[str, str | None] = field(default_factory=dict)  # passable's memo
    volumes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # read already

    def skip(self, instance_id: str, reason: str, code: Code) -> InstancePlan:
        return InstancePlan(instance_id, PlanAction.SKIP, reason, code=code)


class Machine:
    """One replacement in flight, resumable from what AWS shows.

    A strategy's machine subclasses it and overrides :meth:`step`; the defaults are what a
    machine needs that waits for no status check, reads only its old instance (and its
    strategy's records), knows no call's effect without observing again, and fails with
    its progress tags kept when AWS refuses a call.
    """

    old_id: str
    waiting: Wait | None = None

    def step(self, obs: Observation, records: Sequence[Mapping[str, Any]]) -> Step:
        """The next step from the round's observation and its strategy's records."""
        raise NotImplementedError

    def succeeded(self, call: Call, obs: Observation,
                  response: Mapping[str, Any]) -> Finish | None:
        """After ``call`` succeeded: the finish when it ended the work."""
        return None

    def refused(self, call: Call, error: ClientError, obs: Observation) -> Finish | None:
        """After AWS refused ``call`` for good: the finish, or None to step on."""
        log_refusal(self.old_id, call, error)
        return stopped_at(self.old_id, call, error)

    def progress_entry(self) -> InstanceEntry:
        """Its entry while it goes on in the next invocation."""
        waiting = self.waiting.reason if self.waiting else "started"
        return InstanceEntry(self.old_id, Action.IN_PROGRESS, Code.IN_PROGRESS,
                             f"in progress ({waiting}); continues in the next invocation",
                             volumes=self.seen_volumes())

    def seen_volumes(self) -> tuple[str, ...]:
        """The data volumes it has seen (where a replacement finished elsewhere is found)."""
        return ()

    def note_health_wait(self, now: float) -> None:
        """Count the time waited for status checks (none by default)."""

    def health_tag(self) -> Call | None:
        """The call carrying the time waited for status checks over (none by default)."""
        return None

    def health_pending(self) -> tuple[str, ...]:
        """The instances whose status checks it waits for, while its wait is within its
        bound (empty: the next round must observe everything)."""
        return ()

    def needs(self) -> Needs:
        """What the next round must read for it (see :class:`~.observation.Needs`): by
        default its old instance alone."""
        return Needs(search=False, template=False, homes={})

    def effect(self, call: Call, obs: Observation,
               response: Mapping[str, Any]) -> Observation | None:
        """``obs`` as it is after ``call`` succeeded, when the call's response says so
        (so the machine goes on without a new round); None: observe again first."""
        return None


# The tags every replacement writes on its old instance with its intent (record_intent).
INTENT_TAGS = (IN_FLIGHT, ATTEMPT)


class Strategy:
    """One way of moving a standalone instance onto the new AMI.

    A strategy module defines a subclass and its ``STRATEGY`` instance, and adds one line
    to ``handler/strategies.py``. It sets ``name``, ``target_tag`` and ``permissions`` and
    overrides :meth:`machine`; every other member has a default for a strategy that
    keeps the instance (no shape, no records, no references to carry over).
    """

    name: str                 # the value of ``ami-upgrade:strategy`` / ``strategy`` setting
    target_tag: str           # on the old instance: the AMI its replacement heads to
    permissions: Permissions  # the IAM it needs (``iam.py``), rendered into the role
    needs_addresses: bool = False   # its machines read Elastic IPs in the observation
    # The volumes whose KMS keys its calls use ("root", "data"): the preflight checks them.
    uses_keys_of: frozenset[str] = frozenset()

    @property
    def engine_tags(self) -> Mapping[str, tuple[str, ...]]:
        """Every tag key it may write, by resource ("instance": the old one, "volume",
        "new instance"): the tag-room check counts them."""
        return {"instance": (*INTENT_TAGS, self.target_tag)}

    def recognises(self, tags: Mapping[str, str]) -> bool:
        """True when an in-flight old instance's tags record this strategy's intent."""
        return self.target_tag in tags

    def claims(self, tags: Mapping[str, str]) -> str | None:
        """The old instance a resource it made or moved (new instance, volume) belongs to."""
        return None

    def inconsistent(self, old_id: str, tags: Mapping[str, str]) -> str | None:
        """Why an old instance's tags are not a record this strategy wrote, or None."""
        return None

    def precheck(self, inputs: PlanInputs, instance: dict[str, Any]) -> InstancePlan | None:
        """Its decision from the instance alone, before its own reads; None: plan it."""
        return None

    def plan(self, inputs: PlanInputs, instance: dict[str, Any], note: str = "") -> InstancePlan:
        """Replace (with what it needs) or skip, with the reason; reads only."""
        return InstancePlan(instance["InstanceId"], PlanAction.REPLACE,
                            f"{self.name} onto {inputs.ctx.goal.id}{note}", self.name)

    def preflight(self, inputs: PlanInputs, facts: Facts, instance: dict[str, Any],
                  plan: InstancePlan) -> InstancePlan:
        """``plan`` checked against the estate's facts before anything changes (its own
        checks; the keys and the tag room are checked for every strategy)."""
        return plan

    def resume_shape(self, ec2: EC2Client, instance: dict[str, Any]) -> InstanceShape | None:
        """What a resumed replacement needs captured from the live old instance."""
        return None

    def read(self, ec2: EC2Client, old_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Records its machines decide from besides the observation (batched, per round)."""
        return {}

    def machine(self, ctx: RunContext, plan: InstancePlan,
                root_device_for: Callable[[str], str]) -> Machine:
        raise NotImplementedError
