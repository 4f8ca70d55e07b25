"""The sandbox's look-ups by ID (sandbox/fast_lookups.py) answer what moto's own scans do."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.tags import TagBackend

from sandbox import embedded_aws

IMAGE = "ami-1e749f67"   # an image moto ships


def test_tags_and_instances_by_id_match_moto_scanning_the_account():
    with embedded_aws() as aws:
        ec2 = boto3.client("ec2")
        ids = [i["InstanceId"] for i in ec2.run_instances(
            ImageId=IMAGE, MinCount=3, MaxCount=3)["Instances"]]
        ec2.create_tags(Resources=ids[:2], Tags=[{"Key": "b", "Value": "2"},
                                                 {"Key": "a", "Value": "1"}])
        ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "c", "Value": "3"}])
        volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
        ec2.create_tags(Resources=[volume], Tags=[{"Key": "v", "Value": "x"}])
        backend = ec2_backends[aws.account_id][aws.region]

        for resource in [*ids, volume]:
            obj = backend.volumes[resource] if resource == volume else backend.get_instance(
                resource)
            assert obj.get_tags() == TagBackend.describe_tags(
                backend, filters={"resource-id": [resource]})
        assert [t["key"] for t in backend.get_instance(ids[0]).get_tags()] == ["b", "a", "c"]
        assert backend.get_instance(ids[2]).get_tags() == []

        asked = [ids[2], ids[0]]   # the order asked for is the order answered
        assert [i.id for i in backend.get_multi_instances_by_id(asked)] == asked
        answered = ec2.describe_instance_credit_specifications(InstanceIds=asked)
        assert [s["InstanceId"] for s in answered["InstanceCreditSpecifications"]] == asked

        with pytest.raises(ClientError) as raised:
            ec2.terminate_instances(InstanceIds=[ids[0], "i-0123456789abcdef0"])
        assert raised.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
        assert "i-0123456789abcdef0" in raised.value.response["Error"]["Message"]
