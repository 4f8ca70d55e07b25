"""Discovery: every page of groups, the scope (tagged or all), and exclusions."""

import json

import boto3


def test_all_pages_of_groups_are_discovered(estate, images, function, api_calls):
    template = estate.template("shared")
    names = [f"group-{n:03d}" for n in range(105)]
    for name in names:
        estate.group(name, template, capacity=0)
    estate.publish(images.new)

    report = function().invoke({})

    assert [e["name"] for e in report["asgs"]] == names
    assert {e["action"] for e in report["asgs"]} == {"refresh_started"}
    # 100 per page (AWS's most): the groups in scope, then every group (a version is
    # written: which other groups follow the template at $Latest?)
    assert [len(p) for p in api_calls.of("DescribeAutoScalingGroups")] == [2, 3, 1, 2]
    assert {p["MaxRecords"] for p in api_calls.of("DescribeAutoScalingGroups")} == {100}
    assert len(api_calls.of("CreateLaunchTemplateVersion")) == 1    # one source, one version


def test_tagged_scope_filters_on_the_tag_server_side(estate, images, function, api_calls):
    estate.group("web")
    estate.publish(images.new)

    function().invoke({})

    assert api_calls.of("DescribeAutoScalingGroups") == [{"MaxRecords": 100, "Filters": [
        {"Name": "tag:ami-upgrade:parameter", "Values": ["/ami/linux/test"]}]},
        {"MaxRecords": 100}]   # then every group: does one outside scope follow the
                               # template at $Latest?


def test_scope_all_takes_every_group_except_the_excluded_and_other_parameters(estate, images,
                                                                             function):
    estate.group("untagged", parameter=None)
    estate.group("other-team", parameter="/ami/linux/other-team")
    estate.group("pinned", parameter=None, tags={"ami-upgrade:exclude": "true"})
    estate.publish(images.new)

    report = function(SCOPE="all").invoke({})

    assert {e["name"]: e["action"] for e in report["asgs"]} == {
        "other-team": "skipped", "pinned": "skipped", "untagged": "refresh_started"}
    assert estate.refreshes("other-team") == []


def test_dynamic_exclusions_are_read_at_every_run(estate, images, function):
    estate.group("web")
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/ami-upgrade/exclusions", Type="String",
                      Value=json.dumps({"asgs": ["web"]}))
    estate.publish(images.new)
    ours = function(EXCLUSIONS_PARAMETER_NAME="/ami-upgrade/exclusions")
    excluded = ours.invoke({})
    ssm.put_parameter(Name="/ami-upgrade/exclusions", Type="String", Overwrite=True,
                      Value=json.dumps({"asgs": []}))

    included = ours.invoke({})

    assert excluded["asgs"][0]["action"] == "skipped"
    assert included["asgs"][0]["action"] == "refresh_started"


def test_static_and_dynamic_exclusion_lists_are_merged(estate, images, function):
    for name in ("static", "dynamic", "kept"):
        estate.group(name)
    boto3.client("ssm").put_parameter(Name="/ami-upgrade/exclusions", Type="String",
                                      Value=json.dumps({"asgs": ["dynamic"]}))
    estate.publish(images.new)

    report = function(EXCLUDED_ASGS='["static"]',
                      EXCLUSIONS_PARAMETER_NAME="/ami-upgrade/exclusions").invoke({})

    assert {e["name"]: e["action"] for e in report["asgs"]} == {
        "dynamic": "skipped", "kept": "refresh_started", "static": "skipped"}


def test_tagged_scope_fails_a_group_whose_template_lacks_the_scope_tag(estate, images,
                                                                        function):
    template = estate.template("untagged-lt", parameter=None)
    estate.group("web", template)
    estate.publish(images.new)

    report = function().invoke({})

    # A misconfiguration is never a success (issue 10): failed, with the fix; the run partial.
    assert report["asgs"][0]["action"] == "failed"
    assert "launch template untagged-lt is not tagged ami-upgrade:parameter=/ami/linux/test" \
        in report["asgs"][0]["reason"]
    assert report["asgs"][0]["fix"].startswith(
        "tag launch template untagged-lt with ami-upgrade:parameter=/ami/linux/test")
    assert report["status"] == "failed"
    assert sorted(estate.versions(template)) == [1]
    assert estate.refreshes("web") == []


def test_scope_all_does_not_need_the_template_tag(estate, images, function):
    template = estate.template("untagged-lt", parameter=None)
    estate.group("web", template, parameter=None)
    estate.publish(images.new)

    report = function(SCOPE="all").invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert estate.versions(template)[2]["ImageId"] == images.new
