"""Attack: a direct or continuation event (``lambda:InvokeFunction`` on the alias, which the
CLI's ``plan`` needs) naming an image or asking for a real run. An event names which
parameter changed, never the image: an ``ami_id`` other than the parameter's current value
is refused before any change, and an event can only make a run drier than the stack's
``dryRun``."""

from __future__ import annotations

import pytest

from .conftest import untouched

CONTINUATION = "ami-upgrade:continuation"


@pytest.fixture(autouse=True)
def published(fleet, images):
    fleet.publish(images.new)


@pytest.mark.parametrize("event", [
    lambda i: {"ami_id": i.newer},
    lambda i: {"ami_id": i.newer, "dry_run": False},
    lambda i: {"ami_id": i.newer, "parameter_name": "/ami/linux/test"},
    lambda i: {"ami_id": i.old},
    lambda i: {"ami_id": i.arm},
])
def test_an_ami_id_other_than_the_parameters_value_is_refused(fleet, images, function,
                                                              api_calls, event):
    report = function().invoke(event(images))

    assert report["status"] == "failed"
    assert report["reason"].startswith(f"the invocation's ami_id {event(images)['ami_id']} is "
                                       "not the current value of parameter /ami/linux/test "
                                       f"({images.new})")
    untouched(fleet, api_calls)


def test_an_ami_id_of_another_account_is_refused(fleet, function, api_calls):
    foreign = "ami-1e749f67"     # one of moto's public stock images, owned by another account

    report = function().invoke({"ami_id": foreign})

    assert report["status"] == "failed"
    assert foreign in report["reason"]
    untouched(fleet, api_calls)


def test_an_ami_id_equal_to_the_parameters_value_runs_on_it(fleet, images, function):
    report = function().invoke({"ami_id": images.new})

    assert report["status"] == "succeeded"
    assert report["ami_id"] == images.new
    assert fleet.versions(fleet.template_id("web"))[2]["ImageId"] == images.new


@pytest.mark.parametrize("event", [
    {"dry_run": False},
    {"dry_run": False, "parameter_name": "/ami/linux/test"},
    {CONTINUATION: {"attempt": 1}, "parameter_name": "/ami/linux/test", "dry_run": False},
    {CONTINUATION: {"attempt": 7}, "dry_run": False},
])
def test_an_event_cannot_make_a_dry_run_stack_run_for_real(fleet, function, api_calls, event):
    report = function(DRY_RUN="true").invoke(event)

    assert report["dry_run"] is True
    assert report["asgs"][0]["action"] == "planned"
    assert any("can only make a run drier" in w for w in report["warnings"])
    untouched(fleet, api_calls)


@pytest.mark.parametrize("event", [
    {"dry_run": True},
    {CONTINUATION: {"attempt": 2}, "dry_run": True},
])
def test_an_event_may_make_a_run_drier(fleet, function, api_calls, event):
    report = function().invoke(event)

    assert report["dry_run"] is True
    assert report["asgs"][0]["action"] == "planned"
    untouched(fleet, api_calls)
