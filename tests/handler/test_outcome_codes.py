"""A run's ``code`` beside its ``reason``: what a consumer reads instead of the text."""

from __future__ import annotations

import boto3
from standalone_estate import PARAMETER, build_estate, function, set_parameter

from handler.outcomes import Code


def test_a_rejected_event_reports_event_rejected(aws):
    report = function(aws).invoke({"bogus": 1})

    assert (report["status"], report["code"]) == ("failed", Code.EVENT_REJECTED)
    assert report["reason"]


def test_another_parameters_event_reports_event_ignored(aws):
    report = function(aws).invoke({"parameter_name": "/ami/other"})

    assert (report["status"], report["code"]) == ("ignored", Code.EVENT_IGNORED)


def test_a_parameter_naming_no_ami_reports_ami_rejected(aws):
    build_estate()
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value="not-an-ami", Type="String",
                                      Overwrite=True)

    report = function(aws).invoke({})

    assert (report["status"], report["code"]) == ("failed", Code.AMI_REJECTED)


def test_a_run_that_succeeds_has_no_code(aws):
    estate = build_estate()
    set_parameter(estate.new_ami)

    report = function(aws).invoke({})

    assert report["status"] == "succeeded"
    assert "code" not in report and "reason" not in report
