"""``ami-upgrade:exclude`` takes the usual spellings of yes and no; any other value is
reported on the resource's entry and the resource is left alone (instances and groups)."""

from __future__ import annotations

import json

import pytest
from standalone_estate import APP_ROLE, PARAMETER, build_estate, entry, set_parameter

from sandbox import LambdaFunction


@pytest.fixture
def instances(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _function(aws) -> LambdaFunction:
    return LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                "INSTANCE_ROLES": json.dumps([APP_ROLE])})


@pytest.mark.parametrize("value", ["yes", "1", "on", "YES", " True "])
def test_an_instance_tagged_with_a_true_value_is_excluded(aws, instances, value):
    kept = instances.launch("kept", tags={"ami-upgrade:exclude": value})

    report = _function(aws).invoke({})

    assert entry(report, kept)["action"] == "skipped"
    assert entry(report, kept)["reason"] == f"excluded by tag ami-upgrade:exclude={value.strip()}"
    assert instances.describe(kept)["ImageId"] == instances.old_ami


@pytest.mark.parametrize("value", ["no", "0", "off", "false"])
def test_an_instance_tagged_with_a_false_value_is_replaced(aws, instances, value):
    moved = instances.launch("moved", tags={"ami-upgrade:exclude": value})

    report = _function(aws).invoke({})

    assert entry(report, moved)["action"] == "replaced", entry(report, moved)


def test_an_instance_with_an_unknown_exclude_value_is_reported_and_untouched(aws, instances):
    odd = instances.launch("odd", tags={"ami-upgrade:exclude": "maybe"})

    report = _function(aws).invoke({})

    assert entry(report, odd)["action"] == "skipped"
    assert entry(report, odd)["reason"].startswith(
        "tag ami-upgrade:exclude has the unknown value 'maybe', so whether it is excluded is "
        "unknown and it is not touched")
    assert instances.describe(odd)["ImageId"] == instances.old_ami
    assert instances.describe(odd)["State"]["Name"] == "running"


def _group_entry(report: dict, name: str) -> dict:
    return next(a for a in report["asgs"] if a["name"] == name)


def test_a_group_tagged_exclude_on_is_not_refreshed(estate, images, function):
    estate.group("web", tags={"ami-upgrade:exclude": "on"})
    estate.publish(images.new)

    report = function().invoke({})

    assert _group_entry(report, "web")["action"] == "skipped"
    assert _group_entry(report, "web")["reason"] == "excluded by tag ami-upgrade:exclude=on"
    assert estate.refreshes("web") == []


def test_a_group_with_an_unknown_exclude_value_is_reported_and_not_refreshed(
        estate, images, function):
    estate.group("web", tags={"ami-upgrade:exclude": "ja"})
    estate.group("app")
    estate.publish(images.new)

    report = function().invoke({})

    assert "unknown value 'ja'" in _group_entry(report, "web")["reason"]
    assert _group_entry(report, "web")["action"] == "skipped"
    assert estate.refreshes("web") == []
    assert _group_entry(report, "app")["action"] == "refresh_started"
