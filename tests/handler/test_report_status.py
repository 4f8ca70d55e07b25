"""A run's status while work is left: never ``succeeded``; a failure still makes it
``partial`` (the alarms see it in the run that met it); ``pending`` counts what is left."""

from __future__ import annotations

from handler.outcomes import Code
from handler.report import AsgEntry, InstanceEntry, overall_status, pending
from handler.run import Action, Status

STARTED = AsgEntry("a", Action.REFRESH_STARTED, Code.REFRESH_STARTED)
DEFERRED = AsgEntry("b", Action.DEFERRED, Code.READ_DEFERRED)
FAILED = AsgEntry("c", Action.FAILED, Code.START_FAILED)
IN_FLIGHT = InstanceEntry("i-1", Action.IN_PROGRESS, Code.IN_PROGRESS)
REPLACED = InstanceEntry("i-2", Action.REPLACED, Code.REPLACED)


def test_a_group_deferred_makes_the_run_in_progress():
    assert overall_status((STARTED, DEFERRED), (REPLACED,)) == Status.IN_PROGRESS


def test_an_instance_in_flight_makes_the_run_in_progress():
    assert overall_status((STARTED,), (IN_FLIGHT,)) == Status.IN_PROGRESS


def test_a_group_waiting_behind_a_refresh_makes_the_run_in_progress():
    assert overall_status((STARTED,), (), waiting=1) == Status.IN_PROGRESS


def test_a_failure_with_work_left_is_partial():
    assert overall_status((STARTED, DEFERRED, FAILED), ()) == Status.PARTIAL


def test_the_run_succeeds_once_nothing_is_left():
    assert overall_status((STARTED,), (REPLACED,)) == Status.SUCCEEDED


def test_pending_counts_what_is_left_by_kind():
    assert pending((STARTED, DEFERRED, FAILED), (IN_FLIGHT, REPLACED), waiting=2) == {
        "asgs": 3, "instances": 1}
