"""The run-level steps outside planning (the AMI check, the exclusions read, the observation
of work in flight) end in a report naming the step, the call and what happens next, never
a raw ClientError; what a later run may get past (a transient error, an image still
``pending``) is scheduled: a continuation for an error, the follow-up rule for time."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.ec2.models import ec2_backends
from standalone_estate import APP_ROLE, PARAMETER, build_estate, entry, set_parameter

from handler.engine import NOT_RETRIED
from sandbox import LambdaFunction, follow_up

EXCLUSIONS = "/ami-upgrade/exclusions"


pytestmark = pytest.mark.usefixtures("no_sdk_retries")


@pytest.fixture
def instances(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _function(aws, **env: str) -> LambdaFunction:
    return LambdaFunction(aws, {"AMI_PARAMETER_NAME": PARAMETER,
                                "INSTANCE_ROLES": json.dumps([APP_ROLE]), **env})


def test_a_throttled_parameter_read_is_reported_and_retried_by_a_continuation(aws, instances):
    old = instances.launch("db")
    aws.faults.fail("GetParameter", "ThrottlingException", "Rate exceeded", times=None)
    fn = _function(aws)

    report = fn.invoke({})
    aws.faults.clear()

    assert report["status"] == "failed"
    assert report["reason"] == (
        "the AMI check failed: GetParameter failed: ThrottlingException: Rate exceeded; "
        "retried by continuation 1 now")
    assert report["continuation"] == 1
    assert entry(fn.drain()[0], old)["action"] == "replaced"


def test_a_throttled_image_check_is_reported_and_retried(aws, instances):
    old = instances.launch("db")
    aws.faults.fail("DescribeImages", "RequestLimitExceeded", "Request limit exceeded.",
                    times=None)
    fn = _function(aws)

    report = fn.invoke({})
    aws.faults.clear()

    assert report["reason"].startswith("the AMI check failed: DescribeImages failed: "
                                       "RequestLimitExceeded")
    assert report["continuation"] == 1
    assert entry(fn.drain()[0], old)["action"] == "replaced"


def test_a_throttled_exclusions_read_is_reported_and_retried(aws, instances):
    boto3.client("ssm").put_parameter(Name=EXCLUSIONS, Type="String",
                                      Value=json.dumps({"instances": [], "asgs": []}))
    old = instances.launch("db")
    aws.faults.fail("GetParameter", "ThrottlingException", "Rate exceeded", times=None,
                    when=lambda params: EXCLUSIONS in json.dumps(params))
    fn = _function(aws, EXCLUSIONS_PARAMETER_NAME=EXCLUSIONS)

    report = fn.invoke({})
    aws.faults.clear()

    assert report["reason"].startswith("the exclusions read failed: GetParameter failed: "
                                       "ThrottlingException")
    assert instances.describe(old)["State"]["Name"] == "running"
    assert entry(fn.drain()[0], old)["action"] == "replaced"


def test_a_refused_image_check_is_reported_and_not_retried_at_once(aws, instances):
    instances.launch("db")
    aws.faults.fail("DescribeImages", "UnauthorizedOperation", "not authorized", times=None)

    report = _function(aws).invoke({})

    assert report["reason"] == ("the AMI check failed: DescribeImages failed: "
                                f"UnauthorizedOperation: not authorized; {NOT_RETRIED}")
    assert "continuation" not in report


def test_a_pending_image_is_retried_by_the_follow_up_rule_until_available(aws, instances):
    old = instances.launch("db")
    backend = ec2_backends[aws.account_id][aws.region]
    backend.amis[instances.new_ami].state = "pending"
    fn = _function(aws)
    follow_up.deploy(fn, PARAMETER)

    report = fn.invoke({})

    assert report["reason"] == (
        f"parameter {PARAMETER} (version 1) holds {instances.new_ami}, whose state is "
        "'pending', not 'available' yet; retried when the follow-up rule "
        "ami-upgrade-follow-up next fires (every 5 minutes)")
    assert "continuation" not in report
    assert follow_up.state(fn) == "ENABLED"
    backend.amis[instances.new_ami].state = "available"
    assert entry(follow_up.fire(fn), old)["action"] == "replaced"
    fn.drain()
    assert follow_up.state(fn) == "DISABLED"


def test_a_pending_image_without_the_rule_says_nothing_retries_it_soon(aws, instances):
    ec2_backends[aws.account_id][aws.region].amis[instances.new_ami].state = "pending"

    report = _function(aws).invoke({})

    assert report["reason"].endswith("not retried automatically (no follow-up rule): the "
                                     "scheduled reconcile or the next change of the parameter "
                                     "runs it again")
    assert "continuation" not in report


def _after_stop(aws):
    """Matches every call once the old instance has been stopped (work is in flight)."""
    return lambda params: aws.faults.count("StopInstances") > 0


def test_a_throttled_observation_of_replacements_ends_in_a_report_and_resumes(aws, instances):
    old = instances.launch("db")
    aws.faults.fail("DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.",
                    times=None, when=_after_stop(aws))
    fn = _function(aws)

    report = fn.invoke({})
    aws.faults.clear()

    moving = entry(report, old)
    assert moving["action"] == "in_progress"
    assert moving["reason"].endswith("; stopped: DescribeInstances failed: RequestLimitExceeded: "
                                     "Request limit exceeded.; resumed from its tags by the "
                                     "next run")
    assert report["continuation"] == 1
    assert entry(fn.drain()[-1], old)["action"] == "replaced"


def test_a_refused_observation_keeps_the_follow_up_rule_and_the_replacement_resumes(
        aws, instances):
    old = instances.launch("db")
    aws.faults.fail("DescribeVolumes", "UnauthorizedOperation", "not authorized",
                    times=None, when=_after_stop(aws))
    fn = _function(aws)
    follow_up.deploy(fn, PARAMETER)

    report = fn.invoke({})
    aws.faults.clear()

    assert entry(report, old)["action"] == "in_progress"
    assert "DescribeVolumes failed: UnauthorizedOperation" in entry(report, old)["reason"]
    assert follow_up.state(fn) == "ENABLED"
    assert "continuation" not in report   # a refusal: the rule retries, not at once
    reports = [fn.invoke({}), *fn.drain()]
    assert [e["action"] for r in reports for e in r["instances"] if e["id"] == old][-1] == \
        "replaced"


def test_when_work_in_flight_cannot_be_read_at_the_end_the_follow_up_rule_stays_enabled(
        aws, instances):
    instances.launch("db")
    fn = _function(aws)
    follow_up.deploy(fn, PARAMETER)
    fn.invoke({})
    assert follow_up.state(fn) == "DISABLED"   # converged: nothing in flight
    reads = []

    def the_last_read(params: dict) -> bool:   # planning's read passes, the run's last fails
        if "in-flight" not in json.dumps(params):
            return False
        reads.append(params)
        return len(reads) > 1

    aws.faults.fail("DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.",
                    times=None, when=the_last_read)
    follow_up_events = boto3.client("events")
    follow_up_events.enable_rule(Name="ami-upgrade-follow-up")   # as a crashed run left it

    report = fn.invoke({})

    assert report["status"] == "succeeded"
    assert follow_up.state(fn) == "ENABLED"
