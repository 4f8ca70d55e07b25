"""The sandbox's instance refresh, through boto3 as the engine sees it: AWS's errors and
statuses, instances really replaced batch by batch, the desired configuration applied."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from handler.events import parse_event
from handler.triggers import REFRESH_ENDED, REGISTRY
from sandbox import embedded_aws
from sandbox.instance_refresh import ENDED_KEY
from sandbox.routing import install_rule, publish_in, receive_in, refresh_ended_entry


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


_SOURCE: list[str] = []


def _source_image(ec2) -> str:
    """One of moto's built-in x86_64 AMIs (the same in every embedded AWS; looked up once)."""
    if not _SOURCE:
        _SOURCE.append(ec2.describe_images(
            Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])[
            "Images"][0]["ImageId"])
    return _SOURCE[0]


class Fleet:
    """One launch template with two versions (old and new image) and groups on version 1."""

    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2")
        self.autoscaling = boto3.client("autoscaling")
        source = _source_image(self.ec2)
        self.old, self.new = (self.ec2.copy_image(SourceImageId=source, Name=n,
                                                  SourceRegion="us-east-1")["ImageId"]
                              for n in ("old", "new"))
        self.template = self.ec2.create_launch_template(
            LaunchTemplateName="web", LaunchTemplateData={
                "ImageId": self.old, "InstanceType": "t3.micro"})["LaunchTemplate"][
            "LaunchTemplateId"]
        self.ec2.create_launch_template_version(LaunchTemplateId=self.template,
                                                SourceVersion="1",
                                                LaunchTemplateData={"ImageId": self.new})

    def group(self, name: str = "web", capacity: int = 4, version: str = "1") -> str:
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=capacity * 2,
            DesiredCapacity=capacity, AvailabilityZones=["us-east-1a"],
            HealthCheckGracePeriod=60,
            LaunchTemplate={"LaunchTemplateId": self.template, "Version": version})
        return name

    def start(self, name: str = "web", version: str = "2", **preferences) -> str:
        return self.autoscaling.start_instance_refresh(
            AutoScalingGroupName=name, Preferences=preferences,
            DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": self.template,
                                                     "Version": version}},
        )["InstanceRefreshId"]

    def refresh(self, name: str = "web") -> dict:
        return self.autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=name)["InstanceRefreshes"][0]

    def group_info(self, name: str = "web") -> dict:
        return self.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    def images(self, name: str = "web") -> list[str]:
        """The image of each instance of the group, sorted (old ones first if any)."""
        ids = [i["InstanceId"] for i in self.group_info(name)["Instances"]]
        reservations = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return sorted(i["ImageId"] for r in reservations for i in r["Instances"])

    def count(self, name: str = "web") -> tuple[int, int]:
        """(instances on the old image, instances on the new one)."""
        images = self.images(name)
        return images.count(self.old), images.count(self.new)


@pytest.fixture
def fleet(aws) -> Fleet:
    return Fleet()


def _error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


# ----------------------------------------------------------------------- the API


def test_a_started_refresh_is_pending_and_echoes_the_request(fleet):
    fleet.group()

    refresh_id = fleet.start(InstanceWarmup=30, SkipMatching=False)

    refresh = fleet.refresh()
    assert refresh["InstanceRefreshId"] == refresh_id
    assert (refresh["Status"], refresh["PercentageComplete"], refresh["InstancesToUpdate"]) == \
        ("Pending", 0, 4)
    assert refresh["Preferences"] == {"MinHealthyPercentage": 90, "InstanceWarmup": 30,
                                      "SkipMatching": False, "AutoRollback": False}
    assert refresh["DesiredConfiguration"] == {"LaunchTemplate": {
        "LaunchTemplateId": fleet.template, "Version": "2"}}
    assert refresh["Strategy"] == "Rolling"
    assert "EndTime" not in refresh


def test_a_second_refresh_is_refused_while_one_is_active(fleet):
    fleet.group()
    fleet.start()

    assert _error(fleet.start) == (
        "InstanceRefreshInProgress",
        "An Instance Refresh is already in progress and blocks the execution of this Instance "
        "Refresh.")


