"""Issue 13, class 3: a transient error retries later (backoff) and never rolls back nor
marks the AMI failed; a permanent one rolls back; transient errors that persist past the
bound, once the old instance is down, roll back without marking the AMI, and the
replacement is tried again after a backoff. Each of the first three failed before the fix
(rolled back, ``failed-ami`` recorded)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError
from standalone_estate import PARAMETER, build_estate, entry, function, set_parameter

from handler.aws import is_transient
from handler.standalone import retry
from sandbox import follow_up


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


def test_capacity_that_outlasts_the_bound_rolls_back_without_marking_the_ami(aws, estate):
    """The old instance was down too long: rolled back, but no failed-ami; the retry time
    is on the old instance and the entry says when (never ``failed``)."""
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", "no t3.micro", times=None)
    fn = function(aws)

    fn.invoke({})
    fn.drain()

    final = entry(fn.reports[-1], old)
    assert final["action"] == "in_progress"
    assert final["reason"].startswith(
        "rolled back after transient errors (RunInstances failed: InsufficientInstanceCapacity:"
        f" no t3.micro (transient, {retry.MAX_FORWARD_ATTEMPTS} attempts)); the instance runs "
        "again, and its replacement is tried again at ")
    assert len(fn.reports) < 10     # no continuation waits for the retry time
    assert estate.describe(old)["State"]["Name"] == "running"
    assert estate.data_volumes(old) == volumes
    tags = _tags(estate, old)
    assert "ami-upgrade:failed-ami" not in tags
    again = retry.Retry.parse(tags["ami-upgrade:retry"])
    assert (again.step, again.attempt) == (retry.REPLACE_AGAIN, 1)
    assert "ami-upgrade:rollback" not in tags and "ami-upgrade:target-ami" not in tags


def test_after_a_transient_rollback_the_next_run_waits_then_replaces(aws, estate):
    """Planning leaves it alone (in_progress, not skipped for good) until the retry time;
    then the AMI is tried again and, with capacity back, the instance is replaced."""
    old = estate.launch("app")
    volumes = estate.data_volumes(old)
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", "no t3.micro", times=None)
    fn = function(aws)
    fn.invoke({})
    fn.drain()
    aws.faults.clear()

    early = fn.invoke({})
    assert entry(early, old)["action"] == "in_progress"
    assert "tried again at" in entry(early, old)["reason"]
    assert estate.describe(old)["State"]["Name"] == "running"

    aws.advance(retry.CAP_SECONDS + 1)
    later = fn.invoke({})
    fn.drain()

    assert entry(later, old)["action"] in ("replaced", "in_progress")
    _assert_replaced_cleanly(estate, old, volumes)


def test_a_transient_rollback_keeps_the_follow_up_rule_enabled_until_the_retry(aws, estate):
    old = estate.launch("app")
    aws.faults.fail("RunInstances", "InsufficientInstanceCapacity", "no t3.micro", times=None)
    fn = function(aws)
    follow_up.deploy(fn, PARAMETER)
    fn.invoke({})
    fn.drain()
    aws.faults.clear()

    assert follow_up.state(fn) == "ENABLED"
    for _ in range(int(retry.CAP_SECONDS // 300) + 1):   # the rule fires every 5 minutes
        follow_up.fire(fn)
        fn.drain()
    assert estate.replacement_of(old)["ImageId"] == estate.new_ami
    assert follow_up.fire(fn) is None or follow_up.state(fn) == "DISABLED"


def test_transient_errors_while_the_old_instance_runs_never_roll_back(aws, estate):
    """Nothing is down (the stop itself is refused): the step is retried past the bound,
    with backoff, and the old instance is never marked or rolled back."""
    old = estate.launch("app")
    aws.faults.fail("StopInstances", "InternalError", "try later", times=None)
    fn = function(aws, timeout_seconds=60)
    follow_up.deploy(fn, PARAMETER)

    fn.invoke({})
    for _ in range(16):     # about 80 minutes of the rule firing every 5
        follow_up.fire(fn)
        fn.drain()

    assert entry(fn.reports[-1], old)["action"] == "in_progress"
    assert follow_up.state(fn) == "ENABLED"
    tags = _tags(estate, old)
    recorded = retry.Retry.parse(tags["ami-upgrade:retry"])
    assert recorded.step == "stop the old instance"
    assert recorded.attempt > retry.MAX_FORWARD_ATTEMPTS
    assert "ami-upgrade:failed-ami" not in tags and "ami-upgrade:rollback" not in tags
    assert estate.describe(old)["State"]["Name"] == "running"


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
