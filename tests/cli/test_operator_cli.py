"""The operator CLI against the embedded AWS through a real endpoint (``sandbox.serve``).

The stack is deployed on the sandbox (``sandbox.live``): its function behind the
alias, its rule live, so ``run``, ``plan`` and a ``PutParameter`` reach
``handler.main.lambda_handler`` as in AWS. Every command goes over HTTP to moto's
server via ``--endpoint-url``; tests assert on the output, the exit code and the
estate afterwards.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from rich.console import Console

from ami_upgrade_cli import (
    EXIT_ABORTED,
    EXIT_AWS,
    EXIT_NOT_DEPLOYED,
    EXIT_OK,
    EXIT_USAGE,
)
from ami_upgrade_cli.cli import main
from components.stack_settings import StackSettings
from handler import tags as t
from sandbox import embedded_aws
from sandbox.fleet import IN_SCOPE, OUT_OF_SCOPE, Estate, build_estate
from sandbox.live import LiveStack
from sandbox.serve import Served
from sandbox.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    stack: StackSettings
    estate: Estate
    live: LiveStack
    served: Served

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.served.endpoint_url,
                            region_name=self.stack.region)

    def cli(self, *argv: str) -> tuple[int, str]:
        """Run the CLI in process against the served endpoint; (exit code, stdout)."""
        buffer = io.StringIO()
        code = main([*argv, "--stack", self.stack.stack, "--endpoint-url",
                     self.served.endpoint_url], console=Console(file=buffer, width=220))
        return code, buffer.getvalue()

    def put_new_ami(self) -> None:
        self.client("ssm").put_parameter(Name=self.stack.parameter_name,
                                         Value=self.estate.new_image, Type="String",
                                         DataType="aws:ec2:image", Overwrite=True)

    def pump(self) -> int:
        """What the serving loop does at a tick: deliver routed events and queued invokes."""
        with self.served.lock:
            return self.live.pump()

    def refreshes(self, group: str) -> list[dict]:
        return self.client("autoscaling").describe_instance_refreshes(
            AutoScalingGroupName=group)["InstanceRefreshes"]


def _world(stack_name: str, size: int) -> Iterator[World]:
    with embedded_aws() as aws:
        stack = load_stack(stack_name)
        estate = build_estate(stack, size=size, seed=0)
        live = LiveStack(aws, stack, estate.environment)
        served = Served(aws, port=0, on_tick=live.pump)
        try:
            yield World(stack, estate, live, served)
        finally:
            served.stop()
            live.close()


@pytest.fixture
def dev() -> Iterator[World]:
    yield from _world("dev", size=1)


@pytest.fixture
def prod() -> Iterator[World]:
    """prod's checkpoints keep refreshes of two instances in progress after the run returns."""
    yield from _world("prod", size=2)


def in_scope_groups(world: World) -> list[str]:
    return [g.name for g in world.estate.groups_in(IN_SCOPE)]


def test_plan_is_a_dry_run_of_the_deployed_function_and_changes_nothing(dev):
    dev.put_new_ami()
    code, out = dev.cli("plan")
    assert code == EXIT_OK, out
    assert f"-> {dev.estate.new_image} · status succeeded · dry run" in out
    for group in in_scope_groups(dev):
        assert any(line.split("│")[1].strip() == group and "planned" in line
                   for line in out.splitlines() if line.count("│") > 2), (group, out)
        assert dev.refreshes(group) == []
    assert dev.live.function.reports[-1]["dry_run"] is True


def test_the_report_folds_group_members_into_their_groups_row(dev):
    dev.put_new_ami()
    code, out = dev.cli("plan")
    groups = dev.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    members = {g["AutoScalingGroupName"]: [i["InstanceId"] for i in g["Instances"]]
               for g in groups}
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in out.splitlines() if line.count("│") > 2}
    assert code == EXIT_OK, out
    assert [i for ids in members.values() for i in ids if i in out] == []
    assert rows["web"][-1] == str(len(members["web"])), out


def test_plan_json_is_the_report(dev):
    dev.put_new_ami()
    code, out = dev.cli("plan", "--json")
    document = json.loads(out)
    assert code == EXIT_OK
    assert document["report"]["ami_id"] == dev.estate.new_image
    assert {e["name"] for e in document["report"]["asgs"] if e["action"] == "planned"} \
        == set(in_scope_groups(dev))


