"""``--dry-run``: the function plans every resource in scope and nothing changes."""

from __future__ import annotations

import pytest

from sandbox.fleet import IN_SCOPE

from .estate import all_instances, demo_run, refreshes, template_versions, volume_attachments


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with demo_run(tmp_path_factory.mktemp("dry"), dry_run=True) as (_aws, result):
        yield result


def test_exit_code_is_zero(run):
    assert run.exit_code == 0, run.verdict.problems()


def test_every_instance_keeps_its_state_and_image(run):
    now = {i["InstanceId"]: (i["State"]["Name"], i["ImageId"]) for i in all_instances()}
    before = {i.id: (i.state, i.image_id) for i in run.before.instances.values()}

    assert now == before


def test_no_template_version_and_no_refresh_is_created(run):
    for g in run.estate.groups:
        assert template_versions(g.launch_template_id) == [1], g.name
        assert refreshes(g.name) == [], g.name


def test_every_data_volume_stays_where_it_was(run):
    for standalone in run.estate.instances:
        attachments = volume_attachments([v.id for v in standalone.volumes])

        assert attachments == {v.id: (standalone.id, v.device) for v in standalone.volumes}


def test_the_plan_lists_exactly_the_resources_in_scope(run):
    (report,) = run.reports
    planned_groups = {a["name"] for a in report["asgs"] if a["action"] == "planned"}
    planned_instances = {i["id"] for i in report["instances"] if i["action"] == "planned"}

    assert report["dry_run"] is True
    assert planned_groups == {g.name for g in run.estate.groups_in(IN_SCOPE)}
    assert planned_instances == {i.id for i in run.estate.instances_in(IN_SCOPE)}
