"""``python -m sandbox --accounts N --regions M``: a hub promoting an AMI in waves.

A hub account and N spoke accounts x M regions on the embedded AWS
(:mod:`sandbox.hub_world`), each spoke with a small estate of its own (an Auto Scaling
group ``web`` and a standalone instance ``db-1``): the canary (the first account in the
first region) gets the new AMI first, its group refreshed and its instance replaced;
after its 60-minute bake on the emulated clock, with its gate alarm clear, the fleet
wave; after the fleet's 120-minute bake the rollout is done. Emulated time moves five
minutes at a time, the spokes' follow-up rules firing while they have work.
``fault``: the canary's gate alarm goes to ALARM during the bake: the promotion halts
and the previous AMI is written back to the canary, whose estate goes back to it.

Exit status: 0 when the rollout ended as it must (done, every estate on the new AMI;
with the fault: halted, the fleet never promoted, every estate on the old AMI), 1 when
not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hub.promoter import Phase, Rollout, region_ami

from .core import EmbeddedAws
from .demo import function_logs
from .hub_world import NEW, OLD, HubWorld, sized

STEP_MINUTES = 5
MAX_MINUTES = 12 * 60   # emulated: far beyond the waves' bake times and refreshes


@dataclass(frozen=True)
class HubDemoOptions:
    accounts: int = 3
    regions: int = 2
    fault: bool = False
    json_path: Path | None = None


def document(world: HubWorld) -> dict[str, Any]:
    """``{waves: [{name, targets: [{account, region, status}], started_at, finished_at}],
    status}`` (emulated ISO times; a wave not started has neither)."""
    rollout = world.rollout()
    history = {name: (start, end) for name, start, end in rollout.history}
    waves = []
    for index, wave in enumerate(world.hub.waves):
        started, finished = history.get(wave.name, (None, None))
        if index == rollout.wave and rollout.phase is not Phase.DONE:
            started = rollout.wave_started_at
        waves.append({"name": wave.name, "started_at": started, "finished_at": finished,
                      "targets": [{"account": t.account, "region": t.region,
                                   "status": target_status(rollout, t.key, t.region),
                                   "estate": world.estate_images(t)}
                                  for t in wave.targets]})
    return {"waves": waves, "status": str(rollout.phase), "ami": rollout.ami,
            "reason": rollout.reason or None}


def target_status(rollout: Rollout, key: str, region: str) -> str:
    """The spoke's last report: ``converged`` on the rollout's AMI, else what it said."""
    report = next((r for r in rollout.reports if r[0] == key), None)
    if report is None:
        return "waiting"
    if report[1] == region_ami(rollout.ami, region) and report[2] == "succeeded":
        return "converged"
    return f"{report[2]} on {report[1] or 'no AMI'}"


def show(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title=f"rollout of {doc['ami']}: {doc['status']}")
    for column in ("wave", "account", "region", "status", "estate", "started", "finished"):
        table.add_column(column)
    for wave in doc["waves"]:
        for target in wave["targets"]:
            estate = ", ".join(f"{name} {ami}" for name, ami in target["estate"].items())
            table.add_row(wave["name"], target["account"], target["region"], target["status"],
                          estate or "-", wave["started_at"] or "-", wave["finished_at"] or "-")
    console.print(table)
    if doc["reason"]:
        console.print(f"halted: {doc['reason']}")


def run_hub_demo(options: HubDemoOptions, aws: EmbeddedAws, console: Console) -> int:
    report = options.json_path or Path("reports/demo-hub.json")
    with function_logs(report.with_suffix(".log")):   # the spokes' logs
        world = HubWorld(aws, sized(options.accounts, options.regions), estates=True)
        console.print(f"hub {world.hub.account}: {len(world.spokes)} spokes in "
                      f"{len(world.hub.waves)} waves, each with a group and an instance; "
                      f"publishing {NEW}")
        world.publish(NEW)
        if options.fault:
            console.print("fault: the canary's gate alarm goes to ALARM during its bake")
            world.set_gate("ALARM")
        for _ in range(MAX_MINUTES // STEP_MINUTES):
            world.advance(STEP_MINUTES)
            if world.rollout().phase in (Phase.DONE, Phase.HALTED) and world.settled():
                break
        doc = document(world)
    show(console, doc)
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(doc, indent=2) + "\n")
    fleet = {world.wave_value("fleet", r) for r in world.hub.waves[1].regions}
    estates = {ami for w in doc["waves"] for t in w["targets"] for ami in t["estate"].values()}
    if options.fault:
        ok = doc["status"] == "halted" and fleet == {OLD} and estates == {OLD}
    else:
        ok = doc["status"] == "done" and fleet == {NEW} and estates == {NEW}
    return 0 if ok else 1
