"""Every event kind of the contract, from the shared fixtures, through the entrypoint."""

import pytest


@pytest.fixture
def fleet(estate, images):
    estate.group("web")
    estate.publish(images.new)
    return estate


def _untouched(fleet, api_calls) -> None:
    assert api_calls.mutating() == []
    assert sorted(fleet.versions(fleet.template_id("web"))) == [1]
    assert fleet.refreshes("web") == []


@pytest.mark.parametrize("name", ["cloudtrail-put-parameter", "parameter-store-change-create",
                                  "parameter-store-change-update"])
def test_a_change_of_the_parameter_rolls_the_groups(fleet, images, function, load_event, name):
    event = load_event(name)
    if "responseElements" in event["detail"]:   # the version just published, as AWS names it
        event["detail"]["responseElements"]["version"] = fleet.ssm.get_parameter(
            Name="/ami/linux/test")["Parameter"]["Version"]
    report = function().invoke(event)

    assert report["status"] == "succeeded"
    assert report["ami_id"] == images.new
    assert report["asgs"][0]["action"] == "refresh_started"


@pytest.mark.parametrize(("name", "reason"), [
    ("cloudtrail-put-parameter-failed", "PutParameter failed (ParameterAlreadyExists): "
                                        "nothing changed"),
    ("cloudtrail-put-parameter-other-name", "event is for parameter '/app/feature-flags', "
                                            "this deployment follows '/ami/linux/test'"),
    ("parameter-store-change-delete", "operation Delete does not change the AMI"),
])
def test_events_that_change_nothing_are_ignored(fleet, function, load_event, api_calls, name,
                                                reason):
    report = function().invoke(load_event(name))

    assert report["status"] == "ignored"
    assert report["reason"] == reason
    assert api_calls.calls == []
    _untouched(fleet, api_calls)


def test_a_label_operation_is_ignored(fleet, function, load_event, api_calls):
    event = load_event("parameter-store-change-update")
    event["detail"]["operation"] = "LabelParameterVersion"

    report = function().invoke(event)

    assert report["status"] == "ignored"
    _untouched(fleet, api_calls)


def test_a_rejected_value_fails_and_touches_nothing(fleet, function, load_event, api_calls):
    report = function().invoke(load_event("parameter-store-change-invalid-image"))

    assert report["status"] == "failed"
    assert report["reason"] == ("SSM rejected the new value of /ami/linux/test: Unable to "
                                "Describe Resource")
    assert api_calls.calls == []
    _untouched(fleet, api_calls)


@pytest.mark.parametrize("name", ["cloudtrail-put-parameter", "parameter-store-change-update"])
def test_events_are_matched_to_the_configured_name(estate, images, function, load_event, name):
    estate.group("prod", parameter="/ami/web/prod")
    version = estate.publish(images.new, name="/ami/web/prod")
    event = load_event(name)
    if "requestParameters" in event["detail"]:
        event["detail"]["requestParameters"]["name"] = "/ami/web/prod"
        # The version the event names is readable (an older read would be retried).
        event["detail"]["responseElements"]["version"] = version
    else:
        event["detail"]["name"] = "/ami/web/prod"
    ours = function(AMI_PARAMETER_NAME="/ami/web/prod")

    adjusted = ours.invoke(event)
    unadjusted = ours.invoke(load_event(name))

    assert adjusted["asgs"][0]["action"] == "refresh_started"
    assert unadjusted["status"] == "ignored"


def test_an_unknown_event_fails_and_touches_nothing(fleet, function, api_calls):
    report = function().invoke({"source": "aws.ec2", "detail-type": "EC2 Instance State-change "
                                "Notification", "detail": {}})

    assert report["status"] == "failed"
    assert report["reason"].startswith("unsupported event")
    _untouched(fleet, api_calls)


def test_a_direct_invocation_for_another_parameter_is_ignored(fleet, function, api_calls):
    report = function().invoke({"parameter_name": "/ami/windows/test"})

    assert report["status"] == "ignored"
    _untouched(fleet, api_calls)


def test_a_continuation_runs_like_a_direct_invocation(fleet, function):
    report = function().invoke({"ami-upgrade:continuation": {"attempt": 1},
                                "parameter_name": "/ami/linux/test", "dry_run": False})

    assert report["asgs"][0]["action"] == "refresh_started"
