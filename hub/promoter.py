"""The promotion as a pure state machine: (rollout state, event) -> (next state, actions).

No I/O: the driver (:mod:`hub.driver`) reads the state, reads what a decision needs
(the gate alarms' states), calls :func:`decide`, carries out the actions and then
saves the state with a conditional write. Every action is idempotent (a parameter
written with the value it has, a schedule whose deterministic name exists), and the
state is saved last, so an invocation that dies after any action is resumed by the
redelivery of the same event: the same decision, the same actions, then the save.

A redelivered or stale event decides nothing: a spoke report counts once, for the
AMI and wave in flight; a bake check counts only for the wave and AMI it was
scheduled for. A newer source AMI supersedes the rollout in flight: it starts again
at the first wave, and checks scheduled for the old one are then stale.

A halted rollout moves on three things only: a newer AMI (a new rollout), the
operator's ``resume`` (the halted wave again: its parameter written back with the
rollout's AMI, its spokes' convergence, its bake and its gate) and ``promote-now``
(the operator passes the gate: the halted wave keeps the AMI and the next one gets
it). The same AMI published again is reported (``Notify("republished-halted")``),
and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, replace
from enum import StrEnum

from hub.settings import HubSettings, Target


class Phase(StrEnum):
    IDLE = "idle"            # no AMI published yet
    CONVERGING = "converging"  # the wave's parameter is written; waiting for its spokes
    BAKING = "baking"        # every spoke converged; a check is scheduled at bake_until
    HALTED = "halted"        # a gate alarm was in ALARM: a new AMI or the operator moves it
    DONE = "done"            # every wave converged and baked


@dataclass(frozen=True)
class Rollout:
    """What the hub knows of the rollout in flight (saved as one item, versioned)."""

    ami: str | None = None
    previous_ami: str | None = None   # what the waves ran before this rollout
    wave: int = 0
    phase: Phase = Phase.IDLE
    converged: frozenset[str] = frozenset()   # Target.key of the wave's converged spokes
    reports: tuple[tuple[str, str, str], ...] = ()  # (target key, ami, status) last seen
    wave_started_at: str | None = None
    bake_until: str | None = None
    held: bool = False
    reason: str = ""
    history: tuple[tuple[str, str, str], ...] = ()  # (wave name, started_at, finished_at)
    version: int = 0


# Events -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceChanged:
    ami: str
    at: dt.datetime


SUCCEEDED, REFRESHING, ROLLED_BACK = "succeeded", "refreshing", "rolled_back"


@dataclass(frozen=True)
class SpokeReported:
    """A spoke's run report. Converged: ``succeeded`` with its estate on the AMI, i.e. no
    group whose refresh toward it is started or running (``refreshing``), none whose
    refresh rolled back (``rolled_back``) and no resource with work left (``pending``)."""

    target: Target
    ami: str | None
    status: str          # the spoke report's ``status``
    at: dt.datetime
    refreshing: int = 0
    rolled_back: int = 0
    pending: int = 0

    @property
    def outcome(self) -> str:
        """What the hub records for the spoke: ``succeeded`` only when converged; a
        succeeded run whose refreshes still run is ``refreshing``."""
        if self.status != SUCCEEDED:
            return self.status
        if self.refreshing:
            return REFRESHING
        if self.rolled_back:
            return ROLLED_BACK
        return "in_progress" if self.pending else SUCCEEDED


@dataclass(frozen=True)
class BakeElapsed:
    wave: int
    ami: str
    alarms_in_alarm: tuple[str, ...]   # read by the driver from the wave's gate alarms
    at: dt.datetime


@dataclass(frozen=True)
class Operator:
    command: str         # "hold", "resume", "promote-now"
    at: dt.datetime


Event = SourceChanged | SpokeReported | BakeElapsed | Operator
OPERATOR_COMMANDS = ("hold", "resume", "promote-now")


# Actions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class WriteWave:
    """Put ``ami`` into the wave's parameter in every region of the wave."""

    wave: int
    ami: str


