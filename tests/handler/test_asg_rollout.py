"""A refresh run to completion in the emulation: every instance on the new AMI, the group
on the new version."""

import json


def _finish(aws, estate, name: str) -> dict:
    aws.advance(1800)
    return estate.refreshes(name)[0]


def test_every_instance_runs_the_new_ami_when_the_refresh_completes(
        aws, estate, images, function):
    estate.group("web", capacity=4)
    before = set(estate.instance_images("web"))
    estate.publish(images.new)
    config = {"default": {"MinHealthyPercentage": 50, "InstanceWarmup": 60}}
    function(ASG_CONFIGURATIONS=json.dumps(config)).invoke({})

    refresh = _finish(aws, estate, "web")

    after = estate.instance_images("web")
    assert refresh["Status"] == "Successful"
    assert refresh["PercentageComplete"] == 100
    assert set(after.values()) == {images.new}
    assert len(after) == 4
    assert not before & set(after)          # replaced, not patched
    assert estate.describe("web")["LaunchTemplate"]["Version"] == "2"


def test_a_mixed_instances_group_ends_on_the_new_version_and_ami(aws, estate, images, function):
    estate.group("mixed", mixed=True, version="$Latest")
    estate.publish(images.new)
    function().invoke({})

    refresh = _finish(aws, estate, "mixed")

    group = estate.describe("mixed")
    assert refresh["Status"] == "Successful"
    assert set(estate.instance_images("mixed").values()) == {images.new}
    assert group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"][
        "Version"] == "2"


def test_a_template_resolving_the_parameter_launches_its_new_value(
        aws, estate, images, function):
    estate.group("alias", estate.template("alias-lt", "resolve:ssm:/ami/linux/test"))
    assert set(estate.instance_images("alias").values()) == {images.old}
    estate.publish(images.new)
    function().invoke({})

    refresh = _finish(aws, estate, "alias")

    assert refresh["Status"] == "Successful"
    assert set(estate.instance_images("alias").values()) == {images.new}


def test_the_next_change_rolls_the_group_on_from_the_version_it_reached(
        aws, estate, images, function):
    estate.group("web")
    ours = function()
    estate.publish(images.new)
    ours.invoke({})
    _finish(aws, estate, "web")
    estate.publish(images.newer)

    report = ours.invoke({})

    versions = estate.versions(estate.template_id("web"))
    assert report["asgs"][0]["source_version"] == "2"
    assert versions[3] == {**versions[2], "ImageId": images.newer}
    _finish(aws, estate, "web")
    assert set(estate.instance_images("web").values()) == {images.newer}


def test_a_template_resolving_the_parameter_is_refreshed_without_skip_matching(
        aws, estate, images, function, api_calls):
    """Its version does not change, so SkipMatching would skip every instance."""
    estate.group("alias", estate.template("alias-lt", "resolve:ssm:/ami/linux/test"))
    estate.publish(images.new)
    config = {"default": {"SkipMatching": True, "AutoRollback": True, "InstanceWarmup": 60}}

    report = function(ASG_CONFIGURATIONS=json.dumps(config)).invoke({})

    assert api_calls.of("StartInstanceRefresh")[0]["Preferences"] == {"InstanceWarmup": 60}
    assert len(report["asgs"][0]["notes"]) == 2
    assert _finish(aws, estate, "alias")["Status"] == "Successful"
    assert set(estate.instance_images("alias").values()) == {images.new}


def test_auto_rollback_is_left_out_for_a_group_on_latest(estate, images, function):
    estate.group("web", version="$Latest")
    estate.publish(images.new)
    config = {"default": {"AutoRollback": True, "MinHealthyPercentage": 50}}

    report = function(ASG_CONFIGURATIONS=json.dumps(config)).invoke({})

    entry = report["asgs"][0]
    assert entry["action"] == "refresh_started"
    assert entry["preferences"] == {"MinHealthyPercentage": 50}
    assert any("AutoRollback left out" in note and "$Latest" in note for note in entry["notes"])
    assert estate.refreshes("web")[0]["Preferences"]["AutoRollback"] is False


def test_auto_rollback_is_kept_for_a_group_on_a_numbered_version(estate, images, function):
    estate.group("web", version="1")
    estate.publish(images.new)
    config = {"default": {"AutoRollback": True}}

    report = function(ASG_CONFIGURATIONS=json.dumps(config)).invoke({})

    assert report["asgs"][0]["preferences"] == {"AutoRollback": True}
    assert estate.refreshes("web")[0]["Preferences"]["AutoRollback"] is True
