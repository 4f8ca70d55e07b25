"""The model of real AWS in the benchmarks: EC2's documented buckets, the shared Auto
Scaling bucket, the issue's lower bound and the floor the rate limits put under any run."""

import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from benchmarks import real_aws
from benchmarks.aws_model import (
    Bucket,
    Latency,
    _TokenBucket,
    ec2_request_bucket,
    modelled,
    rate_floor,
)
from sandbox import embedded_aws

IMAGE = "ami-1e749f67"   # an image moto ships
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.mark.parametrize(("operation", "params", "bucket"), [
    ("DescribeImages", {}, Bucket(100, 20)),                  # non-mutating
    ("DescribeInstances", {}, Bucket(50, 10)),                # unfiltered, unpaginated
    ("DescribeInstances", {"InstanceIds": ["i-1"]}, Bucket(50, 10)),   # IDs: no filter
    ("DescribeInstances", {"Filters": [{}]}, Bucket(100, 20)),
    ("DescribeVolumes", {"MaxResults": 5}, Bucket(100, 20)),
    ("StopInstances", {}, Bucket(50, 5)),                     # mutating
    ("AttachVolume", {}, Bucket(50, 5)),
    ("CreateLaunchTemplateVersion", {}, Bucket(100, 5)),      # uncategorized
    ("CreateTags", {}, Bucket(100, 10)),
    ("RunInstances", {}, Bucket(5, 2)),
    ("TerminateInstances", {}, Bucket(100, 5)),
])
def test_each_call_draws_from_the_bucket_ec2_documents(operation, params, bucket):
    assert ec2_request_bucket(operation, params) == bucket


def test_the_bound_and_its_floor_follow_the_issue():
    # two calls a group (its version and its refresh): no per-group refresh read
    assert [real_aws.lower_bound(g, n) for g, n in ((10, 0), (0, 100), (10, 10))] == [
        26, 503, 76]
    assert real_aws.lower_bound(10, 0, alias=True) == 16   # no version to write
    # 5,000 new launch-template versions at 100 then 5 a second: 980 s, whatever the engine.
    assert real_aws.bound_floor(5000, 0) == (980.0, "CreateLaunchTemplateVersion")
    assert real_aws.bound_floor(0, 1000) == (497.5, "RunInstances")
    assert rate_floor({}, autoscaling=300, autoscaling_bucket=Bucket(100, 20)) == (
        10.0, "Auto Scaling (shared)")


def test_a_burst_over_a_bucket_is_throttled_and_refills_with_time():
    with embedded_aws() as aws, modelled(aws, Latency(0.0, 0.0)) as model:
        ec2 = boto3.client("ec2", config=NO_RETRY)
        model.enabled = True

        def launch() -> str:
            try:
                ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)
            except ClientError as error:
                return error.response["Error"]["Code"]
            return "ok"

        assert [launch() for _ in range(6)] == ["ok"] * 5 + ["RequestLimitExceeded"]
        aws.advance(1.0)   # RunInstances refills 2 a second
        assert [launch() for _ in range(3)] == ["ok", "ok", "RequestLimitExceeded"]
        assert model.throttled["RunInstances"] == 2


def test_every_auto_scaling_call_shares_one_bucket():
    with embedded_aws() as aws, modelled(aws, Latency(0.0, 0.0),
                                         autoscaling=Bucket(3, 1)) as model:
        autoscaling = boto3.client("autoscaling", config=NO_RETRY)
        model.enabled = True
        calls = [autoscaling.describe_auto_scaling_groups,
                 autoscaling.describe_instance_refreshes, autoscaling.describe_tags,
                 autoscaling.describe_auto_scaling_groups]
        codes = []
        for call in calls:
            try:
                call(**({"AutoScalingGroupName": "g"}
                        if call == autoscaling.describe_instance_refreshes else {}))
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
        assert codes == ["ok", "ok", "ok", "Throttling"]


# ------------------------------------------------------------ calls overlapping on threads


def _on_threads(*work):
    """Run each callable on its own thread, all alive together (distinct lanes)."""
    barrier = threading.Barrier(len(work))

    def run(job):
        job()
        barrier.wait()   # no thread ends (and hands its id on) before the others' calls

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_calls_from_worker_threads_overlap_and_the_owner_waits_for_the_longest():
    with embedded_aws() as aws, modelled(aws, Latency(read=1.0, write=3.0)) as model:
        ec2 = boto3.client("ec2")
        model.enabled = True
        start = model.now()
        seen: dict[str, float] = {}

        def reads(name: str, n: int):
            def job():
                for _ in range(n):
                    ec2.describe_images(ImageIds=[IMAGE])
                seen[name] = model.now()
            return job

        _on_threads(reads("one", 1), reads("two", 2), reads("four", 4))

        # each thread sees its own lane; the owner, the longest of them (not their sum, 7)
        assert {k: v - start for k, v in seen.items()} == {"one": 1.0, "two": 2.0, "four": 4.0}
        assert model.now() - start == 4.0
        assert model.lanes == {}
        assert model.calls["DescribeImages"] == 7
        ec2.describe_images(ImageIds=[IMAGE])    # the owner's own call: after the join
        assert model.now() - start == 5.0
        assert aws.clock.monotonic() - start == 5.0   # flushed: the listeners ran


def test_lanes_restart_once_the_owner_has_joined_them():
    with embedded_aws() as aws, modelled(aws, Latency(read=1.0, write=1.0)) as model:
        ec2 = boto3.client("ec2")
        model.enabled = True
        start = model.now()
        call = lambda: ec2.describe_images(ImageIds=[IMAGE])  # noqa: E731
        _on_threads(call, call)
        assert model.now() - start == 1.0
        _on_threads(call, call, call)
        assert model.now() - start == 2.0


def test_a_bucket_never_refills_backwards_for_a_lane_behind_another():
    bucket = _TokenBucket(Bucket(2, 1), now=10.0)
    assert bucket.take(2, 10.0)
    assert not bucket.take(1, 9.0)       # earlier than the last take: nothing refilled
    assert bucket.at == 10.0
    assert not bucket.take(1, 10.5)      # half a token since 10.0, not 1.5 since 9.0
    assert bucket.take(1, 11.0)
