"""The run's summary: failures first (misconfigurations first), and a huge run's summary is
bounded so that SNS takes it (issue 13, class 7; issue 10, item 3)."""

from __future__ import annotations

import json

from handler.aws import Clients
from handler.engine import Engine
from handler.outcomes import Code
from handler.report import AsgEntry, InstanceEntry, Report
from handler.run import Action, Deadline, Status, SystemClock
from handler.settings import Settings

PARAMETER = "/ami/linux/test"
SNS_MAX = 256 * 1024


def _huge_report() -> Report:
    """3,000 entries, as a run over a large estate reports them; a few failures at the end."""
    reason = "replaced by i-0123456789abcdef0 on ami-0123456789abcdef0 " + "x" * 40
    instances = tuple(
        InstanceEntry(f"i-{n:017x}", Action.REPLACED, Code.REPLACED, reason,
                      new_instance_id=f"i-{n + 1:017x}",
                      volumes=(f"vol-{n:017x}", f"vol-{n + 1:017x}"))
        for n in range(2_990))
    failed = tuple(InstanceEntry(f"i-f{n:016x}", Action.FAILED, Code.ROLLED_BACK,
                                 "RunInstances failed: InsufficientInstanceCapacity: none left")
                   for n in range(5))
    asgs = (*(AsgEntry(f"group-{n}", Action.REFRESH_STARTED, Code.REFRESH_STARTED, "refresh")
              for n in range(4)),
            AsgEntry("zz-legacy", Action.FAILED, Code.MISCONFIGURED_LAUNCH_TEMPLATE,
                     "the group uses launch configuration legacy-lc",
                     details={"fix": "migrate the group to a launch template"}))
    return Report(parameter=PARAMETER, ami_id="ami-0123456789abcdef0", dry_run=False,
                  status=Status.PARTIAL, asgs=asgs, instances=instances + failed)


def test_a_3000_entry_summary_is_bounded_and_published(aws, summaries, logged_events):
    arn = summaries.topic_arn
    settings = Settings.from_env({"AMI_PARAMETER_NAME": PARAMETER,
                                  "NOTIFICATION_TOPIC_ARN": arn})
    clock = SystemClock()
    engine = Engine(settings, Clients.create(), clock, Deadline(clock, clock.monotonic() + 900))
    report = _huge_report()
    assert len(json.dumps(report.to_dict()).encode()) > SNS_MAX

    engine._finish(report)

    bodies = summaries.bodies()
    assert len(bodies) == 1
    assert len(bodies[0].encode()) < SNS_MAX
    summary = json.loads(bodies[0])
    assert summary["status"] == "partial"
    assert summary["counts"] == {"asgs": {"refresh_started": 4, "failed": 1},
                                 "instances": {"replaced": 2_990, "failed": 5}}
    assert summary["asgs"][0]["name"] == "zz-legacy"           # the misconfiguration first
    assert summary["asgs"][0]["fix"] == "migrate the group to a launch template"
    assert [e["action"] for e in summary["instances"][:5]] == ["failed"] * 5
    assert summary["more"]["instances"] == 2_995 - len(summary["instances"]) > 0
    assert "report_part" in summary["truncated"]
    # The log holds every entry: the parts, then the bounded report line.
    lines = logged_events()
    parts = [line for line in lines if line.get("event") == "report_part"]
    assert all(len(json.dumps(p).encode()) < SNS_MAX for p in parts)
    assert sum(len(p["instances"]) for p in parts) == 2_995
    assert [line["event"] for line in lines][-1] == "report"


def test_a_summary_that_fits_is_the_report_with_failures_first(estate, images, function,
                                                               summaries):
    arn = summaries.topic_arn
    estate.group("aaa-web")
    estate.group("zz-legacy", launch_configuration=True)
    estate.publish(images.new)

    report = function(NOTIFICATION_TOPIC_ARN=arn).invoke({})

    assert report["status"] == "partial"
    assert [e["name"] for e in report["asgs"]] == ["aaa-web", "zz-legacy"]   # report: by name
    message = json.loads(summaries.bodies()[0])
    assert [e["name"] for e in message["asgs"]] == ["zz-legacy", "aaa-web"]
    assert message["asgs"][0]["action"] == "failed" and message["asgs"][0]["fix"]
    assert {**message, "asgs": report["asgs"]} == report
