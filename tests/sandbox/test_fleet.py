"""The demo's estate: every role present, built from the stack's configuration."""

from __future__ import annotations

import json

import boto3
import pytest

from components.stack_settings import load_stack_settings
from sandbox import embedded_aws
from sandbox.fleet import (
    CURRENT,
    EXCLUDED_BY_LIST,
    EXCLUDED_BY_TAG,
    IN_SCOPE,
    OUT_OF_SCOPE,
    build_estate,
)
from sandbox.stack import load_stack

ROLES = {IN_SCOPE, EXCLUDED_BY_LIST, EXCLUDED_BY_TAG, OUT_OF_SCOPE}


def _stack(**values):
    return load_stack_settings({"parameterName": "/ami/linux/test", **values}, stack="dev",
                               region="us-east-1")


@pytest.fixture
def aws():
    with embedded_aws() as handle:
        yield handle


def test_every_role_is_present_for_groups_and_instances(aws):
    estate = build_estate(load_stack("dev"))

    assert {g.role for g in estate.groups} == ROLES
    assert {i.role for i in estate.instances} == ROLES | {CURRENT}


def test_the_parameter_names_the_old_image_and_both_images_share_an_architecture(aws):
    estate = build_estate(load_stack("dev"))

    value = boto3.client("ssm").get_parameter(Name="/ami/linux/test")["Parameter"]["Value"]
    images = boto3.client("ec2").describe_images(
        ImageIds=[estate.old_image, estate.new_image])["Images"]
    assert value == estate.old_image
    assert {i["Architecture"] for i in images} == {"x86_64"}


def test_everything_runs_the_old_image_except_the_current_instance(aws):
    estate = build_estate(load_stack("dev"))
    ec2 = boto3.client("ec2")

    images = {i["InstanceId"]: i["ImageId"] for r in ec2.describe_instances()["Reservations"]
              for i in r["Instances"] if i["State"]["Name"] == "running"}
    current = {i.id for i in estate.instances_in(CURRENT)}
    assert {v for k, v in images.items() if k not in current} == {estate.old_image}
    assert {images[i] for i in current} == {estate.new_image}


def test_groups_named_in_the_configuration_exist_with_their_own_settings(aws):
    stack = _stack(asgConfigurations={"default": {"MinHealthyPercentage": 90},
                                      "checkout": {"MinHealthyPercentage": 100,
                                                   "OnRefreshInProgress": "wait"}},
                   excludedAsgs=["legacy-batch"])

    estate = build_estate(stack)

    assert estate.group("checkout").role == IN_SCOPE
    assert estate.group("checkout").refresh.preferences["MinHealthyPercentage"] == 100
    assert estate.group("checkout").refresh.on_refresh_in_progress == "wait"
    assert estate.group("legacy-batch").role == EXCLUDED_BY_LIST
    assert json.loads(estate.environment["EXCLUDED_ASGS"]) == ["legacy-batch"]


def test_the_excluded_instance_goes_into_the_exclusions_parameter_when_the_stack_has_one(aws):
    estate = build_estate(load_stack("prod"))

    document = json.loads(boto3.client("ssm").get_parameter(
        Name="/ami/linux/prod/exclusions")["Parameter"]["Value"])
    assert document["instances"] == [i.id for i in estate.instances_in(EXCLUDED_BY_LIST)]
    assert json.loads(estate.environment["EXCLUDED_INSTANCES"]) == []


def test_without_an_exclusions_parameter_the_excluded_instance_is_in_the_environment(aws):
    estate = build_estate(load_stack("dev"))

    assert json.loads(estate.environment["EXCLUDED_INSTANCES"]) == [
        i.id for i in estate.instances_in(EXCLUDED_BY_LIST)]


def test_fleet_size_scales_group_capacity_and_standalone_instances(aws):
    estate = build_estate(load_stack("dev"), size=5)

    assert {g.capacity for g in estate.groups_in(IN_SCOPE)} == {5}
    assert len(estate.instances_in(IN_SCOPE)) == 5
    assert sum(len(m) for m in (boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["Instances"],)) == 5


def test_one_in_scope_instance_overrides_the_strategy_by_tag(aws):
    estate = build_estate(load_stack("dev"), size=3)

    assert [i.strategy for i in estate.instances_in(IN_SCOPE)] == [
        "relaunch", "relaunch", "replace-root-volume"]


def test_scope_all_builds_nothing_out_of_scope(aws):
    estate = build_estate(_stack(scope="all"))

    assert OUT_OF_SCOPE not in {g.role for g in estate.groups} | {i.role
                                                                  for i in estate.instances}


def _shape(stack, seed):
    with embedded_aws():
        estate = build_estate(stack, seed=seed)
        return [(i.name, i.id, i.instance_type, [(v.device, v.size) for v in i.volumes])
                for i in estate.instances]


def test_the_same_seed_builds_the_same_estate():
    stack = load_stack("dev")

    first, again, other = _shape(stack, 7), _shape(stack, 7), _shape(stack, 8)

    assert first == again
    assert first != other


def test_a_fleet_size_out_of_range_is_refused_before_anything_is_built(aws):
    with pytest.raises(ValueError, match="fleet size"):
        build_estate(load_stack("dev"), size=0)

    assert boto3.client("ec2").describe_instances()["Reservations"] == []
