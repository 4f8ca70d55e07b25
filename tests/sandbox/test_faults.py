"""Fault injection on the embedded AWS: errors on cue, crashes after the N-th change."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox import embedded_aws
from sandbox.faults import SimulatedCrash

IMAGE = "ami-1e749f67"   # one of moto's stock images


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


def _launch(ec2) -> str:
    return ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]


def test_fail_answers_the_aws_error_and_changes_nothing(aws):
    ec2 = boto3.client("ec2")
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", "no capacity here")

    with pytest.raises(ClientError) as raised:
        _launch(ec2)

    assert raised.value.response["Error"] == {"Code": "InsufficientInstanceCapacity",
                                              "Message": "no capacity here"}
    assert ec2.describe_instances()["Reservations"] == []
    assert aws.faults.mutating_calls == []


def test_fail_lasts_the_given_number_of_calls(aws):
    ec2 = boto3.client("ec2")
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", times=2)

    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(_launch(ec2)[:2])
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    assert outcomes == ["InsufficientInstanceCapacity", "InsufficientInstanceCapacity", "i-"]


def test_fail_when_narrows_it_to_matching_requests(aws):
    ec2 = boto3.client("ec2")
    first, second = _launch(ec2), _launch(ec2)
    aws.faults.fail("StopInstances", "IncorrectInstanceState", times=None,
                    when=lambda params: params["InstanceIds"] == [second])

    ec2.stop_instances(InstanceIds=[first])
    with pytest.raises(ClientError, match="IncorrectInstanceState"):
        ec2.stop_instances(InstanceIds=[second])
    with pytest.raises(ClientError, match="IncorrectInstanceState"):
        ec2.stop_instances(InstanceIds=[second])

    aws.faults.clear()
    ec2.stop_instances(InstanceIds=[second])
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()[
        "Reservations"] for i in r["Instances"]}
    assert states == {first: "stopped", second: "stopped"}


def test_errors_are_shaped_for_json_services_too(aws):
    aws.faults.fail("GetParameter", "AccessDeniedException", "not allowed")

    with pytest.raises(ClientError) as raised:
        boto3.client("ssm").get_parameter(Name="/x")

    assert raised.value.response["Error"] == {"Code": "AccessDeniedException",
                                              "Message": "not allowed"}


def test_crash_after_n_dies_once_the_nth_change_is_done(aws):
    ec2 = boto3.client("ec2")
    instance = _launch(ec2)
    aws.faults.crash_after(2)

    ec2.describe_instances()                       # reads do not count
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "a", "Value": "1"}])
    with pytest.raises(SimulatedCrash, match=r"#3 \(ec2 CreateTags\)"):
        ec2.create_tags(Resources=[instance], Tags=[{"Key": "b", "Value": "2"}])
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "c", "Value": "3"}])   # only once

    tags = ec2.describe_instances()["Reservations"][0]["Instances"][0]["Tags"]
    assert sorted(t["Key"] for t in tags) == ["a", "b", "c"]        # b was done
    assert issubclass(SimulatedCrash, BaseException)
    assert not issubclass(SimulatedCrash, Exception)


def test_mutating_calls_and_requests_record_what_was_done(aws):
    ec2 = boto3.client("ec2")
    instance = _launch(ec2)
    ec2.stop_instances(InstanceIds=[instance])
    ec2.describe_instances()

    assert aws.faults.mutating_calls == [("ec2", "RunInstances"), ("ec2", "StopInstances")]
    assert aws.faults.count("StopInstances") == 1
    assert aws.faults.requests("StopInstances") == [{"InstanceIds": [instance]}]


def test_status_checks_follow_the_rule_for_new_instances_only(aws):
    ec2 = boto3.client("ec2")
    before = _launch(ec2)
    aws.faults.status_checks("impaired", after_seconds=30)
    after = _launch(ec2)

    def status(instance_id):
        s = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"][0]
        return s["InstanceStatus"]["Status"], s["SystemStatus"]["Status"]

    assert (status(before), status(after)) == (("ok", "ok"), ("initializing", "initializing"))
    aws.advance(30)
    assert (status(before), status(after)) == (("ok", "ok"), ("impaired", "ok"))


def test_status_checks_can_never_pass(aws):
    ec2 = boto3.client("ec2")
    aws.faults.status_checks("never", image_id=IMAGE)
    instance = _launch(ec2)

    aws.advance(3600)

    (status,) = ec2.describe_instance_status(InstanceIds=[instance])["InstanceStatuses"]
    assert status["InstanceStatus"]["Status"] == "initializing"


def test_bad_arguments_are_refused(aws):
    with pytest.raises(ValueError, match="n >= 1"):
        aws.faults.crash_after(0)
    with pytest.raises(ValueError, match="ok, impaired or never"):
        aws.faults.status_checks("maybe")
    with pytest.raises(ValueError, match="at least 1"):
        aws.faults.fail("RunInstances", "X", times=0)


def test_the_handle_loses_its_faults_on_exit():
    with embedded_aws() as aws:
        faults = aws.faults
    assert not hasattr(aws, "faults")
    assert faults.mutating_calls == []
