"""Snapshot and restore of the embedded AWS: what a replayed test starts from is what was
built, whatever the previous replay did (moto's backends and the emulations' state)."""

import boto3
import pytest

from sandbox import embedded_aws

IMAGE = "ami-1e749f67"   # an image moto ships


def _live(ec2) -> list[str]:
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}])
    return sorted(i["InstanceId"] for p in pages for r in p["Reservations"]
                  for i in r["Instances"])


def test_a_restore_undoes_calls_time_and_faults_and_can_be_repeated():
    with embedded_aws() as aws:
        ec2 = boto3.client("ec2")
        kept = ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"]
        calls, now = len(aws.faults.mutating_calls), aws.clock.monotonic()
        snapshot = aws.snapshot()

        for _ in range(2):
            ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)
            ec2.create_tags(Resources=[kept], Tags=[{"Key": "touched", "Value": "yes"}])
            aws.faults.fail("TerminateInstances", "UnauthorizedOperation")
            aws.advance(600)

            aws.restore(snapshot)

            assert _live(ec2) == [kept]
            tags = ec2.describe_instances(InstanceIds=[kept])["Reservations"][0][
                "Instances"][0].get("Tags", [])
            assert tags == []
            assert len(aws.faults.mutating_calls) == calls
            assert aws.clock.monotonic() == now
            ec2.terminate_instances(InstanceIds=[kept])    # the fault is gone too
            aws.restore(snapshot)


def test_a_service_first_used_after_the_snapshot_starts_empty_again():
    with embedded_aws() as aws:
        snapshot = aws.snapshot()
        ssm = boto3.client("ssm")
        ssm.put_parameter(Name="/after", Value="x", Type="String")

        aws.restore(snapshot)

        assert ssm.describe_parameters()["Parameters"] == []


def test_a_snapshot_restores_only_its_own_embedded_aws():
    with embedded_aws() as aws:
        snapshot = aws.snapshot()
    with embedded_aws() as other, pytest.raises(ValueError, match="only the embedded AWS"):
        other.restore(snapshot)
