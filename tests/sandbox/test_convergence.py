"""The verdict: a run that did not do its job is never called converged."""

from __future__ import annotations

import boto3
import pytest

from sandbox import embedded_aws
from sandbox.convergence import CONVERGE, ROLLBACK, UNCHANGED, take_snapshot, verify
from sandbox.fleet import IN_SCOPE, OUT_OF_SCOPE, build_estate
from sandbox.stack import load_stack


@pytest.fixture
def estate():
    with embedded_aws():
        yield build_estate(load_stack("dev"))


def test_an_estate_nobody_touched_has_not_converged_and_each_resource_says_why(estate):
    before = take_snapshot("us-east-1")

    verdict = verify(estate, before, take_snapshot("us-east-1"), [], CONVERGE)

    assert not verdict.ok
    failing = {c.resource.split(" ")[0] for c in verdict.checks if not c.ok}
    assert failing == ({g.name for g in estate.groups_in(IN_SCOPE)}
                       | {i.id for i in estate.instances_in(IN_SCOPE)})
    assert any("no instance refresh was started" in p for p in verdict.problems())


def test_an_untouched_estate_is_a_correct_dry_run_only_with_a_plan_of_the_scope(estate):
    snapshot = take_snapshot("us-east-1")
    plan = {"asgs": [{"name": g.name, "action": "planned", "reason": ""}
                     for g in estate.groups_in(IN_SCOPE)],
            "instances": [{"id": i.id, "action": "planned", "reason": ""}
                          for i in estate.instances_in(IN_SCOPE)]}

    assert verify(estate, snapshot, snapshot, [plan], UNCHANGED).ok
    assert not verify(estate, snapshot, snapshot, [], UNCHANGED).ok


def test_a_stopped_out_of_scope_instance_is_a_problem(estate):
    before = take_snapshot("us-east-1")
    (other,) = estate.instances_in(OUT_OF_SCOPE)
    boto3.client("ec2").stop_instances(InstanceIds=[other.id])

    verdict = verify(estate, before, take_snapshot("us-east-1"), [], UNCHANGED)

    assert f"instance {other.id} (other-team-box): state running -> stopped" in \
        verdict.problems()


def test_a_new_template_version_on_an_out_of_scope_group_is_a_problem(estate):
    before = take_snapshot("us-east-1")
    (other,) = estate.groups_in(OUT_OF_SCOPE)
    boto3.client("ec2").create_launch_template_version(
        LaunchTemplateId=other.launch_template_id, SourceVersion="1",
        LaunchTemplateData={"ImageId": estate.new_image})

    verdict = verify(estate, before, take_snapshot("us-east-1"), [], UNCHANGED)

    assert any(p.startswith("group other-team: launch template changed") for p in
               verdict.problems())


def test_a_detached_data_volume_is_reported_as_lost(estate):
    before = take_snapshot("us-east-1")
    db = estate.instances_in(IN_SCOPE)[0]
    volume = db.volumes[0]
    boto3.client("ec2").detach_volume(VolumeId=volume.id, InstanceId=db.id)

    verdict = verify(estate, before, take_snapshot("us-east-1"), [], CONVERGE)

    check = next(c for c in verdict.checks if c.resource.startswith(db.id))
    assert check.outcome == "lost"
    assert f"data volume {volume.id} ({volume.device}) is not attached" in check.problems


def test_a_rollback_the_function_did_not_report_as_failed_is_a_problem(estate):
    snapshot = take_snapshot("us-east-1")
    db = estate.instances_in(IN_SCOPE)[0]
    reported = {"asgs": [], "instances": [{"id": db.id, "action": "failed", "reason": "x"}]}

    silent = verify(estate, snapshot, snapshot, [], ROLLBACK)
    acknowledged = verify(estate, snapshot, snapshot, [reported], ROLLBACK)

    assert any(p.startswith(f"instance {db.id}") and "reported neither a failure" in p
               for p in silent.problems())
    assert next(c for c in acknowledged.checks if c.resource.startswith(db.id)).ok