def test_cancelling_without_an_active_refresh_is_an_error(fleet):
    fleet.group()

    assert _error(lambda: fleet.autoscaling.cancel_instance_refresh(
        AutoScalingGroupName="web")) == (
        "ActiveInstanceRefreshNotFound",
        "No in progress or pending Instance Refresh found for Auto Scaling group web")


def test_an_unknown_group_is_a_validation_error(fleet):
    assert _error(lambda: fleet.start("nope"))[0] == "ValidationError"


def test_max_healthy_without_min_healthy_is_refused(fleet):
    fleet.group()

    assert _error(lambda: fleet.start(MaxHealthyPercentage=150))[0] == "ValidationError"


def test_refreshes_are_described_newest_first_a_page_at_a_time(aws, fleet):
    fleet.group()
    ids = []
    for _ in range(3):
        ids.append(fleet.start())
        fleet.autoscaling.cancel_instance_refresh(AutoScalingGroupName="web")
        aws.advance(15)

    first = fleet.autoscaling.describe_instance_refreshes(AutoScalingGroupName="web",
                                                          MaxRecords=2)
    rest = fleet.autoscaling.describe_instance_refreshes(AutoScalingGroupName="web",
                                                         NextToken=first["NextToken"])

    assert [r["InstanceRefreshId"] for r in first["InstanceRefreshes"]] == ids[:0:-1]
    assert [r["InstanceRefreshId"] for r in rest["InstanceRefreshes"]] == ids[:1]
    assert "NextToken" not in rest


# ------------------------------------------------------------------- progress


def test_min_healthy_percentage_sets_the_batch_size(aws, fleet):
    fleet.group(capacity=4)
    fleet.start(MinHealthyPercentage=50, InstanceWarmup=60)

    aws.advance(15)

    assert fleet.count() == (2, 2)
    assert fleet.refresh()["Status"] == "InProgress"
    assert len(fleet.group_info()["Instances"]) == 4


def test_the_default_min_healthy_percentage_replaces_one_at_a_time(aws, fleet):
    fleet.group(capacity=4)
    fleet.start(InstanceWarmup=60)

    aws.advance(15)
    assert fleet.count() == (3, 1)
    aws.advance(60)
    assert fleet.count() == (2, 2)


def test_max_healthy_percentage_launches_before_terminating(aws, fleet):
    fleet.group(capacity=2)
    fleet.start(MinHealthyPercentage=100, MaxHealthyPercentage=150, InstanceWarmup=60)

    aws.advance(15)

    assert fleet.count() == (2, 1)          # the old ones serve until the new one is warm
    aws.advance(60)
    assert fleet.count() == (1, 1) or fleet.count() == (1, 2)


def test_progress_counts_instances_once_warmed_up(aws, fleet):
    fleet.group(capacity=4)
    fleet.start(MinHealthyPercentage=50, InstanceWarmup=60)

    aws.advance(15)
    warming = fleet.refresh()
    aws.advance(60)
    half = fleet.refresh()

    assert (warming["PercentageComplete"], warming["InstancesToUpdate"]) == (0, 4)
    assert warming["StatusReason"].startswith("Waiting for instances to warm up")
    assert (half["PercentageComplete"], half["InstancesToUpdate"]) == (50, 2)


def test_a_completed_refresh_leaves_every_instance_on_the_desired_version(aws, fleet):
    fleet.group(capacity=4)
    fleet.start(MinHealthyPercentage=50, InstanceWarmup=60)

    aws.advance(600)

    refresh = fleet.refresh()
    assert (refresh["Status"], refresh["PercentageComplete"], refresh["InstancesToUpdate"]) == \
        ("Successful", 100, 0)
    assert "EndTime" in refresh
    assert fleet.count() == (0, 4)
    assert fleet.group_info()["LaunchTemplate"]["Version"] == "2"


