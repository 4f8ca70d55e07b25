"""Dry run: the full plan (the version that would be written, the preferences that would be
sent), and nothing changed."""

import json

import boto3


def test_dry_run_reports_the_plan_for_each_group(estate, images, function):
    estate.group("web")
    template = estate.template_id("web")
    estate.publish(images.new)
    config = {"default": {"MinHealthyPercentage": 75, "SkipMatching": True}}

    report = function(DRY_RUN="true", ASG_CONFIGURATIONS=json.dumps(config)).invoke({})

    assert report["dry_run"] is True
    assert report["asgs"] == [{
        "name": "web", "action": "planned", "code": "refresh_planned",
        "reason": f"write version 2 (version 1 with ImageId {images.new}) and refresh toward it",
        "launch_template_version": "2",
        "launch_template": {"id": template, "name": "web-lt"},
        "source_version": "1", "creates_version": True,
        "desired_configuration": {"LaunchTemplate": {"LaunchTemplateId": template,
                                                     "Version": "2"}},
        "preferences": {"MinHealthyPercentage": 75, "SkipMatching": True},
        "strategy": "Rolling"}]


def test_dry_run_changes_nothing(estate, images, function, api_calls):
    estate.group("web")
    estate.group("mixed", mixed=True)
    before = {name: estate.versions(estate.template_id(name)) for name in ("web", "mixed")}
    estate.publish(images.new)

    function(DRY_RUN="true").invoke({})

    assert api_calls.mutating() == []
    for name in ("web", "mixed"):
        assert estate.versions(estate.template_id(name)) == before[name]
        assert estate.refreshes(name) == []


def test_a_direct_invocation_can_ask_for_a_dry_run(estate, images, function, api_calls):
    estate.group("web")
    estate.publish(images.new)

    report = function().invoke({"dry_run": True})

    assert report["dry_run"] is True
    assert report["asgs"][0]["action"] == "planned"
    assert api_calls.mutating() == []


def test_dry_run_shows_the_refresh_it_would_cancel(estate, images, function, api_calls):
    estate.group("web")
    template = estate.template_id("web")
    theirs = boto3.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template, "Version": "1"}},
    )["InstanceRefreshId"]
    estate.publish(images.new)

    report = function(DRY_RUN="true").invoke({})

    entry = report["asgs"][0]
    assert entry["active_refresh"] == {"id": theirs, "status": "Pending",
                                       "heading_to": images.old}
    assert entry["on_refresh_in_progress"] == "cancel-and-restart"
    assert entry["reason"].startswith(f"cancel instance refresh {theirs} (Pending)")
    assert estate.refreshes("web")[0]["Status"] == "Pending"
    assert api_calls.mutating() == []


def test_groups_sharing_a_template_version_would_share_one_new_version(
        estate, images, function):
    template = estate.template("shared")
    estate.group("blue", template)
    estate.group("green", template)
    estate.publish(images.new)

    report = function(DRY_RUN="true").invoke({})

    assert [e["launch_template_version"] for e in report["asgs"]] == ["2", "2"]