def test_run_invokes_the_alias_asynchronously_and_status_shows_the_rollout(dev):
    dev.put_new_ami()
    dev.live.changes.clear()          # only the CLI's run, not the trigger, starts this rollout
    code, out = dev.cli("run")
    assert code == EXIT_OK, out
    assert f"run started: {dev.live.alias_arn} accepted the invocation (HTTP 202" in out
    assert dev.live.function.reports == []          # queued, not run inside the request
    assert dev.pump() == 1
    assert dev.live.deliveries.invocations[0].source == "continuation"   # an async invoke

    code, out = dev.cli("status", "--json")
    status = json.loads(out)
    assert code == EXIT_OK, out
    refreshed = {r["group"]: r for r in status["refreshes"]}
    assert set(refreshed) == set(in_scope_groups(dev))
    assert all(r["ours"] and r["target_ami"] == dev.estate.new_image
               for r in refreshed.values())
    assert status["last_report"]["ami_id"] == dev.estate.new_image
    assert status["last_report"]["dry_run"] is False

    code, out = dev.cli("status")
    assert code == EXIT_OK
    assert "Instance refreshes" in out and "ami-upgrade" in out
    assert "last report (/aws/lambda/ami-upgrade-dev at" in out


def test_the_run_hint_repeats_the_options_given(dev):
    code, out = dev.cli("run")
    assert code == EXIT_OK, out
    assert (f"follow it with: ami-upgrade status --stack dev --endpoint-url "
            f"{dev.served.endpoint_url} --watch") in out


def test_watch_follows_the_rollout_until_it_ends(dev, monkeypatch):
    from ami_upgrade_cli import cli

    monkeypatch.setattr(cli, "SLEEP", lambda seconds: dev.served.tick(seconds))
    dev.put_new_ami()
    dev.served.tick()                         # the event reaches the function: refreshes start
    code, out = dev.cli("status", "--watch", "--interval", "1")
    assert code == EXIT_OK, out
    lines = out.splitlines()
    states = [line.split(" ", 1)[1] for line in lines if line[:2].isdigit() and line[2] == ":"]
    assert states[0] == "in flight" and states[-1] == "at rest" and len(states) > 2, out
    for group in in_scope_groups(dev):
        seen = [line.split()[2] for line in lines if line.startswith(f"  group {group}: ")]
        assert seen[0] in ("Pending", "InProgress") and seen[-1] == "Successful", (group, out)
        assert [r["Status"] for r in dev.refreshes(group)] == ["Successful"]
    assert "Instance refreshes" in out       # then the status, as without --watch


def test_watch_on_a_fleet_at_rest_shows_the_status_once(dev):
    code, out = dev.cli("status", "--watch")
    assert code == EXIT_OK, out
    states = [line.split(" ", 1)[1] for line in out.splitlines()
              if line[:2].isdigit() and line[2] == ":"]
    assert states == ["at rest"], out
    assert "no instance refresh in progress or ended in the last 24 h" in out


def test_a_put_parameter_from_any_client_goes_through_the_rule_to_the_function(dev):
    dev.put_new_ami()                         # boto3 over HTTP, as the AWS CLI would
    assert dev.live.function.reports == []
    dev.served.tick()                         # one tick of the serving loop
    [invocation] = dev.live.deliveries.invocations
    assert invocation.source == "event"
    assert invocation.event["detail-type"] == "Parameter Store Change"
    assert invocation.report["status"] == "succeeded"
    for group in in_scope_groups(dev):
        assert dev.refreshes(group)[0]["Status"] in ("Pending", "InProgress", "Successful")
    for group in dev.estate.groups_in(OUT_OF_SCOPE):
        assert dev.refreshes(group.name) == []


def test_a_put_parameter_of_another_parameter_reaches_no_function(dev):
    dev.client("ssm").put_parameter(Name="/ami/linux/other", Value=dev.estate.new_image,
                                    Type="String", Overwrite=True)
    dev.served.tick()
    assert dev.live.deliveries.invocations == []


def _prod_rollout(prod: World) -> list[str]:
    prod.put_new_ami()
    prod.pump()
    groups = in_scope_groups(prod)
    assert all(prod.refreshes(g)[0]["Status"] == "InProgress" for g in groups)
    return groups


