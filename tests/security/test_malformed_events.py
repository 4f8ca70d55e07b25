"""Attack: events of the wrong shape. Every field is checked by type: a malformed event
ends in a ``failed`` report naming the field, with no AWS change and no traceback (an
exception out of the handler would be retried by Lambda, twice, for nothing)."""

from __future__ import annotations

import copy

import pytest


@pytest.fixture(autouse=True)
def published(fleet, images):
    fleet.publish(images.new)


def _cloudtrail(load_event, **detail) -> dict:
    event = copy.deepcopy(load_event("cloudtrail-put-parameter"))
    event["detail"].update(detail)
    return event


def _store_change(load_event, **detail) -> dict:
    event = copy.deepcopy(load_event("parameter-store-change-update"))
    event["detail"].update(detail)
    return event


@pytest.mark.parametrize("source", [["aws.ssm"], {"aws": "ssm"}, 7, None])
def test_a_source_that_is_not_a_string_fails_naming_it(fleet, function, load_event, api_calls,
                                                       source):
    event = load_event("parameter-store-change-update")
    event["source"] = source

    report = function().invoke(event)

    assert report["status"] == "failed"
    assert report["reason"].startswith("unsupported event")
    assert "source" in report["reason"]
    assert api_calls.mutating() == []


@pytest.mark.parametrize("detail_type", [["Parameter Store Change"], {"a": 1}, 3])
def test_a_detail_type_that_is_not_a_string_fails_naming_it(fleet, function, load_event,
                                                            api_calls, detail_type):
    event = load_event("parameter-store-change-update")
    event["detail-type"] = detail_type

    report = function().invoke(event)

    assert report["status"] == "failed"
    assert "detail-type" in report["reason"]
    assert api_calls.mutating() == []


@pytest.mark.parametrize("value", ["name=/ami/linux/test", ["/ami/linux/test"], 5, True])
def test_request_parameters_that_are_not_an_object_fail_naming_them(fleet, function,
                                                                    load_event, api_calls,
                                                                    value):
    report = function().invoke(_cloudtrail(load_event, requestParameters=value))

    assert report["status"] == "failed"
    assert "requestParameters" in report["reason"]
    assert api_calls.mutating() == []


@pytest.mark.parametrize("value", ["version=2", [2], 2])
def test_response_elements_that_are_not_an_object_fail_naming_them(fleet, function,
                                                                   load_event, api_calls,
                                                                   value):
    report = function().invoke(_cloudtrail(load_event, responseElements=value))

    assert report["status"] == "failed"
    assert "responseElements" in report["reason"]
    assert api_calls.mutating() == []


@pytest.mark.parametrize(("field", "value"), [("eventSource", ["ssm.amazonaws.com"]),
                                              ("eventName", {"PutParameter": 1}),
                                              ("errorCode", ["AccessDenied"])])
def test_cloudtrail_fields_of_the_wrong_type_fail_naming_them(fleet, function, load_event,
                                                              api_calls, field, value):
    report = function().invoke(_cloudtrail(load_event, **{field: value}))

    assert report["status"] == "failed"
    assert field in report["reason"]
    assert api_calls.mutating() == []


@pytest.mark.parametrize(("field", "value"), [("name", ["/ami/linux/test"]),
                                              ("operation", ["Update"]),
                                              ("operation", {"Update": True}),
                                              ("exception", {"code": "x"})])
def test_store_change_fields_of_the_wrong_type_fail_naming_them(fleet, function, load_event,
                                                                api_calls, field, value):
    report = function().invoke(_store_change(load_event, **{field: value}))

    assert report["status"] == "failed"
    assert field in report["reason"]
    assert api_calls.mutating() == []


@pytest.mark.parametrize("body", [[1], "1", {"attempt": "1"}, {"attempt": 1.5}])
def test_a_continuation_of_the_wrong_shape_fails(fleet, function, api_calls, body):
    report = function().invoke({"ami-upgrade:continuation": body})

    assert report["status"] == "failed"
    assert report["reason"].startswith("ami-upgrade:continuation")
    assert api_calls.mutating() == []


@pytest.mark.parametrize("event", [[], "run", 1, None])
def test_an_event_that_is_not_an_object_fails(fleet, function, api_calls, event):
    report = function().invoke(event)

    assert report["status"] == "failed"
    assert api_calls.mutating() == []


def test_an_error_escaping_the_handler_is_logged_naming_it(fleet, function, logged_events,
                                                           monkeypatch):
    from handler import engine

    def broken(*_args, **_kwargs):
        raise LookupError("no such thing")

    monkeypatch.setattr(engine, "validate_ami", broken)

    with pytest.raises(LookupError):
        function().invoke({})

    (line,) = [e for e in logged_events() if e["event"] == "invocation_failed"]
    assert (line["error_type"], line["error"]) == ("LookupError", "no such thing")
