"""Thousands of groups under AWS's latency and throttling: every invocation inside its
limit, every group started, no false success.

Each estate (literal-image templates, or templates resolving the parameter) runs on the
model of real AWS (``aws_model``) at one latency for every call with every n-th call
throttled on top of the documented buckets, through as many invocations as the function
asks for (continuations delivered at once). Per estate: the invocations and their
statuses, the longest one against its timeout, the emulated time until the last refresh
started against the floor the rate limits put under any engine, the calls against the
bound, and a check of every group's newest refresh read straight from the embedded AWS
(``real_aws.verified_groups``), not from the function's reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from . import real_aws
from .aws_model import AUTOSCALING_BUCKET, EC2_UNCATEGORIZED, Bucket, Latency, rate_floor
from .real_aws import TIMEOUT, Run

LATENCY = Latency(0.05, 0.05)        # 50 ms per call, reads and writes alike
THROTTLE_EVERY = 5                   # 20% of calls throttled on top of the buckets
HEADROOM = 0.80                      # no invocation past this share of its timeout
DEFAULT_ESTATES = ((1000, False), (1000, True))
FULL_ESTATES = ((5000, False), (10000, False))
RAISED_REFILL = 20.0                 # CreateLaunchTemplateVersion refill, raised on request
# The baseline: an engine whose reads and starts did not stop at the deadline, measured
# with the same harness: invocations, longest invocation, refreshes started, report.
BASELINE = {
    "1000 ASGs": ("1", "556 s (62%)", "1,000 / 1,000", "succeeded"),
    "1000 ASGs (resolve:ssm:)": ("1", "352 s (plain templates: 161 s, same harness)",
                                 "1,000 / 1,000", "succeeded"),
    "5000 ASGs": ("every one", "1,227 s, 1,317 s (over 900 s)", "0",
                  "succeeded (all \"skipped: too little time\")"),
}


def run(full: bool, autoscaling: Bucket = AUTOSCALING_BUCKET,
        show: Callable[[str], None] = print,
        done: Callable[[list[Run]], None] | None = None) -> list[Run]:
    """The default estates (``full``: and 5,000 and 10,000 groups); ``done`` is called
    with the runs so far after each one (to record them as they come)."""
    runs: list[Run] = []
    for groups, alias in (*DEFAULT_ESTATES, *(FULL_ESTATES if full else ())):
        started = time.perf_counter()
        r = real_aws.run(groups, 0, LATENCY, throttle_every=THROTTLE_EVERY,
                         autoscaling=autoscaling, alias=alias)
        show(f"scale {r.label}: {r.invocations} invocation(s) {r.statuses}, longest "
             f"{r.longest_invocation:.0f} s, last refresh started "
             f"{r.last_refresh_started or 0:.0f} s, {r.verified}/{groups} verified, "
             f"{r.total} calls (bound {r.bound}), here {time.perf_counter() - started:.0f} s")
        runs.append(r)
        if done is not None:
            done(runs)
    return runs


def converged(r: Run) -> bool:
    """Every group started and verified, no invocation over the headroom, and no report
    ``succeeded`` before the last one."""
    return (r.converged and r.verified == r.groups
            and r.longest_invocation <= HEADROOM * TIMEOUT
            and all(s != "succeeded" for s in r.statuses[:-1]) and r.statuses[-1] == "succeeded")


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:,.0f} s ({seconds / 60:.1f} min)"


def raised_floor(groups: int, autoscaling: Bucket) -> tuple[float, str]:
    """The bound's floor with CreateLaunchTemplateVersion's refill raised to
    ``RAISED_REFILL`` a second (a quota AWS raises on request)."""
    calls = real_aws.bound_calls(groups, 0)
    bucket = EC2_UNCATEGORIZED["CreateLaunchTemplateVersion"]
    EC2_UNCATEGORIZED["CreateLaunchTemplateVersion"] = replace(bucket, refill=RAISED_REFILL)
    try:
        return rate_floor(calls["ec2"], sum(calls["autoscaling"].values()), autoscaling)
    finally:
        EC2_UNCATEGORIZED["CreateLaunchTemplateVersion"] = bucket


def render(runs: list[Run], full: bool, autoscaling: Bucket = AUTOSCALING_BUCKET) -> str:
    lines = [
        "## Thousands of groups: deadlines, continuations, no false success",
        "",
        f"Each estate on the model of real AWS at {LATENCY.read * 1000:.0f} ms per call, "
        f"every {THROTTLE_EVERY}th call throttled on top of the documented buckets "
        f"({100 // THROTTLE_EVERY}%; botocore's retries run), Auto Scaling's bucket "
        f"{autoscaling.size:g} / {autoscaling.refill:g} (assumed), 15-minute invocations, "
        "continuations delivered at once. `statuses`: each invocation's report. "
        "`verified`: groups whose newest refresh, read straight from the embedded AWS after "
        "the run, heads to the new image. The floor: what the documented limits alone need "
        "for the bound's calls (two a group: no refresh read), whatever the engine.",
        "",
        "| estate | invocations | statuses | longest invocation | of its timeout "
        "| every refresh started at | floor | vs floor | calls / bound | throttled (retried) "
        "| verified | converged | wall time here |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
        "| ---: |",
    ]
    for r in runs:
        floor, bucket = r.bound_floor
        started = r.last_refresh_started
        versus = f"{started / floor:.2f}x" if started and floor else "-"
        lines.append(
            f"| {r.label} | {r.invocations} | {', '.join(r.statuses)} "
            f"| {r.longest_invocation:,.0f} s | {r.longest_invocation / TIMEOUT:.0%} "
            f"| {_minutes(started)} | {_minutes(floor)} ({bucket}) | {versus} "
            f"| {r.total:,} / {r.bound:,} = {r.total / r.bound:.2f} | {r.throttled:,} "
            f"| {r.verified:,} / {r.groups:,} | {'yes' if converged(r) else 'NO'} "
            f"| {r.seconds:.0f} s |")
    lines += ["", "Where the documented limits bind, raising the quota moves the floor "
              f"(CreateLaunchTemplateVersion's refill raised from 5 to {RAISED_REFILL:g} a "
              "second; Auto Scaling's bucket is then the limit):", "",
              "| groups | floor at the default limits | floor with the raised quota |",
              "| ---: | ---: | ---: |"]
    for groups in (1000, 5000, 10000):
        default, bucket = real_aws.bound_floor(groups, 0, autoscaling)
        raised, raised_bucket = raised_floor(groups, autoscaling)
        lines.append(f"| {groups:,} | {_minutes(default)} ({bucket}) "
                     f"| {_minutes(raised)} ({raised_bucket}) |")
    now = {r.label: r for r in runs}
    lines += ["", "A baseline whose reads and starts ignore the deadline, and this run:", "",
              "| estate | invocations | longest invocation | refreshes started | report |",
              "| --- | --- | --- | --- | --- |"]
    for label, (invocations, longest, started_text, report) in BASELINE.items():
        lines.append(f"| {label}, baseline | {invocations} | {longest} | {started_text} "
                     f"| {report} |")
        r = now.get(label)
        if r is not None:
            lines.append(
                f"| {label}, this run | {r.invocations} | {r.longest_invocation:,.0f} s "
                f"({r.longest_invocation / TIMEOUT:.0%}) | {r.verified:,} / {r.groups:,} "
                f"| {', '.join(r.statuses)} |")
        else:
            lines.append(f"| {label}, this run | not run (`--full`) | | | |")
    if not full:
        lines += ["", "5,000 and 10,000 groups run with `--full` only (long on a small "
                  "machine)."]
    return "\n".join([*lines, ""])
