"""Replacement stages read from the estate, and the entry that tells most per resource."""

from __future__ import annotations

import pytest

from sandbox.convergence import final_entries
from sandbox.fleet import DataVolume, Standalone
from sandbox.progress import replacement_stage, rolled_back_label

OLD, NEW = "ami-0000000000000000a", "ami-0000000000000000b"
DB = Standalone("i-old", "db-1", "in scope", "t3.small", OLD, "relaunch",
                (DataVolume("vol-1", "/dev/sdf", 20), DataVolume("vol-2", "/dev/sdg", 20)))


def _stage(states, attachments, keep_old=False):
    return replacement_stage(DB, states, attachments, NEW, keep_old)


ON_OLD = {"vol-1": ("i-old", "/dev/sdf"), "vol-2": ("i-old", "/dev/sdg")}
ON_NEW = {"vol-1": ("i-new", "/dev/sdf"), "vol-2": ("i-new", "/dev/sdg")}


@pytest.mark.parametrize("states,attachments,keep_old,expected", [
    ({"i-old": ("running", OLD)}, ON_OLD, False, (0, "waiting")),
    ({"i-old": ("stopped", OLD)}, ON_OLD, False, (25, "old instance stopped")),
    ({"i-old": ("stopped", OLD)}, {**ON_OLD, "vol-2": None}, False, (50, "moving volumes")),
    ({"i-old": ("stopped", OLD), "i-new": ("pending", NEW)}, ON_NEW, False,
     (75, "volumes on i-new (pending)")),
    ({"i-old": ("stopped", OLD), "i-new": ("running", NEW)}, ON_NEW, False,
     (90, "i-new running, retiring old instance")),
    ({"i-old": ("terminated", OLD), "i-new": ("running", NEW)}, ON_NEW, False,
     (100, "replaced by i-new")),
    ({"i-old": ("stopped", OLD), "i-new": ("running", NEW)}, ON_NEW, True,
     (100, "replaced by i-new")),
    ({"i-old": ("running", NEW)}, ON_OLD, False, (100, "root volume replaced")),
])
def test_replacement_stage_follows_the_estate(states, attachments, keep_old, expected):
    stage = _stage(states, attachments, keep_old)

    assert (stage.percent, stage.label) == expected


def test_the_most_telling_entry_wins_over_a_later_skip():
    reports = [{"instances": [{"id": "i-1", "action": "in_progress"}]},
               {"instances": [{"id": "i-1", "action": "replaced"}]},
               {"instances": [{"id": "i-1", "action": "skipped", "reason": "already on it"}]}]

    assert final_entries(reports, "instances", "id")["i-1"]["action"] == "replaced"


@pytest.mark.parametrize("entry,expected", [
    # the code says it was undone: the reason is shown as it is, whatever its words
    ({"action": "failed", "code": "rolled_back", "reason": "its target AMI ami-1 is gone"},
     "its target AMI ami-1 is gone"),
    ({"action": "failed", "code": "rolled_back", "reason": "rolled back: volume busy"},
     "rolled back: volume busy"),
    # any other failure back at its start is said as a rollback
    ({"action": "failed", "code": "replacement_failed", "reason": "launch refused"},
     "rolled back launch refused"),
    (None, "rolled back"),
])
def test_a_replacement_back_at_its_start_is_labelled_from_its_code(entry, expected):
    assert rolled_back_label(entry) == expected
