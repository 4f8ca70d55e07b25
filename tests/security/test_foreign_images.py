"""Attack: an image of another account written into the parameter (a public AMI, or one
shared by an attacker). Only the owners named in ``allowedAmiOwners`` (default: this
account) are accepted; any other image is refused with a ``failed`` report naming the
image and its owner, before any change."""

from __future__ import annotations

import json

import boto3
import pytest

from .conftest import untouched

STOCK = {"ubuntu": "ami-1e749f67", "amazon-linux-arm": "ami-0e9271c829888680e",
         "amazon-linux-pv": "ami-8104a4f8"}   # moto's public images, of other accounts


def _owner(image_id: str) -> str:
    return boto3.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]["OwnerId"]


@pytest.mark.parametrize("stock", sorted(STOCK))
def test_a_public_image_of_another_account_is_refused_naming_image_and_owner(
        fleet, function, api_calls, stock):
    image = STOCK[stock]
    fleet.publish(image)

    report = function().invoke({})

    assert report["status"] == "failed"
    assert report["reason"].startswith(f"{image} is owned by {_owner(image)}")
    assert "not an allowed AMI owner (self; ALLOWED_AMI_OWNERS)" in report["reason"]
    untouched(fleet, api_calls)


@pytest.mark.parametrize("owners", [["aws-marketplace"], ["111122223333"],
                                    ["self", "210987654321"]])
def test_an_image_of_an_owner_not_listed_is_refused(fleet, function, api_calls, owners):
    fleet.publish(STOCK["ubuntu"])

    report = function(ALLOWED_AMI_OWNERS=json.dumps(owners)).invoke({})

    assert report["status"] == "failed"
    assert "not an allowed AMI owner" in report["reason"]
    untouched(fleet, api_calls)


def test_an_image_of_a_listed_account_is_used(fleet, function):
    fleet.publish(STOCK["ubuntu"])

    report = function(ALLOWED_AMI_OWNERS=json.dumps(["self", _owner(STOCK["ubuntu"])])
                      ).invoke({})

    assert report["status"] == "succeeded"
    assert report["asgs"][0]["action"] == "refresh_started"


def test_the_accounts_own_image_is_used_by_default(fleet, images, function):
    fleet.publish(images.new)

    report = function().invoke({})

    assert report["status"] == "succeeded"


def test_a_parameter_of_data_type_text_is_warned_about(fleet, images, function):
    fleet.publish(images.new)

    report = function().invoke({})

    assert any("has data type 'text'" in w and "aws:ec2:image" in w
               for w in report.get("warnings", []))


def test_a_parameter_of_data_type_image_is_not_warned_about(fleet, images, function):
    fleet.publish(images.new, image_type=True)

    report = function().invoke({})

    assert not any("data type" in w for w in report.get("warnings", []))


@pytest.mark.parametrize("value", ['["*"]', '["12345"]', '["amazon", "evil"]', '[1]'])
def test_allowed_owners_of_the_wrong_form_are_refused_by_the_settings(value):
    from handler.settings import SettingsError, parse_ami_owners

    with pytest.raises(SettingsError, match=r"^ALLOWED_AMI_OWNERS: "):
        parse_ami_owners(value, "ALLOWED_AMI_OWNERS")
