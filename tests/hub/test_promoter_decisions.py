"""The promotion's decisions, from a rollout state and an event, with values."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub.promoter import (
    BakeElapsed,
    Notify,
    Operator,
    Phase,
    Rollout,
    ScheduleCheck,
    SourceChanged,
    SpokeReported,
    WriteWave,
    decide,
    schedule_name,
)
from hub.settings import Target, load_hub_settings

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CANARY = Target("222222222222", "eu-west-1")
FLEET = (Target("333333333333", "eu-west-1"), Target("333333333333", "us-east-1"))
HUB = load_hub_settings({
    "account": "111111111111", "region": "eu-west-1", "sourceParameterName": "/golden",
    "waves": [
        {"name": "canary", "targets": [{"account": CANARY.account, "region": CANARY.region}],
         "bakeMinutes": 60, "gateAlarms": ["canary-5xx"], "rollbackOnGate": True},
        {"name": "fleet", "targets": [{"account": t.account, "region": t.region}
                                      for t in FLEET], "bakeMinutes": 30}]})
NEW, OLD, NEWER = "ami-0000000000000000b", "ami-0000000000000000a", "ami-0000000000000000c"


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def baking_canary() -> Rollout:
    state, _ = decide(HUB, Rollout(ami=OLD, phase=Phase.DONE), SourceChanged(NEW, at(0)))
    state, _ = decide(HUB, state, SpokeReported(CANARY, NEW, "succeeded", at(5)))
    return state


def test_a_new_source_ami_writes_the_first_wave_only():
    state, actions = decide(HUB, Rollout(ami=OLD, phase=Phase.DONE), SourceChanged(NEW, at(0)))
    assert actions == (WriteWave(0, NEW),)
    assert (state.ami, state.previous_ami, state.wave, state.phase) == (
        NEW, OLD, 0, Phase.CONVERGING)


def test_the_same_source_ami_redelivered_decides_nothing():
    state, _ = decide(HUB, Rollout(), SourceChanged(NEW, at(0)))
    assert decide(HUB, state, SourceChanged(NEW, at(1))) == (state, ())


def test_the_last_spoke_of_a_wave_converging_schedules_the_bake_check():
    state = baking_canary()
    assert state.phase is Phase.BAKING and state.bake_until == "2026-01-01T01:05:00+00:00"


def test_converged_wave_schedules_a_check_at_the_end_of_its_bake_time():
    state, _ = decide(HUB, Rollout(), SourceChanged(NEW, at(0)))
    _, actions = decide(HUB, state, SpokeReported(CANARY, NEW, "succeeded", at(5)))
    assert actions == (ScheduleCheck(schedule_name(0, NEW, "2026-01-01T00:00:00+00:00"), 0, NEW,
                                     at(65)),)


@pytest.mark.parametrize(("target", "ami", "status"), [
    (CANARY, OLD, "succeeded"),          # a report for the previous AMI
    (CANARY, NEW, "partial"),            # work left: not converged
    (FLEET[0], NEW, "succeeded"),        # a spoke of a later wave
])
def test_a_report_that_is_not_convergence_of_the_wave_in_flight_does_not_count(
        target, ami, status):
    state, _ = decide(HUB, Rollout(), SourceChanged(NEW, at(0)))
    next_state, actions = decide(HUB, state, SpokeReported(target, ami, status, at(5)))
    assert actions == () and next_state.converged == frozenset()
    assert (target.key, ami, status) in next_state.reports


def test_a_spoke_whose_refreshes_still_run_is_refreshing_not_converged():
    state, _ = decide(HUB, Rollout(), SourceChanged(NEW, at(0)))
    refreshing, actions = decide(HUB, state, SpokeReported(CANARY, NEW, "succeeded", at(5),
                                                           refreshing=1))
    assert actions == () and refreshing.phase is Phase.CONVERGING
    assert refreshing.converged == frozenset() and refreshing.bake_until is None
    assert refreshing.reports == ((CANARY.key, NEW, "refreshing"),)


def test_the_later_report_once_the_refresh_ended_converges_and_the_bake_starts_then():
    state, _ = decide(HUB, Rollout(), SourceChanged(NEW, at(0)))
    state, _ = decide(HUB, state, SpokeReported(CANARY, NEW, "succeeded", at(5), refreshing=1))
    state, actions = decide(HUB, state, SpokeReported(CANARY, NEW, "succeeded", at(40)))
    assert state.phase is Phase.BAKING and state.converged == {CANARY.key}
    assert state.reports == ((CANARY.key, NEW, "succeeded"),)
    assert actions == (ScheduleCheck(schedule_name(0, NEW, "2026-01-01T00:00:00+00:00"), 0, NEW,
                                     at(100)),)


@pytest.mark.parametrize(("counts", "recorded"), [
    ({"rolled_back": 1}, "rolled_back"), ({"pending": 2}, "in_progress")])
def test_a_spoke_with_a_group_rolled_back_or_work_left_is_not_converged(counts, recorded):
    state, _ = decide(HUB, Rollout(), SourceChanged(NEW, at(0)))
    state, actions = decide(HUB, state, SpokeReported(CANARY, NEW, "succeeded", at(5), **counts))
    assert actions == () and state.converged == frozenset()
    assert state.reports == ((CANARY.key, NEW, recorded),)


def test_a_wave_waits_for_every_spoke():
    state, _ = decide(HUB, Rollout(ami=NEW, phase=Phase.CONVERGING, wave=1), SpokeReported(
        FLEET[0], NEW, "succeeded", at(0)))
    assert state.phase is Phase.CONVERGING and state.converged == {FLEET[0].key}


def test_a_redelivered_report_counts_once():
    state, _ = decide(HUB, Rollout(ami=NEW, phase=Phase.CONVERGING, wave=1), SpokeReported(
        FLEET[0], NEW, "succeeded", at(0)))
    again, actions = decide(HUB, state, SpokeReported(FLEET[0], NEW, "succeeded", at(1)))
    assert actions == () and again.converged == state.converged


def test_bake_elapsed_with_gates_clear_promotes_to_the_next_wave():
    state, actions = decide(HUB, baking_canary(), BakeElapsed(0, NEW, (), at(65)))
    assert actions == (WriteWave(1, NEW),)
    assert (state.wave, state.phase, state.converged) == (1, Phase.CONVERGING, frozenset())
    assert state.history == (("canary", "2026-01-01T00:00:00+00:00",
                              "2026-01-01T01:05:00+00:00"),)


def test_a_bake_check_before_the_bake_time_decides_nothing():
    state = baking_canary()
    assert decide(HUB, state, BakeElapsed(0, NEW, (), at(64))) == (state, ())


def test_a_redelivered_bake_check_after_promotion_decides_nothing():
    state, _ = decide(HUB, baking_canary(), BakeElapsed(0, NEW, (), at(65)))
    assert decide(HUB, state, BakeElapsed(0, NEW, (), at(66))) == (state, ())


def test_a_gate_in_alarm_halts_and_writes_the_previous_ami_back_to_the_failed_wave():
    state, actions = decide(HUB, baking_canary(), BakeElapsed(0, NEW, ("canary-5xx",), at(65)))
    assert state.phase is Phase.HALTED and "canary-5xx" in state.reason
    assert actions[0] == Notify("halted", {"wave": "canary", "reason": state.reason,
                                           "ami": NEW})
    assert actions[1:] == (WriteWave(0, OLD),)


def halted_canary() -> Rollout:
    """The canary's gate failed at minute 65; the rollback's report (OLD) came in."""
    state, _ = decide(HUB, baking_canary(), BakeElapsed(0, NEW, ("canary-5xx",), at(65)))
    state, _ = decide(HUB, state, SpokeReported(CANARY, OLD, "succeeded", at(66)))
    return state


def test_a_halted_rollout_moves_on_no_report_or_check():
    halted = halted_canary()
    assert decide(HUB, halted, BakeElapsed(0, NEW, (), at(70)))[1] == ()
    assert decide(HUB, halted, SpokeReported(CANARY, NEW, "succeeded", at(70)))[1] == ()


def test_the_same_ami_published_again_after_a_halt_is_reported_and_changes_nothing():
    halted = halted_canary()
    state, actions = decide(HUB, halted, SourceChanged(NEW, at(70)))
    assert state == halted
    [notice] = actions
    assert isinstance(notice, Notify) and notice.kind == "republished-halted"
    assert (notice.detail["ami"], notice.detail["reason"]) == (NEW, halted.reason)


def test_resume_of_a_halted_rollout_retries_the_wave_its_bake_and_its_gate():
    resumed, actions = decide(HUB, halted_canary(), Operator("resume", at(80)))
    assert actions == (WriteWave(0, NEW),)      # the rollback's OLD replaced by the AMI
    assert (resumed.phase, resumed.wave, resumed.converged, resumed.reason) == (
        Phase.CONVERGING, 0, frozenset(), "")
    assert resumed.wave_started_at == "2026-01-01T01:20:00+00:00"
    baking, actions = decide(HUB, resumed, SpokeReported(CANARY, NEW, "succeeded", at(85)))
    assert actions == (ScheduleCheck(schedule_name(0, NEW, "2026-01-01T01:20:00+00:00"),
                                     0, NEW, at(145)),)
    assert actions[0].name != schedule_name(0, NEW, "2026-01-01T00:00:00+00:00")  # spent
    assert decide(HUB, baking, BakeElapsed(0, NEW, (), at(140)))[1] == ()
    promoted, actions = decide(HUB, baking, BakeElapsed(0, NEW, (), at(145)))
    assert (promoted.wave, actions) == (1, (WriteWave(1, NEW),))


def test_resume_of_a_halted_wave_still_on_the_ami_bakes_again_at_once():
    hub = load_hub_settings({**json.loads(HUB.to_document()), "waves": [
        {**json.loads(HUB.to_document())["waves"][0], "rollbackOnGate": False},
        json.loads(HUB.to_document())["waves"][1]]})
    state, _ = decide(hub, Rollout(ami=OLD, phase=Phase.DONE), SourceChanged(NEW, at(0)))
    state, _ = decide(hub, state, SpokeReported(CANARY, NEW, "succeeded", at(5)))
    halted, actions = decide(hub, state, BakeElapsed(0, NEW, ("canary-5xx",), at(65)))
    assert [type(a) for a in actions] == [Notify]              # no rollback
    resumed, actions = decide(hub, halted, Operator("resume", at(70)))
    assert (resumed.phase, resumed.converged) == (Phase.BAKING, {CANARY.key})
    assert actions == (WriteWave(0, NEW), ScheduleCheck(
        schedule_name(0, NEW, "2026-01-01T01:10:00+00:00"), 0, NEW, at(130)))
    again, actions = decide(hub, resumed, BakeElapsed(0, NEW, ("canary-5xx",), at(130)))
    assert again.phase is Phase.HALTED


def test_promote_now_of_a_halted_rollout_passes_the_gate():
    promoted, actions = decide(HUB, halted_canary(), Operator("promote-now", at(80)))
    assert actions == (WriteWave(0, NEW), WriteWave(1, NEW))
    assert (promoted.phase, promoted.wave, promoted.reason) == (Phase.CONVERGING, 1, "")
    assert promoted.history == (("canary", "2026-01-01T00:00:00+00:00",
                                 "2026-01-01T01:20:00+00:00"),)


def test_hold_of_a_halted_rollout_is_lifted_by_resume():
    held, _ = decide(HUB, halted_canary(), Operator("hold", at(70)))
    resumed, actions = decide(HUB, held, Operator("resume", at(80)))
    assert (resumed.held, resumed.phase, actions) == (False, Phase.CONVERGING,
                                                      (WriteWave(0, NEW),))


def test_the_last_wave_baked_finishes_the_rollout():
    state = Rollout(ami=NEW, wave=1, phase=Phase.BAKING, bake_until="2026-01-01T00:30:00+00:00")
    done, actions = decide(HUB, state, BakeElapsed(1, NEW, (), at(30)))
    assert done.phase is Phase.DONE and actions == (Notify("done", {"ami": NEW}),)


def test_a_newer_ami_mid_rollout_restarts_at_the_first_wave_and_stales_old_checks():
    superseded, actions = decide(HUB, baking_canary(), SourceChanged(NEWER, at(10)))
    assert actions == (Notify("superseded", {"ami": NEW, "by": NEWER}), WriteWave(0, NEWER))
    assert (superseded.ami, superseded.previous_ami, superseded.wave) == (NEWER, OLD, 0)
    assert decide(HUB, superseded, BakeElapsed(0, NEW, (), at(65)))[1] == ()


def test_a_held_rollout_ignores_its_check_and_resume_schedules_it_again():
    held, _ = decide(HUB, baking_canary(), Operator("hold", at(6)))
    assert decide(HUB, held, BakeElapsed(0, NEW, (), at(65))) == (held, ())
    resumed, actions = decide(HUB, held, Operator("resume", at(90)))
    assert not resumed.held
    name = schedule_name(0, NEW, "2026-01-01T00:00:00+00:00") + "-r"
    assert actions == (ScheduleCheck(name, 0, NEW, at(90)),)


def test_promote_now_skips_the_bake():
    state, actions = decide(HUB, baking_canary(), Operator("promote-now", at(6)))
    assert state.wave == 1 and actions == (WriteWave(1, NEW),)


def test_a_per_region_source_value_counts_each_regions_ami():
    value = '{"eu-west-1": "ami-0000000000000000e", "us-east-1": "ami-0000000000000000f"}'
    state = Rollout(ami=value, wave=1, phase=Phase.CONVERGING)
    state, _ = decide(HUB, state, SpokeReported(FLEET[1], "ami-0000000000000000e",
                                                "succeeded", at(0)))
    assert state.converged == frozenset()
    state, _ = decide(HUB, state, SpokeReported(FLEET[1], "ami-0000000000000000f",
                                                "succeeded", at(0)))
    assert state.converged == {FLEET[1].key}
