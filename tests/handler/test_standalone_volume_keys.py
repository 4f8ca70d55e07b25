"""A volume's KMS key the role may not use is found before the stop.

A relaunch detaches every data volume and attaches it to the new instance (or back, in a
rollback, starting the old instance on its root volume). EC2 uses the key of an encrypted
volume on the caller's behalf: a customer-managed key not in ``kmsKeyArns``
(``KMS_KEY_ARNS``) lets the detach succeed and refuses the attach, on the new instance
and on the rollback. Such an instance is skipped before anything changes; a granted key,
the AWS-managed ``aws/ebs`` key and an unencrypted volume move as usual.
"""

from __future__ import annotations

import json

import boto3
import pytest
from standalone_estate import entry, function, published_estate

ROOT_VOLUME = {"ami-upgrade:strategy": "replace-root-volume"}


@pytest.fixture
def estate(aws):
    return published_estate()


def _customer_key() -> str:
    return boto3.client("kms").create_key(Description="app data")["KeyMetadata"]["Arn"]


def _attach_encrypted(estate, instance_id: str, key: str | None) -> str:
    """A data volume at /dev/sdh encrypted with ``key`` (None: the account's default,
    the AWS-managed aws/ebs key)."""
    volume = estate.ec2.create_volume(
        Size=20, AvailabilityZone="us-east-1a", VolumeType="gp3", Encrypted=True,
        **({"KmsKeyId": key} if key else {}))["VolumeId"]
    estate.ec2.attach_volume(VolumeId=volume, InstanceId=instance_id, Device="/dev/sdh")
    return volume


def _invoke(aws, granted: tuple[str, ...] = (), dry_run: bool = False) -> dict:
    """Run the function with ``granted`` as KMS_KEY_ARNS; the report, with the mutating
    calls it made."""
    fn = function(aws)
    fn.environment["KMS_KEY_ARNS"] = json.dumps(list(granted))
    if dry_run:
        fn.environment["DRY_RUN"] = "true"
    before = len(aws.faults.mutating_calls)
    report = fn.invoke({})
    report["_mutating"] = aws.faults.mutating_calls[before:]
    return report


def test_data_volume_under_a_key_not_granted_skips_before_the_stop(aws, estate):
    db = estate.launch("db", volumes=2)
    key = _customer_key()
    volume = _attach_encrypted(estate, db, key)

    report = _invoke(aws, granted=(_customer_key(),))

    e = entry(report, db)
    assert e["action"] == "skipped", e
    assert e["reason"] == (
        f"preflight: data volume {volume} is encrypted with KMS key {key}, which is not in "
        "kmsKeyArns: the role could not attach it again once detached, nor start the "
        "instance on it (add the key to ami-upgrade:kmsKeyArns and deploy, or tag "
        "ami-upgrade:exclude=true)")
    assert report["_mutating"] == []
    assert estate.describe(db)["State"]["Name"] == "running"
    assert estate.data_volumes(db)["/dev/sdh"] == volume


def test_data_volume_under_a_granted_key_is_replaced(aws, estate):
    db = estate.launch("db", volumes=1)
    key = _customer_key()
    volume = _attach_encrypted(estate, db, key)

    report = _invoke(aws, granted=(key,))

    assert entry(report, db)["action"] == "replaced"
    assert estate.data_volumes(estate.replacement_of(db)["InstanceId"])["/dev/sdh"] == volume


def test_data_volume_under_the_aws_managed_key_is_replaced(aws, estate):
    db = estate.launch("db", volumes=1)
    volume = _attach_encrypted(estate, db, None)
    managed = boto3.client("kms").describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    assert estate.volume(volume)["KmsKeyId"] == managed

    report = _invoke(aws)

    assert entry(report, db)["action"] == "replaced"
    assert estate.data_volumes(estate.replacement_of(db)["InstanceId"])["/dev/sdh"] == volume


def test_unencrypted_volumes_are_replaced_without_reading_any_key(aws, estate, api_calls):
    db = estate.launch("db", volumes=2)

    report = _invoke(aws)

    assert entry(report, db)["action"] == "replaced"
    assert len(api_calls.of("DescribeKey")) == 0


def test_the_aws_managed_key_is_read_once_for_every_instance(aws, estate, api_calls):
    key = _customer_key()
    dbs = [estate.launch(f"db{n}", volumes=1) for n in range(3)]
    for db in dbs:
        _attach_encrypted(estate, db, key)

    report = _invoke(aws, dry_run=True)

    assert [entry(report, db)["action"] for db in dbs] == ["skipped"] * 3
    assert len(api_calls.of("DescribeKey")) == 1


def test_root_volume_replacement_checks_the_root_volumes_key(aws, estate):
    key = _customer_key()
    db = estate.launch("db", volumes=1, tags=ROOT_VOLUME, BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3",
                                            "Encrypted": True, "KmsKeyId": key}}])
    root = estate.describe(db)["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert estate.volume(root)["KmsKeyId"] == key

    report = _invoke(aws)

    e = entry(report, db)
    assert e["action"] == "skipped", e
    assert e["reason"].startswith(f"preflight: root volume {root} is encrypted with KMS key "
                                  f"{key}, which is not in kmsKeyArns"), e
    assert report["_mutating"] == []


def test_root_volume_replacement_does_not_move_data_volumes_so_their_keys_do_not_count(
        aws, estate):
    db = estate.launch("db", volumes=1, tags=ROOT_VOLUME)
    _attach_encrypted(estate, db, _customer_key())

    report = _invoke(aws)

    assert entry(report, db)["action"] == "replaced", entry(report, db)


@pytest.mark.filterwarnings("ignore:Exception\\(InjectedFault\\):UserWarning")
def test_a_key_that_cannot_be_told_apart_skips_with_the_reason(aws, estate):
    """A role deployed before it could read the AWS-managed key: skipped, not guessed."""
    db = estate.launch("db", volumes=1)
    volume = _attach_encrypted(estate, db, None)
    aws.faults.fail("DescribeKey", "AccessDeniedException", "not authorized", times=None)

    report = _invoke(aws)

    e = entry(report, db)
    assert e["action"] == "skipped", e
    assert e["reason"].startswith(f"preflight: data volume {volume} is encrypted with KMS key "), e
    assert "AWS-managed EBS key could not be read" in e["reason"]
    assert "AccessDeniedException" in e["reason"]
    assert report["_mutating"] == []
