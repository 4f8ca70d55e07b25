"""The promoter takes any event: a bad one is ignored with a reason, never raised."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.driver import Deployment, HubClients, Promoter
from hub.promoter import Operator, Rollout, SpokeReported
from hub.settings import Target, load_hub_settings

HUB = load_hub_settings({
    "account": "111111111111", "region": "eu-west-1", "sourceParameterName": "/golden",
    "waves": [{"name": "canary", "targets": [{"account": "222222222222",
                                              "region": "eu-west-1"}]}]})
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# Parsing these touches no client: none is given.
PROMOTER = Promoter(HUB, HubClients(ssm={}, dynamodb=None, scheduler=None, cloudwatch={}),
                    Deployment("t", "arn:f", "arn:r"), now=lambda: NOW)


def report(account: str = "222222222222", **detail: object) -> dict:
    return {"source": "ami-upgrade.spoke", "detail-type": "ami-upgrade report",
            "account": account, "detail": {"region": "eu-west-1", "ami_id": "ami-1",
                                           "status": "succeeded", "dry_run": False,
                                           "refreshing": 0, "rolled_back": 0, "pending": 0,
                                           **detail}}


def test_a_spokes_report_is_read_with_the_account_eventbridge_set():
    assert PROMOTER.parse(report(), Rollout()) == SpokeReported(
        Target("222222222222", "eu-west-1"), "ami-1", "succeeded", NOW)


def test_a_report_whose_refreshes_still_run_is_read_as_refreshing_not_converged():
    parsed = PROMOTER.parse(report(refreshing=2), Rollout())
    assert isinstance(parsed, SpokeReported)
    assert (parsed.status, parsed.refreshing, parsed.outcome) == ("succeeded", 2, "refreshing")


@pytest.mark.parametrize(("counts", "outcome"), [
    ({}, "succeeded"), ({"rolled_back": 1}, "rolled_back"), ({"pending": 3}, "in_progress"),
    ({"refreshing": 1, "rolled_back": 1}, "refreshing")])
def test_a_succeeded_report_is_converged_only_with_its_estate_on_the_ami(counts, outcome):
    assert PROMOTER.parse(report(**counts), Rollout()).outcome == outcome


def test_a_dry_run_report_is_never_convergence():
    assert PROMOTER.parse(report(dry_run=True), Rollout()).status == "dry-run"


@pytest.mark.parametrize(("event", "reason"), [
    (["not", "an", "object"], "the event is not an object"),
    ({"source": "aws.ec2"}, "not an event the promoter handles"),
    (report(account="999999999999"), "a report from 999999999999/eu-west-1, a spoke of no wave"),
    (report(account=None), "a report without a sending account"),
    (report(region="Europe"), "a report without the spoke's region"),
    (report(status=None), "a report without ami_id and status"),
    (report(refreshing=None), "a report without its counts (refreshing, rolled_back, pending)"),
    (report(pending=-1), "a report without its counts"),
    (report(rolled_back=True), "a report without its counts"),
    ({"kind": "bake-elapsed", "wave": 7, "ami": "ami-1"}, "a bake check without its wave"),
    ({"kind": "operator", "command": "rm -rf"}, "unknown operator command 'rm -rf'"),
    ({"source": "aws.ssm", "detail": {"name": "/other"}}, "a change of another parameter"),
])
def test_a_bad_event_is_ignored_with_its_reason(event, reason):
    assert PROMOTER.parse(event, Rollout()).startswith(reason)


def test_an_operator_command_is_an_event():
    assert PROMOTER.parse({"kind": "operator", "command": "hold"}, Rollout()) == Operator(
        "hold", NOW)


def test_the_promoter_reads_the_report_event_the_spoke_sends():
    from handler.engine import HUB_REPORT_DETAIL_TYPE, HUB_REPORT_SOURCE
    from hub.driver import SPOKE_DETAIL_TYPE, SPOKE_SOURCE
    assert (HUB_REPORT_SOURCE, HUB_REPORT_DETAIL_TYPE) == (SPOKE_SOURCE, SPOKE_DETAIL_TYPE)