@dataclass(frozen=True)
class ScheduleCheck:
    """A one-shot schedule invoking the promoter with a BakeElapsed at ``at``."""

    name: str
    wave: int
    ami: str
    at: dt.datetime


@dataclass(frozen=True)
class Notify:
    """A rollout milestone for the operator (halted, done, superseded)."""

    kind: str
    detail: dict[str, str] = field(default_factory=dict)


Action = WriteWave | ScheduleCheck | Notify


def region_ami(value: str | None, region: str) -> str | None:
    """The AMI a region's spokes run for a source value: one AMI ID for every region, or
    a JSON object of region -> AMI ID (an AMI is regional; copies have their own IDs)."""
    if value is None:
        return None
    if value.startswith("ami-"):
        return value
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError:
        return None
    found = mapping.get(region) if isinstance(mapping, dict) else None
    return found if isinstance(found, str) and found.startswith("ami-") else None


def schedule_name(wave: int, ami: str, started_at: str | None) -> str:
    """Deterministic, so a re-created schedule after a crash is the same schedule; named
    after the wave's start too, so a wave the operator restarts has a check of its own."""
    salt = f":{started_at}" if started_at else ""
    digest = hashlib.sha256(f"{wave}:{ami}{salt}".encode()).hexdigest()[:16]
    return f"ami-upgrade-hub-w{wave}-{digest}"


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def decide(hub: HubSettings, state: Rollout, event: Event
           ) -> tuple[Rollout, tuple[Action, ...]]:
    """The next state and the actions taking the rollout there. Pure and total."""
    if isinstance(event, SourceChanged):
        return _source_changed(state, event)
    if isinstance(event, SpokeReported):
        return _spoke_reported(hub, state, event)
    if isinstance(event, BakeElapsed):
        return _bake_elapsed(hub, state, event)
    return _operator(hub, state, event)


def _source_changed(state: Rollout, event: SourceChanged
                    ) -> tuple[Rollout, tuple[Action, ...]]:
    if event.ami == state.ami:
        if state.phase is Phase.HALTED:
            return state, (Notify("republished-halted", {
                "ami": event.ami, "reason": state.reason,
                "next": "resume retries the halted wave; promote-now passes its gate; "
                        "a newer AMI starts a new rollout"}),)
        return state, ()
    previous = state.ami if state.phase in (Phase.DONE, Phase.IDLE) else state.previous_ami
    actions: list[Action] = []
    if state.phase in (Phase.CONVERGING, Phase.BAKING):
        actions.append(Notify("superseded", {"ami": state.ami or "", "by": event.ami}))
    started = iso(event.at)
    next_state = Rollout(ami=event.ami, previous_ami=previous, wave=0,
                         phase=Phase.CONVERGING, wave_started_at=started, held=state.held,
                         version=state.version)
    return next_state, (*actions, WriteWave(0, event.ami))


def _spoke_reported(hub: HubSettings, state: Rollout, event: SpokeReported
                    ) -> tuple[Rollout, tuple[Action, ...]]:
    key = event.target.key
    reports = (*(r for r in state.reports if r[0] != key),
               (key, event.ami or "", event.outcome))
    state = replace(state, reports=tuple(sorted(reports)))
    if (state.phase is not Phase.CONVERGING
            or event.ami != region_ami(state.ami, event.target.region)
            or event.target not in hub.waves[state.wave].targets
            or event.outcome != SUCCEEDED or key in state.converged):
        return state, ()
    converged = state.converged | {key}
    wave = hub.waves[state.wave]
    if len(converged) < len(wave.targets):
        return replace(state, converged=converged), ()
    bake_until = event.at + dt.timedelta(seconds=wave.bake_seconds)
    assert state.ami is not None
    return (replace(state, converged=converged, phase=Phase.BAKING, bake_until=iso(bake_until)),
            (ScheduleCheck(schedule_name(state.wave, state.ami, state.wave_started_at),
                           state.wave, state.ami, bake_until),))


