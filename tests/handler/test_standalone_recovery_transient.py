"""Issue 13, class 3: a transient error retries later (backoff) and never rolls back nor
marks the AMI failed; a permanent one rolls back; transient errors that persist past the
bound count as permanent. Each of the first three failed before the fix (rolled back,
``failed-ami`` recorded)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError
from standalone_estate import build_estate, entry, function, set_parameter

from handler.aws import is_transient
from handler.standalone import retry


@pytest.fixture
def estate(aws):
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def _tags(estate, instance_id: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in estate.describe(instance_id).get("Tags", [])}


def _assert_replaced_cleanly(estate, old: str, volumes: dict[str, str]) -> None:
    new = estate.replacement_of(old)
    assert new["ImageId"] == estate.new_ami
    assert estate.data_volumes(new["InstanceId"]) == volumes
    assert estate.describe(old)["State"]["Name"] == "terminated"
    assert "ami-upgrade:failed-ami" not in _tags(estate, old)
    assert not [k for k in _tags(estate, new["InstanceId"]) if k == "ami-upgrade:retry"]


@pytest.mark.parametrize(("operation", "code"), [
    # (throttling codes are retried by the SDK first: injecting more than its ten
    # attempts costs real seconds of its backoff, so they are classified below only)
    ("StopInstances", "InternalError"),                 # AWS itself
    ("RunInstances", "InsufficientInstanceCapacity"),   # capacity, after the stop
    ("AttachVolume", "ServiceUnavailable"),
    ("AttachVolume", "InvalidInstanceID.NotFound"),     # the new ID not yet visible
])
def test_a_transient_error_is_retried_and_neither_rolls_back_nor_marks_the_ami(
        aws, estate, operation, code):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.fail(operation, code, times=2)
    fn = function(aws)

    report = fn.invoke({})
    fn.drain()

    assert entry(report, old)["action"] == "replaced"
    _assert_replaced_cleanly(estate, old, volumes)
    assert aws.faults.count("StartInstances") == 0          # never rolled back


def test_a_transient_error_beyond_the_invocation_waits_in_a_tag_then_resumes(aws, estate):
    """The backoff outlives the invocation: the tag says which step, when, and why."""
    old = estate.launch("app")
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", "no t3.micro", times=2)
    fn = function(aws, timeout_seconds=60)    # 30 s then 60 s of backoff: past its deadline

    first = fn.invoke({})

    assert entry(first, old)["action"] == "in_progress"
    assert "retrying 'launch on" in entry(first, old)["reason"]
    assert "InsufficientInstanceCapacity" in entry(first, old)["reason"]
    recorded = retry.Retry.parse(_tags(estate, old)["ami-upgrade:retry"])
    assert (recorded.attempt, recorded.step) == (2, f"launch on {estate.new_ami}")
    assert "ami-upgrade:rollback" not in _tags(estate, old)
    fn.drain()
    assert estate.replacement_of(old)["ImageId"] == estate.new_ami


def test_a_permanent_error_still_rolls_back(aws, estate):
    old = estate.launch("app")
    aws.faults.fail("RunInstances", "InvalidParameterCombination", "not in this AZ")

    report = function(aws).invoke({})

    assert entry(report, old)["action"] == "failed"
    assert entry(report, old)["reason"].startswith("rolled back: RunInstances failed: "
                                                    "InvalidParameterCombination")
    assert _tags(estate, old)["ami-upgrade:failed-ami"] == estate.new_ami


def test_a_transient_error_that_persists_past_the_bound_rolls_back(aws, estate):
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", "no t3.micro", times=None)
    fn = function(aws)

    fn.invoke({})
    fn.drain()

    final = fn.reports[-1]
    assert entry(final, old)["action"] == "failed"
    assert entry(final, old)["reason"] == (
        "rolled back: RunInstances failed: InsufficientInstanceCapacity: no t3.micro "
        f"(transient, {retry.MAX_FORWARD_ATTEMPTS} attempts)")
    assert estate.describe(old)["State"]["Name"] == "running"
    assert estate.data_volumes(old) == volumes
    assert "ami-upgrade:retry" not in _tags(estate, old)


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "RunInstances")


@pytest.mark.parametrize(("error", "transient"), [
    (_client_error("Throttling"), True),
    (_client_error("RequestLimitExceeded"), True),
    (_client_error("InsufficientInstanceCapacity"), True),
    (_client_error("InvalidInstanceID.NotFound"), True),
    (_client_error("SomethingNew", 503), True),           # AWS's 5xx
    (_client_error("SomethingNew", 429), True),
    (ConnectTimeoutError(endpoint_url="https://ec2"), True),
    (_client_error("InvalidParameterValue"), False),
    (_client_error("UnauthorizedOperation", 403), False),
    (_client_error("InvalidAMIID.NotFound"), False),
    (_client_error("VolumeInUse"), False),
])
def test_one_classification_of_errors(error, transient):
    assert is_transient(error) is transient


def test_capacity_on_the_launch_after_termination_is_retried_from_the_kept_shape(aws, estate):
    """preserve_private_ip: the old instance is already terminated (no instance at all);
    the backoff is recorded on the launch template that keeps the shape."""
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", "none", times=2)
    fn = function(aws, timeout_seconds=60, preserve_private_ip=True)

    first = fn.invoke({})

    assert entry(first, old)["action"] == "in_progress"
    assert estate.describe(old)["State"]["Name"] == "terminated"
    (template,) = estate.ec2.describe_launch_templates()["LaunchTemplates"]
    tags = {t["Key"]: t["Value"] for t in template["Tags"]}
    assert retry.Retry.parse(tags["ami-upgrade:retry"]).attempt == 2
    fn.drain()
    new = estate.replacement_of(old)
    assert (new["ImageId"], estate.data_volumes(new["InstanceId"])) == (estate.new_ami, volumes)
    assert estate.ec2.describe_launch_templates()["LaunchTemplates"] == []
