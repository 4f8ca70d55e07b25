"""RunInstances is idempotent by ClientToken on the embedded AWS, as in AWS."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox import embedded_aws

IMAGE = "ami-1e749f67"


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


def _count(ec2) -> int:
    return sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])


def test_a_repeated_token_returns_the_first_launch(aws):
    ec2 = boto3.client("ec2")
    first = ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, ClientToken="tok-1")
    ec2.stop_instances(InstanceIds=[first["Instances"][0]["InstanceId"]])

    second = ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, ClientToken="tok-1")

    assert second["ReservationId"] == first["ReservationId"]
    assert second["Instances"][0]["InstanceId"] == first["Instances"][0]["InstanceId"]
    assert _count(ec2) == 1


def test_a_repeated_token_with_other_parameters_is_refused(aws):
    ec2 = boto3.client("ec2")
    ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, ClientToken="tok-1")

    with pytest.raises(ClientError) as raised:
        ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, ClientToken="tok-1",
                          InstanceType="t3.large")

    assert raised.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert _count(ec2) == 1


def test_other_tokens_and_no_token_launch_new_instances(aws):
    ec2 = boto3.client("ec2")
    for token in ("tok-1", "tok-2", None, None):
        kwargs = {"ClientToken": token} if token else {}
        ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, **kwargs)

    assert _count(ec2) == 4
