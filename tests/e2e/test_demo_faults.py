"""``--fault``: a failed launch, attach or health check rolls the replacement back."""

from __future__ import annotations

import pytest

from sandbox.fleet import IN_SCOPE

from .estate import all_instances, demo_run, group_members, holder, instance

ROLLBACK_FAULTS = ("launch-failure", "attach-failure", "health-check-failure")


def relaunched(estate):
    return [i for i in estate.instances_in(IN_SCOPE) if i.strategy == "relaunch"]


def strays(run) -> list[str]:
    """Instances launched by the run that are still alive and hold no estate volume."""
    holders = {holder(s) for s in run.estate.instances}
    return sorted(i["InstanceId"] for i in all_instances()
                  if i["InstanceId"] not in run.before.instances
                  and not any(t["Key"] == "aws:autoscaling:groupName" for t in i.get("Tags", []))
                  and i["State"]["Name"] not in ("terminated", "shutting-down")
                  and i["InstanceId"] not in holders)


@pytest.fixture(scope="module", params=ROLLBACK_FAULTS)
def rollback(request, tmp_path_factory):
    with demo_run(tmp_path_factory.mktemp(request.param), fault=request.param) as (_aws, result):
        yield result


def test_rollback_fault_run_exits_zero_when_rollback_is_verified(rollback):
    assert rollback.exit_code == 0, rollback.verdict.problems()


def test_old_instance_runs_again_on_the_old_ami_with_its_volumes(rollback):
    for standalone in relaunched(rollback.estate):
        now = instance(standalone.id)

        assert holder(standalone) == standalone.id, standalone.name
        assert (now["State"]["Name"], now["ImageId"]) == ("running", rollback.estate.old_image)


def test_the_function_reports_the_rolled_back_replacement_as_failed_or_retried(rollback):
    """A refusal is ``failed``; capacity (transient, launch-failure) is never a failure: the
    replacement rolled back once the old instance was down too long, and is tried again."""
    final = {}
    for report in rollback.reports:
        final.update({e["id"]: e for e in report["instances"]})
    transient = rollback.options.fault == "launch-failure"
    for standalone in relaunched(rollback.estate):
        assert final[standalone.id]["action"] == ("in_progress" if transient else "failed"), (
            final[standalone.id])
        assert final[standalone.id]["reason"]


def test_no_replacement_instance_survives_the_rollback(rollback):
    assert strays(rollback) == []


def test_groups_end_on_one_ami_at_full_capacity(rollback):
    # Launch and attach faults hit RunInstances/AttachVolume only, which Auto Scaling does not
    # use: the groups must converge. Failing status checks may also roll a refresh back.
    allowed = ({rollback.estate.new_image}, {rollback.estate.old_image}) \
        if rollback.options.fault == "health-check-failure" else ({rollback.estate.new_image},)
    for g in rollback.estate.groups_in(IN_SCOPE):
        members = group_members(g.name)

        assert {instance(i)["ImageId"] for i in members} in allowed, g.name
        assert len(members) == g.capacity, g.name