def _bake_elapsed(hub: HubSettings, state: Rollout, event: BakeElapsed
                  ) -> tuple[Rollout, tuple[Action, ...]]:
    if (state.phase is not Phase.BAKING or event.wave != state.wave
            or event.ami != state.ami or state.held
            or (state.bake_until is not None and iso(event.at) < state.bake_until)):
        return state, ()
    wave = hub.waves[state.wave]
    if event.alarms_in_alarm:
        return _halt(state, wave.name, event, rollback=wave.rollback_on_gate)
    return _promote(hub, state, event.at)


def _halt(state: Rollout, wave_name: str, event: BakeElapsed, rollback: bool
          ) -> tuple[Rollout, tuple[Action, ...]]:
    reason = f"gate alarm(s) in ALARM after wave {wave_name!r}: " + ", ".join(
        event.alarms_in_alarm)
    actions: list[Action] = [Notify("halted", {"wave": wave_name, "reason": reason,
                                               "ami": event.ami})]
    if rollback and state.previous_ami:
        actions.append(WriteWave(state.wave, state.previous_ami))
    return replace(state, phase=Phase.HALTED, reason=reason), tuple(actions)


def _promote(hub: HubSettings, state: Rollout, at: dt.datetime
             ) -> tuple[Rollout, tuple[Action, ...]]:
    assert state.ami is not None
    finished = (hub.waves[state.wave].name, state.wave_started_at or "", iso(at))
    history = (*state.history, finished)
    if state.wave + 1 == len(hub.waves):
        return (replace(state, phase=Phase.DONE, history=history, bake_until=None),
                (Notify("done", {"ami": state.ami}),))
    return (replace(state, wave=state.wave + 1, phase=Phase.CONVERGING, converged=frozenset(),
                    wave_started_at=iso(at), bake_until=None, history=history),
            (WriteWave(state.wave + 1, state.ami),))


def _restart_halted(hub: HubSettings, state: Rollout, at: dt.datetime
                    ) -> tuple[Rollout, tuple[Action, ...]]:
    """The halted wave again: its parameter holds the rollout's AMI (written back if the
    gate rolled it back), its spokes already on it count, then its bake and gate."""
    assert state.ami is not None
    wave, started = hub.waves[state.wave], iso(at)
    reports = {key: (ami, status) for key, ami, status in state.reports}
    converged = frozenset(t.key for t in wave.targets
                          if reports.get(t.key) == (region_ami(state.ami, t.region), SUCCEEDED))
    restarted = replace(state, phase=Phase.CONVERGING, held=False, reason="",
                        converged=converged, wave_started_at=started, bake_until=None)
    actions: tuple[Action, ...] = (WriteWave(state.wave, state.ami),)
    if len(converged) < len(wave.targets):
        return restarted, actions
    bake_until = at + dt.timedelta(seconds=wave.bake_seconds)
    return (replace(restarted, phase=Phase.BAKING, bake_until=iso(bake_until)),
            (*actions, ScheduleCheck(schedule_name(state.wave, state.ami, started),
                                     state.wave, state.ami, bake_until)))


def _operator(hub: HubSettings, state: Rollout, event: Operator
              ) -> tuple[Rollout, tuple[Action, ...]]:
    if event.command == "hold":
        return replace(state, held=True), ()
    if state.phase is Phase.HALTED and state.ami is not None:
        if event.command == "resume":
            return _restart_halted(hub, state, event.at)
        if event.command == "promote-now":
            promoted, actions = _promote(hub, replace(state, held=False, reason=""), event.at)
            return promoted, (WriteWave(state.wave, state.ami), *actions)
        return state, ()
    if event.command == "resume":
        if not state.held:
            return state, ()
        resumed = replace(state, held=False)
        if state.phase is Phase.BAKING and state.ami is not None:
            due = max(event.at, dt.datetime.fromisoformat(state.bake_until or iso(event.at)))
            name = schedule_name(state.wave, state.ami, state.wave_started_at) + "-r"
            return resumed, (ScheduleCheck(name, state.wave, state.ami, due),)
        return resumed, ()
    if event.command == "promote-now" and state.phase in (Phase.CONVERGING, Phase.BAKING):
        return _promote(hub, state, event.at)
    return state, ()
