"""``ami-upgrade-hub status|hold|resume|promote-now`` on a hub rollout in the embedded AWS."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from ami_upgrade_cli import EXIT_OK, EXIT_USAGE
from ami_upgrade_cli.rollout import main, rollout_view
from hub.promoter import Phase, Rollout
from sandbox.core import embedded_aws
from sandbox.hub_world import CANARY_SPOKE, FLEET, NEW, OLD, HubWorld, as_hub, settings

HUB_CONFIG = """config:
  aws:region: eu-west-1
  ami-upgrade-hub:account: "111111111111"
  ami-upgrade-hub:sourceParameterName: /golden/al2023
  ami-upgrade-hub:waves:
    - {name: canary, bakeMinutes: 60, gateAlarms: [canary-errors], rollbackOnGate: true,
       targets: [{account: "222222222222", region: eu-west-1}]}
    - {name: fleet, bakeMinutes: 120, targets: [
        {account: "333333333333", region: eu-west-1},
        {account: "333333333333", region: us-east-1},
        {account: "444444444444", region: us-east-1}]}
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "Pulumi.hub.yaml").write_text(HUB_CONFIG)
    return tmp_path


def run(project, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with as_hub():
        code = main([*args, "--project-dir", str(project)], Console(file=out, width=200))
    return code, out.getvalue()


def test_status_shows_each_spokes_last_report_what_waits_and_when_promotion_is_due(project):
    with embedded_aws() as aws:
        world = HubWorld(aws)
        world.publish(NEW)

        code, text = run(project, "status", "--json")
        due = world.rollout().bake_until

    view = json.loads(text)
    assert code == EXIT_OK
    assert (view["ami"], view["phase"], view["wave"]) == (NEW, "baking", "canary")
    assert view["next_promotion_due"] == due
    canary, fleet = view["waves"]
    assert canary["targets"][0]["last_report"] == {"ami_id": NEW, "status": "succeeded"}
    assert fleet["state"] == "pending"
    assert {t["last_report"] is None for t in fleet["targets"]} == {True}
    assert view["waits_on"].startswith("wave canary: bake until")


def test_hold_then_the_due_check_does_not_promote_and_resume_does(project):
    with embedded_aws() as aws:
        world = HubWorld(aws)
        world.publish(NEW)
        world.handle({"kind": "operator", "command": "hold"})   # as the invoke delivers it
        world.advance(61)
        assert world.wave_value("fleet", "eu-west-1") == OLD

        world.handle({"kind": "operator", "command": "resume"})
        world.advance(1)

        assert world.wave_value("fleet", "eu-west-1") == NEW


def test_the_view_of_a_converging_wave_names_the_spokes_it_waits_for():
    hub = settings()
    rollout = Rollout(ami=NEW, wave=1, phase=Phase.CONVERGING,
                      converged=frozenset({FLEET[0].key}))
    view = rollout_view(hub, rollout)
    assert view["waits_on"] == f"wave fleet: reports from {FLEET[1].key}, {FLEET[2].key}"
    assert [w["state"] for w in view["waves"]] == ["done", "converging"]
    assert view["waves"][0]["targets"][0]["account"] == CANARY_SPOKE.account


def test_an_unknown_stack_is_a_usage_error(project):
    code, _ = run(project, "status", "--stack", "nope")
    assert code == EXIT_USAGE
