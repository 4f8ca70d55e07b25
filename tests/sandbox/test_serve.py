"""The served sandbox prints what a user needs: no access line per request unless asked."""

from __future__ import annotations

import logging
import re

import boto3
import pytest

from sandbox import embedded_aws
from sandbox.fleet import build_estate
from sandbox.live import LiveStack, outcome_line
from sandbox.serve import Served
from sandbox.stack import load_stack

ACCESS_LINE = re.compile(r'"POST / HTTP/1\.1" 200')


def _access_lines(verbose: bool, caplog: pytest.LogCaptureFixture) -> list[str]:
    with embedded_aws() as aws, caplog.at_level(logging.INFO):
        served = Served(aws, port=0, verbose=verbose)
        try:
            boto3.client("ec2", endpoint_url=served.endpoint_url,
                         region_name="us-east-1").describe_instances()
        finally:
            served.stop()
    return [r.getMessage() for r in caplog.records if ACCESS_LINE.search(r.getMessage())]


def test_requests_are_not_logged_by_default(caplog):
    assert _access_lines(False, caplog) == []


def test_requests_are_logged_when_verbose(caplog):
    assert len(_access_lines(True, caplog)) == 1


def test_each_run_while_serving_reports_its_outcome():
    lines: list[str] = []
    with embedded_aws() as aws:
        stack = load_stack("dev")
        estate = build_estate(stack, size=1, seed=0)
        live = LiveStack(aws, stack, estate.environment,
                         on_invocation=lambda i: lines.append(outcome_line(i)))
        try:
            boto3.client("ssm", region_name=stack.region).put_parameter(
                Name=stack.parameter_name, Value=estate.new_image, Type="String",
                DataType="aws:ec2:image", Overwrite=True)
            live.pump()
        finally:
            live.close()
    assert lines == [f"  run (event): {stack.parameter_name} -> {estate.new_image}: "
                     "status succeeded, 4 acted on"]


def test_the_demo_guide_shows_the_lines_serving_prints():
    from pathlib import Path

    from sandbox.serve import usage

    guide = (Path(__file__).resolve().parents[2] / "docs" / "demo.md").read_text()
    with embedded_aws() as aws:
        stack = load_stack("dev")
        live = LiveStack(aws, stack, build_estate(stack, size=1, seed=0).environment)
        try:
            lines = [*usage("http://127.0.0.1:5000", stack.region),
                     *live.usage("http://127.0.0.1:5000")]
        finally:
            live.close()
    assert [line for line in lines if f"\n{line}\n" not in guide] == []