def test_skip_matching_leaves_instances_already_on_the_desired_version(aws, fleet):
    fleet.group(capacity=3)
    before = sorted(i["InstanceId"] for i in fleet.group_info()["Instances"])
    fleet.start(version="1", SkipMatching=True)

    aws.advance(60)

    assert fleet.refresh()["Status"] == "Successful"
    assert sorted(i["InstanceId"] for i in fleet.group_info()["Instances"]) == before


def test_checkpoints_pause_the_refresh(aws, fleet):
    fleet.group(capacity=4)
    fleet.start(MinHealthyPercentage=50, InstanceWarmup=60, CheckpointPercentages=[50, 100],
                CheckpointDelay=600)

    aws.advance(300)
    paused = fleet.refresh()
    aws.advance(600)

    assert paused["PercentageComplete"] == 50
    assert paused["StatusReason"] == "Waiting at checkpoint 50% for 600 seconds."
    assert fleet.count() == (0, 4)


def test_bake_time_holds_the_refresh_before_success(aws, fleet):
    fleet.group(capacity=2)
    fleet.start(MinHealthyPercentage=50, InstanceWarmup=60, BakeTime=600)

    aws.advance(300)
    baking = fleet.refresh()["Status"]
    aws.advance(600)

    assert (baking, fleet.refresh()["Status"]) == ("Baking", "Successful")


def test_protected_instances_are_waited_for_then_fail_the_refresh(aws, fleet):
    fleet.group(capacity=2)
    ids = [i["InstanceId"] for i in fleet.group_info()["Instances"]]
    fleet.autoscaling.set_instance_protection(AutoScalingGroupName="web", InstanceIds=ids,
                                              ProtectedFromScaleIn=True)
    fleet.start(InstanceWarmup=60)

    aws.advance(1800)
    waiting = fleet.refresh()
    aws.advance(1830)

    assert waiting["Status"] == "InProgress"
    assert fleet.refresh()["Status"] == "Failed"
    assert "protected from scale in" in fleet.refresh()["StatusReason"]
    assert fleet.count() == (2, 0)


def test_protected_instances_can_be_ignored(aws, fleet):
    fleet.group(capacity=2)
    protected = fleet.group_info()["Instances"][0]["InstanceId"]
    fleet.autoscaling.set_instance_protection(AutoScalingGroupName="web",
                                              InstanceIds=[protected], ProtectedFromScaleIn=True)
    fleet.start(InstanceWarmup=60, ScaleInProtectedInstances="Ignore")

    aws.advance(300)

    assert fleet.refresh()["Status"] == "Successful"
    assert fleet.count() == (1, 1)


def test_replace_root_volume_keeps_the_instances(aws, fleet):
    fleet.group(capacity=2)
    before = sorted(i["InstanceId"] for i in fleet.group_info()["Instances"])
    fleet.autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Strategy="ReplaceRootVolume",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": fleet.template,
                                                 "Version": "2"}})

    aws.advance(600)

    assert fleet.refresh()["Status"] == "Successful"
    assert sorted(i["InstanceId"] for i in fleet.group_info()["Instances"]) == before
    assert fleet.count() == (0, 2)


# ------------------------------------------------------------ cancel and rollback


def test_cancelling_stops_the_refresh_and_keeps_the_group_configuration(aws, fleet):
    fleet.group(capacity=4)
    refresh_id = fleet.start(InstanceWarmup=60)
    aws.advance(15)

    cancelled = fleet.autoscaling.cancel_instance_refresh(AutoScalingGroupName="web")
    cancelling = fleet.refresh()["Status"]
    aws.advance(600)

    assert cancelled["InstanceRefreshId"] == refresh_id
    assert (cancelling, fleet.refresh()["Status"]) == ("Cancelling", "Cancelled")
    assert fleet.count() == (3, 1)
    assert fleet.group_info()["LaunchTemplate"]["Version"] == "1"
    fleet.start()                                    # no longer blocks a new refresh


