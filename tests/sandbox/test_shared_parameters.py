"""The embedded AWS shares SSM parameters through RAM as AWS does: advanced tier, in region."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.core import embedded_aws, environment

OWNER, READER, STRANGER = "111111111111", "222222222222", "333333333333"
REGION = "eu-west-1"
NAME = "/hub/waves/canary"
ARN = f"arn:aws:ssm:{REGION}:{OWNER}:parameter{NAME}"


@pytest.fixture
def shared():
    """The owner's parameter, shared with READER; returns a setter for its tier."""
    with embedded_aws(), environment({"MOTO_ACCOUNT_ID": OWNER}):
        boto3.client("ram", region_name=REGION).create_resource_share(
            name="canary", resourceArns=[ARN], principals=[READER])

        def publish(tier: str = "Advanced") -> None:
            boto3.client("ssm", region_name=REGION).put_parameter(
                Name=NAME, Value="ami-0123456789abcdef0", Type="String", Tier=tier,
                Overwrite=True)
        yield publish


def read(account: str, region: str = REGION) -> str:
    with environment({"MOTO_ACCOUNT_ID": account}):
        ssm = boto3.client("ssm", region_name=region)
        return ssm.get_parameter(Name=ARN)["Parameter"]["Value"]


def test_a_principal_of_the_share_reads_the_owners_advanced_parameter_by_arn(shared):
    shared()
    assert read(READER) == "ami-0123456789abcdef0"


@pytest.mark.parametrize(("account", "region", "tier"), [
    (STRANGER, REGION, "Advanced"),       # not a principal of the share
    (READER, REGION, "Standard"),         # RAM shares only advanced parameters
    (READER, "us-east-1", "Advanced"),    # a share holds in its own region only
])
def test_anyone_else_is_refused(shared, account, region, tier):
    shared(tier)
    with pytest.raises(ClientError) as refused:
        read(account, region)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
