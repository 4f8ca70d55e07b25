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


def command(project, world: HubWorld, name: str) -> dict:
    """``ami-upgrade-hub <name>`` as the operator runs it, then Lambda's delivery of the
    asynchronous invoke it made to the promoter; the promoter's result."""
    code, text = run(project, name)
    assert (code, text.strip()) == (EXIT_OK, f"{name}: sent to ami-upgrade-hub")
    [result] = world.deliver_invocations()
    return result


def status(project) -> dict:
    code, text = run(project, "status", "--json")
    assert code == EXIT_OK
    return json.loads(text)


def test_hold_resume_and_promote_now_through_the_cli_move_the_rollout(project):
    with embedded_aws() as aws:
        world = HubWorld(aws)
        world.publish(NEW)

        assert command(project, world, "hold")["phase"] == "baking"
        view = status(project)
        assert (view["held"], view["waits_on"].endswith("(held)")) == (True, True)
        world.advance(61)                            # the check is due: held, no promotion
        assert world.wave_value("fleet", "eu-west-1") == OLD
        assert status(project)["wave"] == "canary"

        command(project, world, "resume")            # the check again, due at once
        world.advance(1)
        view = status(project)
        assert (view["held"], view["wave"], view["phase"]) == (False, "fleet", "baking")
        assert world.wave_value("fleet", "us-east-1") == NEW

        result = command(project, world, "promote-now")   # the fleet's 120 minutes skipped
        assert (result["phase"], result["notifications"]) == ("done", ["done"])
        view = status(project)
        assert (view["phase"], view["waits_on"], view["next_promotion_due"]) == (
            "done", "nothing", None)
        assert [w["state"] for w in view["waves"]] == ["done", "done"]


def test_a_halted_rollout_resumed_through_the_cli_retries_the_wave(project):
    with embedded_aws() as aws:
        world = HubWorld(aws)
        world.publish(NEW)
        world.set_gate("ALARM")
        world.advance(61)
        view = status(project)
        assert view["phase"] == "halted" and "canary-errors" in view["reason"]
        assert view["waits_on"].startswith("the operator: halted")
        assert world.wave_value("canary", "eu-west-1") == OLD     # rolled back

        world.set_gate("OK")
        command(project, world, "resume")

        view = status(project)
        assert (view["phase"], view["wave"], view["reason"]) == ("baking", "canary", None)
        assert view["waves"][0]["targets"][0]["last_report"] == {
            "ami_id": NEW, "status": "succeeded"}
        world.advance(61)
        assert status(project)["wave"] == "fleet"


def test_the_view_of_a_converging_wave_names_the_spokes_it_waits_for():
    hub = settings()
    rollout = Rollout(ami=NEW, wave=1, phase=Phase.CONVERGING,
                      converged=frozenset({FLEET[0].key}))
    view = rollout_view(hub, rollout)
    assert view["waits_on"] == f"wave fleet: reports from {FLEET[1].key}, {FLEET[2].key}"
    assert [w["state"] for w in view["waves"]] == ["done", "converging"]
    assert view["waves"][0]["targets"][0]["account"] == CANARY_SPOKE.account


def test_the_view_says_a_spoke_of_the_wave_is_still_refreshing():
    rollout = Rollout(ami=NEW, wave=1, phase=Phase.CONVERGING,
                      converged=frozenset({FLEET[0].key}),
                      reports=((FLEET[1].key, NEW, "refreshing"), (FLEET[2].key, OLD, "succeeded")))
    view = rollout_view(settings(), rollout)
    assert view["waits_on"] == (f"wave fleet: reports from {FLEET[1].key} (refreshing), "
                                f"{FLEET[2].key}")
    assert view["waves"][1]["targets"][1]["last_report"] == {"ami_id": NEW,
                                                             "status": "refreshing"}


def test_an_unknown_stack_is_a_usage_error(project):
    code, _ = run(project, "status", "--stack", "nope")
    assert code == EXIT_USAGE


SPOKE_CONFIG = """config:
  aws:region: us-east-1
  ami-upgrade:parameterName: "arn:aws:ssm:us-east-1:111111111111:parameter\\
    /ami-upgrade/hub/waves/fleet"
  ami-upgrade:hubEventBusArn: "arn:aws:events:us-east-1:111111111111:event-bus\\
    /ami-upgrade-hub-reports"
  ami-upgrade:hubStack: {hub}
"""


def test_the_operator_cli_reads_a_spokes_hub_stack_from_the_project_directory(project):
    from ami_upgrade_cli.errors import CliError
    from ami_upgrade_cli.stack import load

    (project / "Pulumi.hub.yaml").write_text(
        HUB_CONFIG + "  ami-upgrade-hub:organizationId: o-abcdefghij\n")
    (project / "Pulumi.spoke.yaml").write_text(SPOKE_CONFIG.format(hub="hub"))
    settings = load("spoke", project)
    assert (settings.hub_account, settings.hub_organization_id) == (
        "111111111111", "o-abcdefghij")

    (project / "Pulumi.spoke.yaml").write_text(SPOKE_CONFIG.format(hub="elsewhere"))
    with pytest.raises(CliError) as refused:
        load("spoke", project)
    assert str(refused.value).startswith(
        "Pulumi.spoke.yaml: ami-upgrade:hubStack: Pulumi.elsewhere.yaml cannot be read")
