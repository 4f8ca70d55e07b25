"""A network error on one group's calls while applying (the connection fails, no AWS
answer) fails that group only, names the call, and is retried by a continuation: it never
escapes the function as a traceback."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

pytestmark = pytest.mark.usefixtures("no_sdk_retries")


@pytest.fixture
def unreachable(monkeypatch):
    """``unreachable(operation, group)``: that call for that group fails to connect, in
    every boto3 session created from now (the function's), until the test clears it."""
    broken: set[tuple[str, str]] = set()
    base = boto3.session.Session

    def refuse(request, event_name: str, **_: object) -> None:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        for operation, group in broken:
            if (event_name.endswith(f".{operation}")
                    and f"AutoScalingGroupName={group}&" in body + "&"):
                raise EndpointConnectionError(endpoint_url=request.url)

    class Unreachable(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.events.register("before-send.auto-scaling", refuse)

    monkeypatch.setattr(boto3.session, "Session", Unreachable)
    return broken


def test_a_network_error_starting_one_refresh_fails_that_group_only(
        estate, images, function, unreachable):
    estate.group("web")
    estate.group("api")
    estate.publish(images.new)
    unreachable.add(("StartInstanceRefresh", "web"))

    report = function().invoke({})

    entries = {e["name"]: e for e in report["asgs"]}
    assert entries["web"]["action"] == "failed"
    assert "EndpointConnectionError" in entries["web"]["reason"]
    assert entries["api"]["action"] == "refresh_started"
    assert report["status"] == "partial"


def test_a_network_error_starting_a_refresh_is_retried_by_a_continuation(
        estate, images, function, unreachable):
    estate.group("web")
    estate.publish(images.new)
    unreachable.add(("StartInstanceRefresh", "web"))
    fn = function()

    report = fn.invoke({})
    unreachable.clear()
    [continued] = fn.drain()

    assert report["continuation"] == 1
    assert continued["asgs"][0]["action"] == "refresh_started"
    assert estate.refreshes("web")[0]["Status"] in ("Pending", "InProgress", "Successful")
