"""A hub promotes an AMI to its spokes in waves, on the embedded AWS.

Four accounts (the hub, a canary account, two fleet accounts) and two regions; the
spokes are the real function, the promoter the real driver (tests/e2e/hub_world.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import boto3
import pytest

from hub.promoter import Phase
from sandbox.core import embedded_aws
from sandbox.hub_world import (
    CANARY_SPOKE,
    FLEET,
    GATE,
    HUB,
    NEW,
    NEWER,
    OLD,
    R1,
    R2,
    SPOKE_GROUP,
    Crash,
    HubWorld,
    as_hub,
    as_spoke,
    settings,
)


@pytest.fixture
def world():
    with embedded_aws() as aws:
        yield HubWorld(aws)


def fleet_values(world: HubWorld) -> set[str]:
    return {world.wave_value("fleet", R1), world.wave_value("fleet", R2)}


def _fleet_promoted_after_the_bake(world) -> None:
    """The canary baking (60 minutes): the fleet keeps the old AMI until the bake ends."""
    world.advance(59)
    assert fleet_values(world) == {OLD}, "promoted before the canary's bake ended"
    world.advance(2)
    assert fleet_values(world) == {NEW}


def test_the_canary_wave_gets_the_new_ami_first_and_the_fleet_only_after_its_bake(world):
    world.publish(NEW)

    assert world.wave_value("canary", R1) == NEW and fleet_values(world) == {OLD}
    assert world.spokes[CANARY_SPOKE].reports[-1]["ami_id"] == NEW
    assert world.rollout().phase is Phase.BAKING

    _fleet_promoted_after_the_bake(world)
    assert all(world.spokes[t].reports[-1]["ami_id"] == NEW for t in FLEET)


def test_every_wave_converged_and_baked_finishes_the_rollout_in_order(world):
    world.publish(NEW)
    world.advance(61)
    world.advance(119)
    assert world.rollout().phase is Phase.BAKING

    world.advance(2)

    rollout = world.rollout()
    assert rollout.phase is Phase.DONE
    assert [name for name, _, _ in rollout.history] == ["canary", "fleet"]
    assert rollout.history[0][2] <= rollout.history[1][1]


def test_a_gate_alarm_halts_the_promotion_and_writes_the_previous_ami_back(world):
    world.publish(NEW)
    world.set_gate("ALARM")

    world.advance(61)

    rollout = world.rollout()
    assert rollout.phase is Phase.HALTED and "canary-errors" in rollout.reason
    assert fleet_values(world) == {OLD}
    assert world.wave_value("canary", R1) == OLD
    assert world.spokes[CANARY_SPOKE].reports[-1]["ami_id"] == OLD


def test_a_gate_alarm_without_rollback_halts_and_leaves_the_wave():
    with embedded_aws() as aws:
        world = HubWorld(aws, settings(rollback_on_gate=False))
        world.publish(NEW)
        world.set_gate("ALARM")
        world.advance(61)
        assert world.rollout().phase is Phase.HALTED
        assert world.wave_value("canary", R1) == NEW and fleet_values(world) == {OLD}


def test_the_same_ami_published_after_a_halt_is_reported_and_resume_retries_the_wave(world):
    world.publish(NEW)
    world.set_gate("ALARM")
    world.advance(61)

    republished = world.publish(NEW)

    assert republished["notifications"] == ["republished-halted"]
    assert world.rollout().phase is Phase.HALTED
    assert world.wave_value("canary", R1) == OLD and fleet_values(world) == {OLD}

    world.set_gate("OK")
    world.handle({"kind": "operator", "command": "resume"})
    assert world.wave_value("canary", R1) == NEW
    assert world.spokes[CANARY_SPOKE].reports[-1]["ami_id"] == NEW
    assert world.rollout().phase is Phase.BAKING
    _fleet_promoted_after_the_bake(world)
    assert world.wave_history("canary", R1) == [OLD, NEW, OLD, NEW]


@pytest.mark.parametrize("state", ["ALARM", "OK"])
def test_a_gate_alarm_named_by_arn_is_read_in_its_own_region(state):
    base = settings()
    canary = replace(base.waves[0], gate_alarms=(
        GATE, f"arn:aws:cloudwatch:{R2}:{HUB}:alarm:canary-latency"))
    with embedded_aws() as aws:
        world = HubWorld(aws, replace(base, waves=(canary, base.waves[1])))
        with as_hub():
            boto3.client("cloudwatch", region_name=R2).put_metric_alarm(
                AlarmName="canary-latency", MetricName="Latency", Namespace="Canary",
                Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=1,
                ComparisonOperator="GreaterThanThreshold")
            boto3.client("cloudwatch", region_name=R2).set_alarm_state(
                AlarmName="canary-latency", StateValue=state, StateReason="test")
        world.set_gate("OK")
        world.publish(NEW)
        world.advance(61)

        rollout = world.rollout()
        if state == "OK":
            assert (rollout.wave, rollout.phase) == (1, Phase.BAKING)
            assert fleet_values(world) == {NEW}
            return
        assert rollout.phase is Phase.HALTED
        assert rollout.reason.endswith(f"arn:aws:cloudwatch:{R2}:{HUB}:alarm:canary-latency")
        assert fleet_values(world) == {OLD}


def test_spokes_with_estates_refresh_and_replace_wave_by_wave():
    with embedded_aws() as aws:
        world = HubWorld(aws, estates=True)
        world.publish(NEW)
        world.advance(30)                 # the canary's group refresh runs its course

        assert world.estate_images(CANARY_SPOKE) == {"db-1": NEW, "web": NEW}
        assert {t: world.estate_images(t) for t in FLEET} == {
            t: {"db-1": OLD, "web": OLD} for t in FLEET}, "a fleet spoke moved before its wave"
        # the wave's run, then the run of its refresh's end (the group on the AMI)
        canary_report, after_refresh = world.spokes[CANARY_SPOKE].reports
        assert {i["action"] for i in canary_report["instances"]} >= {"replaced"}
        assert [g["action"] for g in canary_report["asgs"]] == ["refresh_started"]
        assert [g["action"] for g in after_refresh["asgs"]] == ["skipped"]

        world.advance(31 + 150)
        assert world.rollout().phase is Phase.DONE and world.settled()
        assert {t: world.estate_images(t) for t in FLEET} == {
            t: {"db-1": NEW, "web": NEW} for t in FLEET}


def canary_refresh(world: HubWorld) -> dict:
    with as_spoke(CANARY_SPOKE):
        [refresh] = boto3.client("autoscaling", region_name=R1).describe_instance_refreshes(
            AutoScalingGroupName=SPOKE_GROUP)["InstanceRefreshes"]
    return refresh


def test_the_canarys_bake_begins_only_after_its_refresh_ended():
    with embedded_aws() as aws:
        world = HubWorld(aws, estates=True)
        world.publish(NEW)

        rollout = world.rollout()
        assert (rollout.phase, rollout.converged) == (Phase.CONVERGING, frozenset())
        assert (CANARY_SPOKE.key, NEW, "refreshing") in rollout.reports
        assert canary_refresh(world)["Status"] in ("Pending", "InProgress")

        deadline = aws.clock.now() + dt.timedelta(hours=6)
        while world.rollout().phase is Phase.CONVERGING:
            world.advance(5)
            assert aws.clock.now() < deadline, "the canary never converged"

        refresh, rollout = canary_refresh(world), world.rollout()
        assert refresh["Status"] == "Successful" and rollout.phase is Phase.BAKING
        bake_start = dt.datetime.fromisoformat(rollout.bake_until) - dt.timedelta(minutes=60)
        assert bake_start >= refresh["EndTime"]
        assert (CANARY_SPOKE.key, NEW, "succeeded") in rollout.reports
        assert {world.wave_value("fleet", R1), world.wave_value("fleet", R2)} == {OLD}


def test_a_lost_refresh_end_is_caught_by_the_spokes_reconcile():
    with embedded_aws() as aws:
        world = HubWorld(aws, estates=True)
        world.lost_refresh_ends = {CANARY_SPOKE}
        world.publish(NEW)
        world.advance(60)

        assert canary_refresh(world)["Status"] == "Successful"
        assert world.rollout().phase is Phase.CONVERGING, "converged while refreshing"
        world.reconcile(CANARY_SPOKE)

        assert world.rollout().phase is Phase.BAKING


def test_a_lost_forwarded_event_is_caught_by_the_spokes_reconcile(world):
    world.lost = {FLEET[2]}
    world.publish(NEW)
    world.advance(61)

    rollout = world.rollout()
    assert rollout.phase is Phase.CONVERGING and FLEET[2].key not in rollout.converged
    world.advance(500)
    assert world.rollout().phase is Phase.CONVERGING, "promoted without every spoke"

    world.reconcile(FLEET[2])

    assert world.rollout().phase is Phase.BAKING
    assert world.spokes[FLEET[2]].reports[-1]["ami_id"] == NEW


def test_a_newer_ami_mid_rollout_supersedes_the_old_one_which_never_reaches_the_fleet(world):
    world.publish(NEW)
    world.advance(30)
    world.publish(NEWER)

    world.advance(31)             # the first AMI's bake check is due: stale, decides nothing
    assert fleet_values(world) == {OLD}
    world.advance(30)             # the newer AMI's canary bake is over
    world.advance(121)

    assert world.rollout().phase is Phase.DONE and world.rollout().ami == NEWER
    assert world.wave_history("fleet", R1) == [OLD, NEWER]
    assert world.wave_history("fleet", R2) == [OLD, NEWER]


# Every call of a promotion step the promoter makes, and the invocation dying right after
# it: the redelivered event (the source change, the spoke's report, the schedule) resumes.
CRASHES = [
    ("source change: canary written", "publish", ("PutParameter", 1)),
    ("source change: state saved", "publish", ("PutItem", 1)),
    ("canary converged: check scheduled", "publish", ("CreateSchedule", 1)),
    ("canary converged: state saved", "publish", ("PutItem", 2)),
    ("bake over: fleet written in one region", "advance", ("PutParameter", 2)),
    ("bake over: fleet written in both", "advance", ("PutParameter", 3)),
    ("bake over: state saved", "advance", ("PutItem", 3)),
]


@pytest.mark.parametrize(("step", "phase", "crash"), CRASHES, ids=[c[0] for c in CRASHES])
def test_a_hub_crash_at_every_step_of_a_promotion_is_resumed(world, step, phase, crash):
    world.crashes = [crash]
    try:
        world.publish(NEW)
    except Crash:
        assert phase == "publish"
        world.handle(world.source_event())     # Lambda retries the async invocation
        for target in [CANARY_SPOKE]:
            world.reconcile(target)            # the spoke's report again (its reconcile)
    if phase == "advance":
        with pytest.raises(Crash):
            world.advance(61)
    world.advance(61)                          # the schedule fires again (Scheduler retries)
    world.advance(121)

    assert world.crashes == [], f"{step}: the crash point was never reached"
    rollout = world.rollout()
    assert rollout.phase is Phase.DONE and rollout.ami == NEW
    assert world.wave_history("canary", R1) == [OLD, NEW]
    assert world.wave_history("fleet", R1) == [OLD, NEW]
    assert world.wave_history("fleet", R2) == [OLD, NEW]
