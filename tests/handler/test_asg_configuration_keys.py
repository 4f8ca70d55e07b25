"""An ASG_CONFIGURATIONS key naming no group is reported, not ignored (issue 13, class 7)."""

from __future__ import annotations

import json


def test_a_key_naming_no_group_is_a_warning_in_the_report_and_the_log(
        estate, images, function, logged_events):
    estate.group("web")
    estate.group("other-team", parameter="/ami/linux/other")
    estate.publish(images.new, image_type=True)
    config = {"default": {"MinHealthyPercentage": 50}, "web": {"InstanceWarmup": 60},
              "wbe": {"InstanceWarmup": 120}, "other-team": {"InstanceWarmup": 30}}

    report = function(ASG_CONFIGURATIONS=json.dumps(config)).invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert report["warnings"] == [
        "ASG_CONFIGURATIONS names group 'other-team', which this deployment does not move "
        "(tagged ami-upgrade:parameter=/ami/linux/other, not /ami/linux/test): its settings "
        "are not used",
        "ASG_CONFIGURATIONS names group 'wbe', which does not exist: its settings apply to no "
        "group (a typo, or a group since deleted?)"]
    assert report["status"] == "succeeded"
    assert any(e.get("event") == "configuration_warning" and e.get("group") == "wbe"
               for e in logged_events())


def test_no_warning_when_every_key_names_a_group(estate, images, function):
    estate.group("web")
    estate.publish(images.new, image_type=True)

    report = function(ASG_CONFIGURATIONS=json.dumps({"web": {"InstanceWarmup": 60}})).invoke({})

    assert "warnings" not in report