def test_cancel_stops_the_refreshes_ami_upgrade_started_and_only_those(prod):
    groups = _prod_rollout(prod)
    autoscaling = prod.client("autoscaling")
    other = prod.estate.groups_in(OUT_OF_SCOPE)[0].name
    autoscaling.start_instance_refresh(AutoScalingGroupName=other)   # someone else's

    code, out = prod.cli("cancel", "--yes", "--json")
    document = json.loads(out)
    assert code == EXIT_OK, out
    assert sorted(document["cancelled"]) == sorted(groups)
    for group in groups:
        assert prod.refreshes(group)[0]["Status"] in ("Cancelling", "Cancelled")
    assert prod.refreshes(other)[0]["Status"] in ("Pending", "InProgress")

    code, out = prod.cli("cancel", "--yes")
    assert code == EXIT_OK
    assert "nothing to cancel" in out


def test_cancel_leaves_a_refresh_it_did_not_start_on_a_group_in_scope(prod):
    group = _prod_rollout(prod)[0]
    autoscaling = prod.client("autoscaling")
    autoscaling.cancel_instance_refresh(AutoScalingGroupName=group)
    prod.served.tick()                         # the cancellation settles
    while prod.refreshes(group)[0]["Status"] == "Cancelling":
        prod.served.tick()
    manual = autoscaling.start_instance_refresh(AutoScalingGroupName=group)
    code, out = prod.cli("cancel", "--yes", "--json")
    assert code == EXIT_OK, out
    assert group not in json.loads(out)["cancelled"]
    assert prod.refreshes(group)[0]["InstanceRefreshId"] == manual["InstanceRefreshId"]
    assert prod.refreshes(group)[0]["Status"] in ("Pending", "InProgress")


def test_cancel_asks_and_a_no_cancels_nothing(prod, monkeypatch):
    groups = _prod_rollout(prod)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code, _ = prod.cli("cancel")
    assert code == EXIT_ABORTED
    assert all(prod.refreshes(g)[0]["Status"] == "InProgress" for g in groups)

    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    code, out = prod.cli("cancel")
    assert code == EXIT_OK, out
    assert all(prod.refreshes(g)[0]["Status"] in ("Cancelling", "Cancelled") for g in groups)


def test_cancel_without_a_terminal_needs_yes(prod, monkeypatch, capsys):
    groups = _prod_rollout(prod)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    code, _ = prod.cli("cancel")
    assert code == EXIT_ABORTED
    assert "confirm with --yes" in capsys.readouterr().err
    assert all(prod.refreshes(g)[0]["Status"] == "InProgress" for g in groups)


def test_status_exits_1_when_a_standalone_replacement_failed(dev):
    instance = next(i for i in dev.estate.instances_in(IN_SCOPE))
    dev.client("ec2").create_tags(Resources=[instance.id], Tags=[
        {"Key": t.FAILED_AMI, "Value": dev.estate.new_image},
        {"Key": t.FAILURE_REASON, "Value": "status checks failed"}])
    code, out = dev.cli("status")
    assert code == 1
    assert instance.id in out and "failed" in out and "status checks failed" in out


# Error cases ------------------------------------------------------------------------


UNUSED_ENDPOINT = "http://127.0.0.1:9"     # these errors come before any AWS call


def test_an_unknown_stack_is_a_usage_error(capsys):
    code = main(["status", "--stack", "staging", "--endpoint-url", UNUSED_ENDPOINT])
    assert code == EXIT_USAGE
    assert "stack 'staging': no Pulumi.staging.yaml" in capsys.readouterr().err


def test_a_region_other_than_the_stacks_is_refused(capsys):
    code = main(["status", "--region", "eu-west-1", "--endpoint-url", UNUSED_ENDPOINT])
    assert code == EXIT_USAGE
    assert "--region eu-west-1: stack dev is deployed in us-east-1" in capsys.readouterr().err


def test_a_stack_that_is_not_deployed(dev, tmp_path, capsys):
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.staging.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  ami-upgrade:parameterName: /ami/linux/test\n")
    code = main(["run", "--stack", "staging", "--project-dir", str(tmp_path),
                 "--endpoint-url", dev.served.endpoint_url, "--json"],
                console=Console(file=io.StringIO()))
    assert code == EXIT_NOT_DEPLOYED
    err = capsys.readouterr().err
    assert "stack staging is not deployed in account 123456789012, region us-east-1" in err
    assert "ami-upgrade-staging" in err
    assert dev.live.function.pending() == []


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(ROOT), **extra)
    return env


