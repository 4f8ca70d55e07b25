"""A describe that fails during planning (throttled past the SDK's retries, or refused) never
escapes as a raw ClientError (issue 13, class 3): the run reports it (failed or partial, naming
the call and the error), publishes the summary, and the other subsystem goes on. A transient
error says so, and a continuation retries it."""

from __future__ import annotations

import json

import pytest
from standalone_estate import APP_ROLE, build_estate, entry, set_parameter

from sandbox import LambdaFunction

PARAMETER = "/ami/linux/test"


pytestmark = pytest.mark.usefixtures("no_sdk_retries")


@pytest.fixture
def instances(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def test_a_throttled_group_discovery_is_reported_and_instances_still_move(aws, instances,
                                                                          summaries):
    old = instances.launch("db")
    topic = summaries.topic_arn
    aws.faults.fail("DescribeAutoScalingGroups", "Throttling", "Rate exceeded", times=None)
    function = LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                    "INSTANCE_ROLES": json.dumps([APP_ROLE]),
                                    "NOTIFICATION_TOPIC_ARN": topic})

    report = function.invoke({})

    assert report["status"] == "partial"
    assert report["reason"] == (
        "planning the Auto Scaling groups failed: DescribeAutoScalingGroups failed: "
        "Throttling: Rate exceeded (transient: retried at the next invocation)")
    assert entry(report, old)["action"] == "replaced"
    assert report["continuation"] == 1
    assert json.loads(summaries.bodies()[0])["reason"] == report["reason"]
    aws.faults.clear()
    follow_up = function.drain()
    assert follow_up and follow_up[0]["status"] == "succeeded"


def test_a_refused_instance_discovery_fails_the_run_and_groups_still_move(
        aws, estate, images, function):
    estate.group("web")
    estate.publish(images.new)
    # the standalone discovery's reads (by state), not the groups' reads of their members
    aws.faults.fail("DescribeInstances", "UnauthorizedOperation", "not authorized",
                    times=None, when=lambda params: "instance-state-name" in json.dumps(params))

    report = function().invoke({})

    assert report["asgs"][0]["action"] == "refresh_started"
    assert report["reason"] == ("planning the standalone instances failed: DescribeInstances "
                                "failed: UnauthorizedOperation: not authorized")
    assert report["status"] == "partial"
    assert "continuation" not in report   # permanent: nothing to retry


def test_a_throttled_refresh_read_fails_only_that_group(aws, estate, images, function):
    estate.group("api")
    estate.group("web")
    estate.publish(images.new)
    aws.faults.fail("DescribeInstanceRefreshes", "Throttling", "Rate exceeded", times=None,
                    when=lambda params: params.get("AutoScalingGroupName") == "api")
    waits = json.dumps({"api": {"OnRefreshInProgress": "wait"}})   # its refresh is read first

    report = function(ASG_CONFIGURATIONS=waits).invoke({})

    by_name = {e["name"]: e for e in report["asgs"]}
    assert by_name["api"]["action"] == "failed"
    assert by_name["api"]["reason"] == ("DescribeInstanceRefreshes failed: Throttling: Rate "
                                        "exceeded (transient: retried at the next invocation)")
    assert by_name["web"]["action"] == "refresh_started"
    assert report["status"] == "partial"
    assert report["continuation"] == 1
