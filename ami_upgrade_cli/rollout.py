"""``ami-upgrade-hub``: the hub's rollout across waves, accounts and regions; hold, resume,
promote now.

``status`` reads the promoter's state item (the table ``<function>-state``) and shows,
per wave and spoke, what the spoke last reported, what the wave waits on and when the
next promotion is due. ``hold``, ``resume`` and ``promote-now`` are events for the
promoter (an asynchronous invoke): the promoter decides, exactly as on any event.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from hub.driver import STATE_KEY, rollout_from_item
from hub.promoter import OPERATOR_COMMANDS, Phase, Rollout, region_ami
from hub.settings import NAMESPACE, HubSettings, HubSettingsError, load_hub_settings

from . import EXIT_AWS, EXIT_OK, EXIT_USAGE
from .errors import CliError, translate
from .stack import project_dir

FUNCTION_NAME = "ami-upgrade-hub"


def load_hub(stack: str, root: Path) -> HubSettings:
    """The hub stack's waves from ``Pulumi.<stack>.yaml``, through the program's parser."""
    path = root / f"Pulumi.{stack}.yaml"
    try:
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        prefix = f"{NAMESPACE}:"
        values = {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}
        return load_hub_settings({"region": config.get("aws:region"), **values})
    except (OSError, yaml.YAMLError, HubSettingsError) as exc:
        raise CliError(EXIT_USAGE, f"{path.name}: {exc}") from None


def waits_on(hub: HubSettings, rollout: Rollout) -> str:
    """What the rollout waits on now, in words."""
    if rollout.phase is Phase.CONVERGING:
        wave = hub.waves[rollout.wave]
        last = {key: (ami, status) for key, ami, status in rollout.reports}
        missing = [t.key + (f" ({last[t.key][1]})"
                            if last.get(t.key, ("", ""))[0] == region_ami(rollout.ami, t.region)
                            else "")
                   for t in wave.targets if t.key not in rollout.converged]
        return f"wave {wave.name}: reports from {', '.join(missing)}"
    if rollout.phase is Phase.BAKING:
        held = " (held)" if rollout.held else ""
        return f"wave {hub.waves[rollout.wave].name}: bake until {rollout.bake_until}{held}"
    if rollout.phase is Phase.HALTED:
        return (f"the operator: halted ({rollout.reason}); resume retries the wave, "
                "promote-now passes its gate, a newer AMI starts again")
    return "nothing"


def rollout_view(hub: HubSettings, rollout: Rollout) -> dict[str, Any]:
    """The rollout as one document: per wave its spokes' last reports and its state."""
    reports = {key: (ami, status) for key, ami, status in rollout.reports}
    finished = {name: end for name, _, end in rollout.history}
    waves = []
    for index, wave in enumerate(hub.waves):
        state = ("done" if rollout.phase is Phase.DONE or index < rollout.wave
                 else str(rollout.phase) if index == rollout.wave else "pending")
        waves.append({"name": wave.name, "state": state, "finished_at": finished.get(wave.name),
                      "targets": [{
                          "account": t.account, "region": t.region,
                          "expects": region_ami(rollout.ami, t.region),
                          "last_report": dict(zip(("ami_id", "status"), reports[t.key],
                                                  strict=True)) if t.key in reports else None,
                      } for t in wave.targets]})
    return {"ami": rollout.ami, "phase": str(rollout.phase), "held": rollout.held,
            "wave": hub.waves[rollout.wave].name, "waits_on": waits_on(hub, rollout),
            "next_promotion_due": rollout.bake_until if rollout.phase is Phase.BAKING else None,
            "reason": rollout.reason or None, "waves": waves}


def show(console: Console, view: dict[str, Any]) -> None:
    table = Table(title=f"rollout of {view['ami']}: {view['phase']}"
                        f"{' (held)' if view['held'] else ''}")
    for column in ("wave", "state", "account", "region", "expects", "last report"):
        table.add_column(column)
    for wave in view["waves"]:
        for t in wave["targets"]:
            last = t["last_report"]
            table.add_row(wave["name"], wave["state"], t["account"], t["region"],
                          t["expects"] or "-",
                          f"{last['status']} on {last['ami_id'] or '-'}" if last else "-")
    console.print(table)
    console.print(f"waits on: {view['waits_on']}", highlight=False)
    if view["next_promotion_due"]:
        console.print(f"next promotion due: {view['next_promotion_due']}", highlight=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ami-upgrade-hub",
                                     description="The hub's rollout (docs/multi-account.md).")
    parser.add_argument("command", choices=("status", *OPERATOR_COMMANDS))
    parser.add_argument("--stack", default="hub", help="the hub stack (default hub)")
    parser.add_argument("--function", default=FUNCTION_NAME,
                        help=f"the promoter's name (default {FUNCTION_NAME})")
    parser.add_argument("--profile", help="AWS profile (credentials in the hub account)")
    parser.add_argument("--endpoint-url", help="another AWS endpoint (the sandbox's --serve)")
    parser.add_argument("--project-dir", type=Path, help="where Pulumi.<stack>.yaml is")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    args = parse_args(argv)
    console = console or Console()
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        hub = load_hub(args.stack, project_dir(args.project_dir))
        session = boto3.session.Session(profile_name=args.profile, region_name=hub.region)
        if args.command != "status":
            session.client("lambda", endpoint_url=args.endpoint_url).invoke(
                FunctionName=args.function, InvocationType="Event",
                Payload=json.dumps({"kind": "operator", "command": args.command}).encode())
            console.print(f"{args.command}: sent to {args.function}", highlight=False)
            return EXIT_OK
        item = session.client("dynamodb", endpoint_url=args.endpoint_url).get_item(
            TableName=f"{args.function}-state", Key={"pk": {"S": STATE_KEY}},
            ConsistentRead=True).get("Item")
    except (BotoCoreError, ClientError) as exc:
        error = translate(exc, f"{args.command} of the hub's rollout")
        errors.print(f"[red]error[/red]: {error}")
        return error.exit_code or EXIT_AWS
    except CliError as exc:
        errors.print(f"[red]error[/red]: {exc}")
        return exc.exit_code
    view = rollout_view(hub, rollout_from_item(item))
    if args.json:
        console.file.write(json.dumps(view, indent=2) + "\n")
    else:
        show(console, view)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
