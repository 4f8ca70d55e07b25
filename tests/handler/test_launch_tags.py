"""Every instance the function launches carries, in its own request, the tags the role's
launch statements require: the scope tag (``aws:RequestTag``, tagged scope) and the
engine's in-flight tag; and no launch names a launch template, so the shape template of
private-IP preservation is never launched from (the role grants it deletion only)."""

from __future__ import annotations

import pytest
from standalone_estate import PARAMETER, entry, function, published_estate


@pytest.fixture
def estate(aws):
    return published_estate()


def watch_launches(aws) -> list[dict]:
    """The parameters of every RunInstances the function sends (observed, never failed)."""
    seen: list[dict] = []

    def record(params: dict) -> bool:
        seen.append(params)
        return False

    aws.faults.fail("RunInstances", "NeverRaised", times=None, when=record)
    return seen


def instance_tags(params: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for spec in params.get("TagSpecifications", [])
            if spec["ResourceType"] == "instance" for t in spec["Tags"]}


@pytest.mark.parametrize("preserve_private_ip", [False, True])
def test_each_launch_carries_the_scope_and_in_flight_tags_and_names_no_template(
        aws, estate, preserve_private_ip):
    old = estate.launch("app")
    launches = watch_launches(aws)
    report = function(aws, preserve_private_ip=preserve_private_ip).invoke({})
    assert entry(report, old)["action"] == "replaced"
    assert len(launches) == 1
    assert "LaunchTemplate" not in launches[0]
    tags = instance_tags(launches[0])
    assert (tags.get("ami-upgrade:parameter"), tags.get("ami-upgrade:in-flight")) == (
        PARAMETER, PARAMETER)
