"""One run over a mixed estate, through the entrypoint: which groups got which version and
preferences, and that every other group has no new template version and no refresh.

The estate is built and the function invoked once per module; each test reads one aspect.
"""

import json
from types import SimpleNamespace

import boto3
import pytest

from sandbox import LambdaFunction, embedded_aws

EXCLUSIONS = "/ami-upgrade/exclusions"
CONFIGURATIONS = {"default": {"MinHealthyPercentage": 50, "InstanceWarmup": 60},
                  "api": {"InstanceWarmup": 120, "MaxHealthyPercentage": 150}}
REFRESHED = ("alias", "api", "default-version", "mixed", "web")
SKIPPED = ("current", "dynamic", "graviton", "listed", "opted-out", "windows")
MISCONFIGURED = ("legacy",)
OUT_OF_SCOPE = ("other-team", "untagged")


@pytest.fixture(scope="module")
def run(kit):
    with embedded_aws() as aws, pytest.MonkeyPatch.context() as patch:
        images = kit.make_images(aws.region)
        estate = kit.Estate(images)
        estate.publish(images.old)
        for name in ("web", "api", "listed", "dynamic"):
            estate.group(name)
        estate.group("untagged", parameter=None)
        estate.group("other-team", parameter="/ami/linux/other-team")
        estate.group("opted-out", tags={"ami-upgrade:exclude": "true"})
        estate.group("legacy", launch_configuration=True)
        estate.group("mixed", mixed=True, version="$Latest")
        estate.group("alias", estate.template("alias-lt", f"resolve:ssm:{kit.PARAMETER}"))
        default_lt = estate.template("default-lt")
        estate.add_version(default_lt, InstanceType="t3.large")   # $Latest, not $Default
        estate.group("default-version", default_lt, version=None)
        estate.group("graviton", image_id=images.arm)
        estate.group("windows", image_id=images.windows)
        estate.group("current", image_id=images.new)
        boto3.client("ssm").put_parameter(Name=EXCLUSIONS, Type="String",
                                          Value=json.dumps({"asgs": ["dynamic"]}))
        templates = {name: estate.template_id(name) for name in (*REFRESHED, *SKIPPED,
                                                                 *OUT_OF_SCOPE)
                     if name != "legacy"}
        before = {name: estate.versions(t) for name, t in templates.items()}
        estate.publish(images.new)
        calls = kit.record_calls(patch)
        function = LambdaFunction(aws, {
            "AMI_PARAMETER_NAME": kit.PARAMETER, "EXCLUDED_ASGS": "listed,another",
            "EXCLUSIONS_PARAMETER_NAME": EXCLUSIONS,
            "ASG_CONFIGURATIONS": json.dumps(CONFIGURATIONS)})

        report = function.invoke({"parameter_name": kit.PARAMETER})

        yield SimpleNamespace(images=images, estate=estate, report=report, calls=calls,
                              templates=templates, before=before,
                              entries={e["name"]: e for e in report["asgs"]},
                              started={c["AutoScalingGroupName"]: c
                                       for c in calls.of("StartInstanceRefresh")})


def test_the_report_has_each_group_in_scope_once_in_name_order(run):
    assert [e["name"] for e in run.report["asgs"]] == sorted((*REFRESHED, *SKIPPED,
                                                              *MISCONFIGURED))
    assert run.report["status"] == "partial"   # the launch-configuration group failed
    assert run.report["ami_id"] == run.images.new


def test_a_tagged_group_gets_a_version_made_from_the_one_it_uses(run):
    versions = run.estate.versions(run.templates["web"])

    assert sorted(versions) == [1, 2]
    assert versions[2] == {**versions[1], "ImageId": run.images.new}
    assert run.entries["web"]["action"] == "refresh_started"
    assert run.entries["web"]["launch_template_version"] == "2"
    assert run.started["web"]["DesiredConfiguration"] == {
        "LaunchTemplate": {"LaunchTemplateId": run.templates["web"], "Version": "2"}}
    assert run.started["web"]["Strategy"] == "Rolling"


def test_preferences_are_the_default_entry_merged_with_the_groups_own(run):
    assert run.started["api"]["Preferences"] == {
        "MinHealthyPercentage": 50, "InstanceWarmup": 120, "MaxHealthyPercentage": 150}
    assert run.started["web"]["Preferences"] == {"MinHealthyPercentage": 50,
                                                 "InstanceWarmup": 60}


def test_the_refresh_reported_is_the_one_running_on_the_group(run):
    for name in REFRESHED:
        refreshes = run.estate.refreshes(name)
        assert [r["InstanceRefreshId"] for r in refreshes] == [run.entries[name]["refresh_id"]]


def test_groups_out_of_scope_are_not_reported_and_untouched(run):
    for name in OUT_OF_SCOPE:
        assert name not in run.entries
        assert run.estate.versions(run.templates[name]) == run.before[name]
        assert run.estate.refreshes(name) == []