def _cli_process(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ami_upgrade_cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_missing_credentials():
    result = _cli_process("status", "--endpoint-url", UNUSED_ENDPOINT,
                          env=_subprocess_env())
    assert result.returncode == EXIT_AWS, result.stderr
    assert "no AWS credentials found" in result.stderr


def test_an_unknown_profile():
    result = _cli_process("status", "--profile", "nope", "--endpoint-url", UNUSED_ENDPOINT,
                          env=_subprocess_env())
    assert result.returncode == EXIT_AWS, result.stderr
    assert "nope" in result.stderr


def test_an_endpoint_that_does_not_answer():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _cli_process("status", "--endpoint-url", f"http://127.0.0.1:{port}",
                          env=_subprocess_env(AWS_ACCESS_KEY_ID="testing",
                                              AWS_SECRET_ACCESS_KEY="testing"))
    assert result.returncode == EXIT_AWS, result.stderr
    assert "cannot reach the endpoint" in result.stderr


def test_python_m_ami_upgrade_cli_status_as_a_user_runs_it(dev):
    dev.put_new_ami()
    dev.served.tick()
    result = _cli_process("status", "--json", "--endpoint-url", dev.served.endpoint_url,
                          env=_subprocess_env(AWS_ACCESS_KEY_ID="testing",
                                              AWS_SECRET_ACCESS_KEY="testing"))
    assert result.returncode == EXIT_OK, result.stderr
    status = json.loads(result.stdout)
    assert {r["group"] for r in status["refreshes"]} == set(in_scope_groups(dev))


def test_plan_exits_1_when_the_deployed_function_fails(capsys):
    with embedded_aws() as aws:
        stack = load_stack("dev")
        live = LiveStack(aws, stack, {**stack.environment(), "SCOPE": "some"})
        served = Served(aws, port=0, on_tick=live.pump)
        try:
            code = main(["plan", "--endpoint-url", served.endpoint_url],
                        console=Console(file=io.StringIO()))
        finally:
            served.stop()
            live.close()
    assert code == 1
    assert "the function failed" in capsys.readouterr().err


def test_the_operating_guide_documents_every_exit_code():
    from ami_upgrade_cli import EXIT_CODES

    operating = (ROOT / "docs" / "operating.md").read_text()
    table = operating[operating.index("| code | meaning |"):]
    assert [int(line.split("|")[1]) for line in table.splitlines()[2:]
            if line.startswith("| ")] == sorted(EXIT_CODES)


def test_version_prints_the_package_version(capsys):
    from ami_upgrade_cli import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert (exit_info.value.code, capsys.readouterr().out) == (
        EXIT_OK, f"ami-upgrade {__version__}\n")


@pytest.mark.parametrize("url", ["not a url", "127.0.0.1:5000", "ftp://host", "http://",
                                 "http://host:port"])
def test_an_endpoint_url_that_is_not_a_url_is_a_usage_error(url, capsys):
    assert main(["status", "--endpoint-url", url]) == EXIT_USAGE
    assert f"--endpoint-url {url!r} is not a URL" in capsys.readouterr().err


def test_markup_in_aws_data_is_printed_literally():
    from ami_upgrade_cli import render
    from ami_upgrade_cli.cli import Output

    report = {"parameter": "/ami/[bold]x", "ami_id": "ami-1", "status": "partial",
              "reason": "tag [/] and [red]red[/red]",
              "asgs": [{"name": "web[/]", "action": "failed", "reason": "[link=x]y[/link]",
                        "refresh_id": "[/]", "launch_template_version": "[b]"}],
              "instances": [{"id": "i-1", "action": "skipped", "reason": "Name=[/]",
                             "new_instance_id": None}]}
    buffer = io.StringIO()
    out = Output(False, Console(file=buffer, width=300, color_system=None))
    out.line(render.report_summary(report))
    out.show(*render.report_tables(report))
    text = buffer.getvalue()
    for literal in ("/ami/[bold]x", "tag [/] and [red]red[/red]", "web[/]",
                    "[link=x]y[/link]", "Name=[/]", "[b]"):
        assert literal in text, literal


def test_an_error_naming_markup_is_printed_literally(capsys):
    assert main(["status", "--stack", "[red]x", "--endpoint-url", UNUSED_ENDPOINT]) == EXIT_USAGE
    assert "stack '[red]x': no Pulumi.[red]x.yaml" in capsys.readouterr().err
