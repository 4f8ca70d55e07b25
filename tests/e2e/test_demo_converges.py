"""The default run, for each stack: everything in scope moves, everything else stays."""

from __future__ import annotations

import json

import pytest

from sandbox.fleet import (
    CURRENT,
    EXCLUDED_BY_LIST,
    EXCLUDED_BY_TAG,
    IN_SCOPE,
    OUT_OF_SCOPE,
    RESOLVING_GROUP,
)
from sandbox.stack import load_stack

from .estate import (
    all_instances,
    demo_run,
    group,
    group_members,
    group_template_image,
    holder,
    instance,
    refreshes,
    template_versions,
)

UNTOUCHED = (EXCLUDED_BY_LIST, EXCLUDED_BY_TAG, OUT_OF_SCOPE, CURRENT)


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request, tmp_path_factory):
    with demo_run(tmp_path_factory.mktemp(request.param), stack=request.param) as (_aws, result):
        yield result


def test_exit_code_is_zero_and_the_report_file_says_converged(run):
    report = json.loads(run.report_path.read_text())

    assert run.exit_code == 0, run.verdict.problems()
    assert (report["converged"], report["exit_code"], report["new_ami"]) == (
        True, 0, run.estate.new_image)


def test_in_scope_groups_run_only_the_new_ami_at_desired_capacity(run):
    for g in run.estate.groups_in(IN_SCOPE):
        members = group_members(g.name)
        images = {instance(i)["ImageId"] for i in members}
        states = {instance(i)["State"]["Name"] for i in members}

        assert (images, states, len(members)) == ({run.estate.new_image}, {"running"},
                                                 g.capacity), g.name


def literal_groups(estate):
    """In-scope groups whose template names an AMI (not ``resolve:ssm:``)."""
    return [g for g in estate.groups_in(IN_SCOPE) if g.name != RESOLVING_GROUP]


def test_in_scope_groups_now_use_a_new_template_version_with_the_new_ami(run):
    for g in literal_groups(run.estate):
        assert group_template_image(g.name) == run.estate.new_image, g.name
        assert group(g.name)["LaunchTemplate"]["Version"] == "2", g.name


def test_a_template_that_resolves_the_parameter_gets_no_new_version(run):
    g = run.estate.group(RESOLVING_GROUP)

    assert group_template_image(g.name) == f"resolve:ssm:{run.estate.stack.parameter_name}"
    assert template_versions(g.launch_template_id) == [1]


def test_refreshes_succeeded_with_the_stack_preferences(run):
    stack = load_stack(run.estate.stack.stack)
    expected = {k: v for k, v in stack.asg_configurations["default"].items()
                if k not in ("Strategy", "OnRefreshInProgress")}
    for g in literal_groups(run.estate):
        (refresh,) = refreshes(g.name)

        assert refresh["Status"] == "Successful", g.name
        assert {k: refresh["Preferences"][k] for k in expected} == expected, g.name


def test_in_scope_instances_run_the_new_ami_with_the_same_volumes_and_shape(run):
    for standalone in run.estate.instances_in(IN_SCOPE):
        now = instance(holder(standalone))

        assert (now["ImageId"], now["State"]["Name"], now["InstanceType"]) == (
            run.estate.new_image, "running", standalone.instance_type), standalone.name


def test_replaced_instances_keep_their_scope_tags(run):
    for standalone in run.estate.instances_in(IN_SCOPE):
        tags = {t["Key"]: t["Value"] for t in instance(holder(standalone)).get("Tags", [])}

        assert tags["Name"] == standalone.name
        assert tags["ami-upgrade:parameter"] == run.estate.stack.parameter_name


def test_old_instances_are_terminated_or_kept_stopped_as_configured(run):
    keep = bool(run.estate.stack.standalone_configuration.get("keep_old_instance"))
    for standalone in run.estate.instances_in(IN_SCOPE):
        if holder(standalone) == standalone.id:   # replaced in place (root volume)
            continue
        state = instance(standalone.id)["State"]["Name"]

        assert state == ("stopped" if keep else "terminated"), standalone.name


def test_groups_not_in_scope_are_untouched(run):
    for g in run.estate.groups:
        if g.role == IN_SCOPE:
            continue
        before = run.before.groups[g.name]

        assert group_members(g.name) == list(before.instance_ids), g.name
        assert {instance(i)["ImageId"] for i in before.instance_ids} == {run.estate.old_image}
        assert template_versions(g.launch_template_id) == [1], g.name
        assert refreshes(g.name) == [], g.name


def test_instances_not_in_scope_are_untouched(run):
    for standalone in run.estate.instances_in(*UNTOUCHED):
        now = instance(standalone.id)

        assert (now["State"]["Name"], now["ImageId"], holder(standalone)) == (
            "running", standalone.image_id, standalone.id), standalone.name


def test_no_replacement_instance_is_left_over(run):
    holders = {holder(s) for s in run.estate.instances}
    launched = [i for i in all_instances()
                if i["InstanceId"] not in run.before.instances
                and not any(t["Key"] == "aws:autoscaling:groupName" for t in i.get("Tags", []))
                and i["State"]["Name"] != "terminated"]

    assert [i["InstanceId"] for i in launched if i["InstanceId"] not in holders] == []