def test_each_group_reports_the_code_of_its_outcome(run):
    codes = {name: entry["code"] for name, entry in run.entries.items()}
    assert codes == {
        **dict.fromkeys(REFRESHED, "refresh_started"), "current": "already_current",
        **dict.fromkeys(("dynamic", "listed", "opted-out"), "excluded"),
        "graviton": "incompatible", "windows": "incompatible",
        "legacy": "misconfigured_launch_template"}


def test_excluded_groups_are_skipped_with_the_reason(run):
    assert run.entries["listed"] == {
        "name": "listed", "action": "skipped", "code": "excluded",
        "reason": "excluded by the exclusion list (EXCLUDED_ASGS or the exclusions parameter)"}
    assert run.entries["dynamic"]["reason"] == run.entries["listed"]["reason"]
    assert run.entries["opted-out"]["reason"] == "excluded by tag ami-upgrade:exclude=true"


def test_a_launch_configuration_group_fails_with_the_fix(run):
    assert run.entries["legacy"]["action"] == "failed"
    assert "launch configuration legacy-lc" in run.entries["legacy"]["reason"]
    assert run.entries["legacy"]["fix"].startswith("migrate the group to a launch template")
    assert run.estate.refreshes("legacy") == []


def test_a_mixed_instances_group_gets_its_policy_with_a_numbered_version(run):
    template = run.templates["mixed"]

    assert run.started["mixed"]["DesiredConfiguration"] == {"MixedInstancesPolicy": {
        **run.estate.describe("mixed")["MixedInstancesPolicy"],
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "2"},
            "Overrides": [{"InstanceType": "t3.small"}, {"InstanceType": "t3a.small"}]}}}
    assert run.estate.versions(template)[2]["ImageId"] == run.images.new


def test_a_template_resolving_the_parameter_gets_no_new_version(run):
    assert run.estate.versions(run.templates["alias"]) == run.before["alias"]
    assert run.started["alias"]["DesiredConfiguration"] == {
        "LaunchTemplate": {"LaunchTemplateId": run.templates["alias"], "Version": "1"}}
    assert run.entries["alias"]["creates_version"] is False


def test_a_default_version_group_builds_on_its_default_version_not_the_latest(run):
    versions = run.estate.versions(run.templates["default-version"])

    assert sorted(versions) == [1, 2, 3]
    assert versions[3] == {**versions[1], "ImageId": run.images.new}
    assert versions[3]["InstanceType"] == "t3.micro"
    assert run.started["default-version"]["DesiredConfiguration"]["LaunchTemplate"][
        "Version"] == "3"


def test_groups_on_another_architecture_or_platform_are_skipped(run):
    assert run.entries["graviton"]["reason"] == (
        f"architecture differs: current image {run.images.arm} is arm64, {run.images.new} "
        "is x86_64")
    assert run.entries["windows"]["reason"] == (
        f"platform differs: current image {run.images.windows} is windows, {run.images.new} "
        "is linux")


def test_a_group_already_on_the_new_ami_is_skipped(run):
    assert run.entries["current"]["action"] == "skipped"
    assert run.entries["current"]["reason"].startswith(f"already on {run.images.new}")


def test_skipped_groups_get_no_template_version_and_no_refresh(run):
    for name in SKIPPED:
        assert run.entries[name]["action"] == "skipped"
        assert run.estate.versions(run.templates[name]) == run.before[name]
        assert run.estate.refreshes(name) == []


def test_no_refresh_names_latest_or_default(run):
    for params in run.started.values():
        desired = params["DesiredConfiguration"]
        spec = desired.get("LaunchTemplate") or desired["MixedInstancesPolicy"][
            "LaunchTemplate"]["LaunchTemplateSpecification"]
        assert spec["Version"].isdigit()


def test_the_run_reads_in_batches_and_writes_once_per_group(run):
    counts = run.calls.count()

    assert counts["autoscaling:StartInstanceRefresh"] == len(REFRESHED)
    assert counts["ec2:CreateLaunchTemplateVersion"] == len(REFRESHED) - 1   # not "alias"
    # the groups in scope; then every group, since versions are written (shared templates)
    assert counts["autoscaling:DescribeAutoScalingGroups"] == 2
    # one read per template a group (past scope and exclusions) names by number, and one
    # for the $Latest/$Default of every template ("mixed", "default-version")
    pinned = ("alias", "api", "web", "current", "graviton", "windows")
    assert counts["ec2:DescribeLaunchTemplateVersions"] == len(pinned) + 1
    account_wide = [p for p in run.calls.of("DescribeLaunchTemplateVersions")
                    if "LaunchTemplateId" not in p]
    assert account_wide == [{"Versions": ["$Default", "$Latest"], "MaxResults": 200}]
    assert "autoscaling:CancelInstanceRefresh" not in counts