def test_a_rollback_puts_back_what_the_refresh_replaced(aws, fleet):
    fleet.group(capacity=4)
    fleet.start(MinHealthyPercentage=50, InstanceWarmup=60)
    aws.advance(90)

    fleet.autoscaling.rollback_instance_refresh(AutoScalingGroupName="web")
    rolling_back = fleet.refresh()
    aws.advance(600)

    refresh = fleet.refresh()
    assert rolling_back["Status"] == "RollbackInProgress"
    assert rolling_back["RollbackDetails"]["PercentageCompleteOnRollback"] == 50
    assert refresh["Status"] == "RollbackSuccessful"
    assert fleet.count() == (4, 0)
    assert fleet.group_info()["LaunchTemplate"]["Version"] == "1"


def test_a_group_on_latest_cannot_be_rolled_back(fleet):
    fleet.group(version="$Latest")
    fleet.start()

    code, message = _error(lambda: fleet.autoscaling.rollback_instance_refresh(
        AutoScalingGroupName="web"))

    assert code == "IrreversibleInstanceRefresh"
    assert "$Latest" in message


def test_auto_rollback_is_refused_for_a_group_on_latest(fleet):
    fleet.group(version="$Latest")

    assert _error(lambda: fleet.start(AutoRollback=True))[0] == "ValidationError"


def test_a_launch_from_a_missing_image_fails_the_refresh(aws, fleet):
    fleet.group(capacity=2)
    fleet.ec2.deregister_image(ImageId=fleet.new)
    fleet.start(InstanceWarmup=60)

    aws.advance(60)

    refresh = fleet.refresh()
    assert refresh["Status"] == "Failed"
    assert f"The image id '[{fleet.new}]' does not exist" in refresh["StatusReason"]
    assert fleet.group_info()["LaunchTemplate"]["Version"] == "1"
    assert fleet.count() == (2, 0)                  # nothing terminated for it


def test_auto_rollback_undoes_a_refresh_that_fails_half_way(aws, fleet):
    fleet.group(capacity=4)
    fleet.start(MinHealthyPercentage=50, InstanceWarmup=60, AutoRollback=True)
    aws.advance(15)
    assert fleet.count() == (2, 2)
    fleet.ec2.deregister_image(ImageId=fleet.new)

    aws.advance(60)
    rolling_back = fleet.refresh()
    aws.advance(600)

    assert rolling_back["Status"] == "RollbackInProgress"
    assert rolling_back["RollbackDetails"]["RollbackReason"].startswith("Automatic rollback")
    assert rolling_back["RollbackDetails"]["InstancesToUpdateOnRollback"] == 2
    assert fleet.refresh()["Status"] == "RollbackSuccessful"
    assert fleet.count() == (4, 0)


# ------------------------------------------------------------ the end, as an event


def test_a_refresh_that_ends_emits_aws_event_routed_by_the_refresh_ended_rule(aws, fleet):
    fleet.group(capacity=2)
    refresh_id = fleet.start(MinHealthyPercentage=50, InstanceWarmup=60)
    aws.advance(30)
    assert aws.state.get(ENDED_KEY, []) == [], "announced before it ended"
    aws.advance(600)

    [ended] = aws.state[ENDED_KEY]
    refresh = fleet.refresh()
    assert (ended.group, ended.refresh_id, ended.status, ended.time) == (
        "web", refresh_id, "Successful", refresh["EndTime"])
    rule = install_rule(REFRESH_ENDED, "/ami/linux/test", "fn", "us-east-1", "refresh-ended")
    publish_in("us-east-1", refresh_ended_entry(ended))
    [event] = receive_in("us-east-1", rule)
    assert (event["source"], event["detail-type"]) == (
        REGISTRY[REFRESH_ENDED].source, "EC2 Auto Scaling Instance Refresh Succeeded")
    assert event["detail"] == {"InstanceRefreshId": refresh_id, "AutoScalingGroupName": "web"}
    assert parse_event(event, "/ami/linux/test").group == "web"


def test_a_cancelled_refresh_emits_its_end_once(aws, fleet):
    fleet.group(capacity=2)
    fleet.start(InstanceWarmup=60)
    fleet.autoscaling.cancel_instance_refresh(AutoScalingGroupName="web",
                                              WaitForTransitioningInstances=False)
    aws.advance(600)

    assert [e.status for e in aws.state[ENDED_KEY]] == ["Cancelled"]
