"""A launch template shared with a group that is not moved in this run (out of scope, excluded,
skipped) and that uses ``$Latest``: any version written would move that group too (issue 13,
class 6). The engine writes none, fails the in-scope group with the reason and the fix, and
never touches ``$Default``."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("other", "why"), [
    ({"parameter": None}, "not tagged ami-upgrade:parameter=/ami/linux/test"),
    ({"tags": {"ami-upgrade:exclude": "true"}}, "excluded by tag ami-upgrade:exclude=true"),
    ({"parameter": "/ami/linux/other"}, "tagged ami-upgrade:parameter=/ami/linux/other"),
])
def test_no_version_is_written_into_a_template_another_group_follows_at_latest(
        estate, images, function, other, why):
    template = estate.template("shared-lt")
    estate.group("web", template, version="1")
    estate.group("legacy", template, version="$Latest", **other)
    estate.publish(images.new)

    report = function().invoke({})

    web = next(e for e in report["asgs"] if e["name"] == "web")
    assert web["action"] == "failed"
    assert "legacy" in web["reason"] and "$Latest" in web["reason"] and why in web["reason"]
    assert "numbered version" in web["fix"]
    assert sorted(estate.versions(template)) == [1]
    assert estate.refreshes("web") == [] and estate.refreshes("legacy") == []


def test_a_version_already_written_is_used_without_writing(estate, images, function):
    template = estate.template("shared-lt")
    estate.add_version(template, ImageId=images.new)      # version 2, already $Latest
    estate.group("web", template, version="1")
    estate.group("legacy", template, version="$Latest", parameter=None)
    estate.publish(images.new)

    report = function().invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert report["asgs"][0]["launch_template_version"] == "2"
    assert sorted(estate.versions(template)) == [1, 2]


def test_a_group_out_of_scope_on_default_is_not_moved(estate, images, function, ec2):
    template = estate.template("shared-lt")
    estate.group("web", template, version="1")
    estate.group("legacy", template, version="$Default", parameter=None)
    estate.publish(images.new)

    report = function().invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    default = ec2.describe_launch_template_versions(LaunchTemplateId=template,
                                                    Versions=["$Default"])
    assert default["LaunchTemplateVersions"][0]["VersionNumber"] == 1


def test_groups_in_scope_on_latest_share_the_version(estate, images, function):
    template = estate.template("shared-lt")
    estate.group("web", template, version="$Latest")
    estate.group("api", template, version="$Latest")
    estate.publish(images.new)

    report = function().invoke({})

    assert [e["action"] for e in report["asgs"]] == ["refresh_started", "refresh_started"]
    assert sorted(estate.versions(template)) == [1, 2]


def test_a_tagged_group_whose_template_resolves_another_parameter_fails_with_the_fix(
        estate, images, function):
    estate.group("web", estate.template("web-lt", "resolve:ssm:/ami/linux/other"))
    estate.publish(images.new)

    report = function().invoke({})

    assert report["asgs"][0]["action"] == "failed"
    assert "takes its ImageId from resolve:ssm:/ami/linux/other" in report["asgs"][0]["reason"]
    assert report["asgs"][0]["fix"].startswith("point the template's ImageId at "
                                               "resolve:ssm:/ami/linux/test")
    assert estate.refreshes("web") == []


def test_in_scope_all_an_untagged_group_resolving_another_parameter_follows_it(
        estate, images, function):
    estate.group("web", estate.template("web-lt", "resolve:ssm:/ami/linux/other",
                                        parameter=None), parameter=None)
    estate.publish(images.new)

    report = function(SCOPE="all").invoke({})

    assert report["asgs"][0]["action"] == "skipped"
    assert report["asgs"][0]["reason"].endswith("the group follows that parameter, not "
                                                "/ami/linux/test")
    assert report["status"] == "succeeded"
