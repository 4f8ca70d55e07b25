"""Launch templates read as AWS answers them at 200 templates: every one asked for, and
pages with NextToken only under MaxResults (moto alone answers 15 and no token)."""

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox import embedded_aws

COUNT = 200


@pytest.fixture(scope="module")
def estate():
    """200 tagged templates, the first with 25 versions (built once: reads only below)."""
    with embedded_aws():
        ec2 = boto3.client("ec2")
        ids = [ec2.create_launch_template(
            LaunchTemplateName=f"web-{n:03}",
            LaunchTemplateData={"ImageId": "ami-11111111", "InstanceType": "t3.micro"},
            TagSpecifications=[{"ResourceType": "launch-template",
                                "Tags": [{"Key": "team", "Value": "web"}]}],
        )["LaunchTemplate"]["LaunchTemplateId"] for n in range(COUNT)]
        for n in range(2, 26):
            ec2.create_launch_template_version(LaunchTemplateId=ids[0], SourceVersion="1",
                                               LaunchTemplateData={"ImageId": f"ami-{n:08}"})
        yield ec2, ids


def test_every_template_asked_for_by_id_is_answered(estate):
    ec2, ids = estate

    answer = ec2.describe_launch_templates(LaunchTemplateIds=ids)

    assert sorted(t["LaunchTemplateId"] for t in answer["LaunchTemplates"]) == sorted(ids)
    assert "NextToken" not in answer


def test_every_template_asked_for_by_name_is_answered(estate):
    ec2, _ = estate

    answer = ec2.describe_launch_templates(LaunchTemplateNames=[f"web-{n:03}"
                                                                for n in range(COUNT)])

    assert len(answer["LaunchTemplates"]) == COUNT


def test_a_filter_without_max_results_answers_every_match(estate):
    ec2, ids = estate

    answer = ec2.describe_launch_templates(Filters=[{"Name": "tag:team", "Values": ["web"]}])

    assert {t["LaunchTemplateId"] for t in answer["LaunchTemplates"]} == set(ids)


def test_max_results_pages_with_a_token_through_every_template(estate):
    ec2, ids = estate

    pages = list(ec2.get_paginator("describe_launch_templates").paginate(
        PaginationConfig={"PageSize": 30}))

    assert [len(p["LaunchTemplates"]) for p in pages] == [30] * 6 + [20]
    assert [t["LaunchTemplateId"] for p in pages for t in p["LaunchTemplates"]] == ids


def test_max_results_beyond_200_is_refused(estate):
    ec2, _ = estate

    with pytest.raises(ClientError) as caught:
        ec2.describe_launch_templates(MaxResults=201)

    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_every_version_of_a_template_is_answered(estate):
    ec2, ids = estate

    answer = ec2.describe_launch_template_versions(LaunchTemplateId=ids[0])

    assert [v["VersionNumber"] for v in answer["LaunchTemplateVersions"]] == list(range(1, 26))
    assert "NextToken" not in answer


def test_versions_asked_for_by_number_are_all_answered(estate):
    ec2, ids = estate

    answer = ec2.describe_launch_template_versions(
        LaunchTemplateId=ids[0], Versions=[str(n) for n in range(1, 26)])

    assert len(answer["LaunchTemplateVersions"]) == 25


def test_the_latest_version_of_every_template_is_answered_and_paged(estate):
    ec2, ids = estate

    pages = list(ec2.get_paginator("describe_launch_template_versions").paginate(
        Versions=["$Latest"], PaginationConfig={"PageSize": 150}))

    versions = [v for p in pages for v in p["LaunchTemplateVersions"]]
    assert [len(p["LaunchTemplateVersions"]) for p in pages] == [150, 50]
    assert [v["LaunchTemplateId"] for v in versions] == ids
    assert versions[0]["VersionNumber"] == 25
    assert versions[0]["LaunchTemplateData"]["InstanceType"] == "t3.micro"


def test_latest_and_default_of_every_template_are_answered_in_pages_of_200(estate):
    """AWS's account-wide form (no template named): $Latest and $Default may be asked for
    together; the engine reads every group's template this way, 200 a page."""
    ec2, ids = estate

    pages = list(ec2.get_paginator("describe_launch_template_versions").paginate(
        Versions=["$Latest", "$Default"], MaxResults=200))

    versions = [v for p in pages for v in p["LaunchTemplateVersions"]]
    assert all(len(p["LaunchTemplateVersions"]) <= 200 for p in pages)
    assert {v["LaunchTemplateId"] for v in versions} == set(ids)
    first = {v["VersionNumber"]: v["DefaultVersion"] for v in versions
             if v["LaunchTemplateId"] == ids[0]}
    assert first == {25: False, 1: True}     # its latest, and its default


def test_version_numbers_without_a_template_are_refused(estate):
    ec2, _ = estate

    with pytest.raises(ClientError) as caught:
        ec2.describe_launch_template_versions(Versions=["$Latest", "3"])

    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "version numbers" in caught.value.response["Error"]["Message"]
