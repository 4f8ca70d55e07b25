"""A run never converges on a parameter value older than the event that started it."""

from __future__ import annotations

import pytest

from handler.freshness import ParameterBehindEvent, behind_event
from sandbox.routing import Deliveries


def _event(load_event, version: int) -> dict:
    event = load_event("cloudtrail-put-parameter")
    event["detail"]["responseElements"]["version"] = version
    return event


@pytest.mark.parametrize(("event_version", "read_version", "acts"), [
    (None, 3, True),      # the native event names no version: newest wins
    (3, 3, True),
    (3, 4, True),         # newer than the event: fine
    (5, 4, False),
])
def test_only_a_read_older_than_the_event_is_refused(event_version, read_version, acts):
    assert (behind_event(event_version, read_version) is None) is acts


def test_a_read_that_lags_the_event_changes_nothing_and_fails_for_a_retry(
        estate, images, function, load_event, api_calls):
    estate.group("web")
    published = estate.publish(images.new)
    lagging = _event(load_event, published + 1)   # PutParameter returned; not readable yet

    with pytest.raises(ParameterBehindEvent, match=(
            rf"GetParameter returned version {published}, older than version "
            rf"{published + 1} named by the event")):
        function().invoke(lagging)

    assert api_calls.mutating() == []
    assert [op for _, op, _ in api_calls.calls] == ["GetParameter"]
    assert estate.refreshes("web") == []


def test_lambdas_retry_converges_once_the_version_is_readable(
        aws, estate, images, function, load_event):
    estate.group("web")
    lagging = _event(load_event, estate.publish(images.new) + 1)

    def readable_after_the_first_attempt(invocation) -> None:
        if invocation.attempt == 0 and invocation.error:
            estate.publish(images.newer)

    deliveries = Deliveries(aws, function(), on_invocation=readable_after_the_first_attempt)
    outcome = deliveries.deliver(lagging)

    assert [(i.attempt, (i.error or "").split(":")[0]) for i in deliveries.invocations] == [
        (0, "ParameterBehindEvent"), (1, "")]
    assert outcome.report["ami_id"] == images.newer
    assert outcome.report["asgs"][0]["action"] == "refresh_started"


def test_a_version_newer_than_the_event_is_used(estate, images, function, load_event):
    estate.group("web")
    stale_event = _event(load_event, estate.publish(images.new))
    estate.publish(images.newer)

    report = function().invoke(stale_event)

    assert (report["ami_id"], report["asgs"][0]["action"]) == (images.newer, "refresh_started")
