"""The hub playground: ``python -m sandbox --accounts 3 --regions 2 [--fault] --json PATH``."""

from __future__ import annotations

import json

from sandbox.__main__ import main
from sandbox.hub_world import OLD


def test_the_playground_converges_the_waves_in_order_and_writes_the_document(tmp_path):
    path = tmp_path / "hub.json"

    assert main(["--accounts", "3", "--regions", "2", "--json", str(path)]) == 0

    doc = json.loads(path.read_text())
    assert doc["status"] == "done"
    assert [w["name"] for w in doc["waves"]] == ["canary", "fleet"]
    targets = [(t["account"], t["region"]) for w in doc["waves"] for t in w["targets"]]
    assert len(targets) == 6 and len({a for a, _ in targets}) == 3
    assert {r for _, r in targets} == {"eu-west-1", "us-east-1"}
    assert {t["status"] for w in doc["waves"] for t in w["targets"]} == {"converged"}
    canary, fleet = doc["waves"]
    assert canary["finished_at"] <= fleet["started_at"] < fleet["finished_at"]
    new = doc["ami"]
    assert [t["estate"] for w in doc["waves"] for t in w["targets"]] == [
        {"db-1": new, "web": new}] * 6      # each spoke's group refreshed, instance replaced


def test_the_playground_fault_trips_the_canary_alarm_and_halts(tmp_path):
    path = tmp_path / "hub.json"

    assert main(["--accounts", "3", "--regions", "2", "--fault", "--json", str(path)]) == 0

    doc = json.loads(path.read_text())
    assert doc["status"] == "halted" and "canary-errors" in doc["reason"]
    fleet = doc["waves"][1]
    assert fleet["started_at"] is None
    assert {t["status"] for t in fleet["targets"]} == {"waiting"}
    [canary] = doc["waves"][0]["targets"]
    assert canary["status"] == f"succeeded on {OLD}"      # rolled back: its estate too
    estates = [t["estate"] for w in doc["waves"] for t in w["targets"]]
    assert estates == [{"db-1": OLD, "web": OLD}] * 6
