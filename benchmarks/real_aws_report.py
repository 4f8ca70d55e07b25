"""The RESULTS.md sections on calls and on the model of real AWS, with the scale targets.

``run`` converges each estate (``benchmarks.real_aws``) and ``render`` writes the
tables: calls against the lower bound, the projection on real AWS next to the floor
the documented rate limits put under any engine, the standalone makespan, the
throttled run, each scale target as met / NOT met with its figure, and this run's
calls beside a baseline's (an engine making one call per resource, no batching).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import real_aws
from .aws_model import (
    AUTOSCALING_BUCKET,
    EC2_REQUEST_BUCKETS,
    EC2_RESOURCE_BUCKETS,
    EC2_UNCATEGORIZED,
    Bucket,
    Latency,
)
from .real_aws import TIMEOUT, Run

DOC = ("Request throttling for the Amazon EC2 API, "
       "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html")
# The estates the scale targets are projected on (groups, standalone instances).
TARGET_ESTATES = ((100, 0), (1000, 0), (5000, 0), (0, 100), (0, 1000))
TARGET_START_SECONDS = 15 * 60     # 5,000 groups: every refresh started within 15 minutes
# The baseline: an engine making one call per resource (no batching), measured on the
# embedded AWS with the same estates: calls, retried, bound, invocations.
BASELINE = {"10 ASGs": (61, None, 36, 1), "1000 ASGs": (5062, None, 3030, 1),
          "100 standalone": (4986, None, 503, 5),
          "10 ASGs + 10 standalone": (446, 117, 86, 1)}


@dataclass
class Results:
    counts: list[Run] = field(default_factory=list)
    projections: list[Run] = field(default_factory=list)
    makespans: list[tuple[int, int, float, float]] = field(default_factory=list)
    throttled: list[Run] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    parts: list[tuple[str, float]] = field(default_factory=list)   # part, wall seconds


def run(latency: Latency, boot_seconds: float, parallelism: int, full: bool,
        autoscaling: Bucket = AUTOSCALING_BUCKET,
        show: Callable[[str], None] = print) -> Results:
    """Every estate of the sections; ``full`` adds the long ones."""
    out = Results()
    out.skipped = [] if full else ["calls for 500 standalone", "projection of 5,000 groups",
                                   "projection of 1,000 standalone"]

    def timed(part: str, kind: str, make: Callable[[], Run], into: list[Run]) -> Run:
        started = time.perf_counter()
        r = make()
        out.parts.append((part, time.perf_counter() - started))
        into.append(r)
        show(f"{kind} {r.label}: {r.total} calls (bound {r.bound}), {r.throttled} throttled, "
             f"{r.invocations} invocation(s), projected {r.emulated_seconds:.0f} s, "
             f"here {r.seconds:.1f} s (build {r.build_seconds:.1f} s)")
        return r

    for g in (10, 100, 1000):
        timed(f"calls, {g} ASGs", "calls", lambda g=g: real_aws.run(g, 0, latency=None),
              out.counts)
    for n in (10, 100, 500) if full else (10, 100):
        timed(f"calls, {n} standalone", "calls",
              lambda n=n: real_aws.run(0, n, latency=None), out.counts)
    for g in (100, 1000, 5000) if full else (100, 1000):
        timed(f"projection, {g} ASGs", "projected",
              lambda g=g: real_aws.run(g, 0, latency, autoscaling=autoscaling),
              out.projections)
    one: list[Run] = []
    timed("projection, 1 standalone (one replacement)", "projected",
          lambda: real_aws.run(0, 1, latency, boot_seconds=boot_seconds,
                               parallelism=parallelism, autoscaling=autoscaling), one)
    for n in (100, 1000) if full else (100,):
        r = timed(f"projection, {n} standalone", "projected",
                  lambda n=n: real_aws.run(0, n, latency, boot_seconds=boot_seconds,
                                           parallelism=parallelism, autoscaling=autoscaling),
                  out.projections)
        out.makespans.append((n, parallelism, r.emulated_seconds, one[0].emulated_seconds))
    timed("throttled, 10 ASGs + 10 standalone", "throttled",
          lambda: real_aws.run(10, 10, latency, boot_seconds=boot_seconds, throttle_every=5,
                               autoscaling=autoscaling), out.throttled)
    return out


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _floor(floor: tuple[float, str]) -> str:
    seconds, bucket = floor
    return f"{_minutes(seconds)} ({bucket})" if seconds else "0"


def _buckets(buckets: dict[str, Bucket]) -> str:
    return ", ".join(f"{k} {b.size:g} / {b.refill:g}" for k, b in buckets.items())


def targets(res: Results, autoscaling: Bucket = AUTOSCALING_BUCKET
            ) -> list[tuple[str, str, str]]:
    """Each scale target with its figure and ``met`` / ``NOT met`` / ``not run``."""
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    timed_runs = [*res.projections, *res.throttled]
    if timed_runs:
        worst = max(timed_runs, key=lambda r: r.longest_invocation)
        share = worst.longest_invocation / TIMEOUT
        rows.append(("no invocation uses more than 80% of its timeout",
                     f"longest {_minutes(worst.longest_invocation)} = {share:.0%} "
                     f"({worst.label})", verdict(share <= 0.80)))
    floor, bucket = real_aws.bound_floor(5000, 0, autoscaling)
    floor_text = (f"the documented limits alone need {_minutes(floor)} ({bucket}) for "
                  "5,000 groups with one new launch-template version each")
    big = [r for r in res.projections if r.groups == 5000 and not r.instances]
    if big:
        r = big[0]
        started = r.last_refresh_started
        ok = started is not None and started <= TARGET_START_SECONDS and r.converged
        rows.append(("5,000 groups: every refresh started within 15 min",
                     f"last started at {_minutes(started)}; {floor_text}", verdict(ok)))
    else:
        rows.append(("5,000 groups: every refresh started within 15 min",
                     f"not projected (`--full`); {floor_text}",
                     "not run" if floor <= TARGET_START_SECONDS
                     else "not run (NOT attainable at default limits)"))
    for n, p, makespan, one in res.makespans:
        ideal = -(-n // p) * one
        rows.append((f"standalone makespan within 10% of ideal ({n} instances, P={p})",
                     f"{_minutes(makespan)} vs {_minutes(ideal)} = {makespan / ideal:.2f}",
                     verdict(makespan <= 1.10 * ideal)))
    for r in res.throttled:
        rows.append((f"throttled at the limit converges, 0 failed ({r.label})",
                     f"{r.throttled:,} throttled, {r.failed} failed, "
                     f"converged {'yes' if r.converged else 'no'}",
                     verdict(r.converged and r.failed == 0)))
    for kind, limit, runs in (
            ("ASG calls within 1.25x the bound", 1.25,
             [r for r in res.counts if r.groups and not r.instances]),
            ("standalone calls within 3x the bound", 3.0,
             [r for r in res.counts if r.instances and not r.groups])):
        for r in runs:
            ratio = r.total / r.bound
            rows.append((f"{kind} ({r.label})", f"{r.total:,} / {r.bound:,} = {ratio:.2f}",
                         verdict(ratio <= limit)))
    return rows


def render(res: Results, latency: Latency, boot_seconds: float,
           autoscaling: Bucket = AUTOSCALING_BUCKET) -> str:
    lines = [
        "## Calls by operation, against the lower bound",
        "",
        "Every successful call the function makes to converge the estate (all in scope,",
        "literal-image launch templates with one instance per group, one data volume per",
        "standalone instance), counted at the embedded AWS; no latency, no throttling.",
        "The bound (`benchmarks.real_aws.lower_bound`) is the least any engine needs:",
        "describes at their largest page, two calls per group (a version and its",
        "refresh: no refresh read),",
        "and per standalone instance one stop, launch and terminate plus a detach and an",
        "attach per volume.",
        "",
        "| estate | calls | lower bound | ratio | invocations | wall time here |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in res.counts:
        lines.append(f"| {r.label} | {r.total:,} | {r.bound:,} | {r.total / r.bound:.1f} "
                     f"| {r.invocations} | {r.seconds:.1f} s |")
    operations = sorted({op for r in res.counts for op in r.calls})
    lines += ["", "By operation:", "",
              "| operation | " + " | ".join(r.label for r in res.counts) + " |",
              "| --- |" + " ---: |" * len(res.counts)]
    for op in operations:
        lines.append(f"| {op} | " + " | ".join(f"{r.calls.get(op, 0):,}" for r in res.counts)
                     + " |")
    uncategorized = {k: b for k, b in EC2_UNCATEGORIZED.items()
                     if any(k in r.calls for r in [*res.counts, *res.projections])}
    lines += [
        "",
        "## Projected on real AWS",
        "",
        "The same function on the model of real AWS (`benchmarks/aws_model.py`).",
        "",
        f"- Latency: {latency.read * 1000:.0f} ms a read, {latency.write * 1000:.0f} ms a "
        "mutating call, of emulated time: an assumption, AWS documents no per-call latency "
        "(`--latency-ms`).",
        f"- EC2 rate limits as documented ({DOC}): one request bucket per API, size / refill "
        f"per second by category {_buckets(EC2_REQUEST_BUCKETS)}; uncategorized actions with "
        f"their own figures {_buckets(uncategorized)}; resource buckets (tokens per "
        f"instance) {_buckets(EC2_RESOURCE_BUCKETS)}. The unfiltered bucket serves only the "
        "seven reads the doc lists (DescribeInstances, DescribeVolumes, "
        "DescribeInstanceStatus...) called with neither a filter nor pagination (IDs alone "
        "are neither: the pessimistic reading).",
        "- Auto Scaling throttles every call from one shared bucket (Amazon EC2 Auto Scaling "
        "API Reference, \"API request rate\") and publishes no figures: assumed "
        f"{autoscaling.size:g} / {autoscaling.refill:g} (`--autoscaling-bucket`).",
        "- A call over a limit gets `RequestLimitExceeded` / `Throttling` and botocore's "
        "retries (standard mode, as the function configures them) run, waiting on the "
        "emulated clock.",
        f"- New instances pass their status checks after {boot_seconds:g} s (an assumption; "
        "moto's are instant). Invocations time out at 15 minutes; a continuation is "
        "delivered at once.",
        "",
        "The floor is what the rate limits alone need, whatever the engine, its parallelism",
        "or the latency: a bucket serves its size at once, then its refill rate, so n calls",
        "on one bucket need at least (n - size) / refill seconds; shown for the bound's",
        "calls (the estate's floor) and for the calls the function made.",
        "",
        "| estate | calls | throttled (retried) | projected wall time | invocations "
        "| longest invocation | of its timeout | last refresh started | failed | converged "
        "| floor: bound's calls | floor: its calls | wall time here |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: "
        "| ---: |",
    ]
    for r in res.projections:
        lines.append(
            f"| {r.label} | {r.total:,} | {r.throttled:,} | {_minutes(r.emulated_seconds)} "
            f"| {r.invocations} | {_minutes(r.longest_invocation)} "
            f"| {r.longest_invocation / TIMEOUT:.0%} | {_minutes(r.last_refresh_started)} "
            f"| {r.failed} | {'yes' if r.converged else 'NO'} | {_floor(r.bound_floor)} "
            f"| {_floor(r.floor)} | {r.seconds:.1f} s |")
    lines += ["", "The floor of every estate the targets name (the bound's calls, computed):", "",
              "| estate | bound calls | floor | binding bucket |", "| --- | ---: | ---: | --- |"]
    for g, n in TARGET_ESTATES:
        seconds, bucket = real_aws.bound_floor(g, n, autoscaling)
        label = Run(g, n, None, False).label
        lines.append(f"| {label} | {real_aws.lower_bound(g, n):,} | {_minutes(seconds)} "
                     f"| {bucket} |")
    if res.makespans:
        lines += ["", "Standalone makespan against the ideal, ceil(N/P) x one replacement "
                  "(the time of a one-instance estate on the same model):", "",
                  "| instances | parallelism P | makespan | one replacement | ideal | ratio |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n, p, makespan, one in res.makespans:
            ideal = -(-n // p) * one
            lines.append(f"| {n} | {p} | {_minutes(makespan)} | {one:.0f} s "
                         f"| {_minutes(ideal)} | {makespan / ideal:.2f} |")
    if res.throttled:
        lines += ["", "Throttled: every 5th EC2 / Auto Scaling call answered with the throttling",
                  "error, on top of the model (20% of calls):", "",
                  "| estate | calls | throttled (retried) | lower bound | ratio | failed "
                  "| converged | projected wall time |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
        for r in res.throttled:
            lines.append(f"| {r.label} | {r.total:,} | {r.throttled:,} | {r.bound:,} "
                         f"| {r.total / r.bound:.1f} | {r.failed} "
                         f"| {'yes' if r.converged else 'NO'} | {_minutes(r.emulated_seconds)} |")
    lines += ["", "## Scale targets", "", "| target | figure | status |",
              "| --- | --- | --- |"]
    lines += [f"| {t} | {figure} | {status} |" for t, figure, status in targets(res, autoscaling)]
    lines += _before_after(res)
    if res.skipped:
        lines += ["", "Not run by default (too slow for `make bench` on this machine; "
                  "`--full` runs them): " + ", ".join(res.skipped) + "."]
    if res.parts:
        lines += ["", "Wall time of each part here: "
                  + "; ".join(f"{part} {seconds:.0f} s" for part, seconds in res.parts) + "."]
    return "\n".join([*lines, ""])


def _before_after(res: Results) -> list[str]:
    """The baseline's figures (one call per resource) beside this run's."""
    now = {r.label: r for r in res.counts}
    now.update({r.label: r for r in res.throttled})
    lines = ["", "## Calls beside a baseline without batching", "",
             "Baseline: an engine making one call per resource, measured on the embedded AWS",
             "(its throttled row with 20% of calls throttled). This run: the throttled row",
             "on the model of real AWS, every 5th call throttled on top.", "",
             "| estate | baseline calls | baseline ratio | baseline invocations | calls "
             "| ratio | invocations |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, (calls, retried, bound, invocations) in BASELINE.items():
        before = f"{calls:,}" + (f" (+{retried} retried)" if retried else "")
        r = now.get(label)
        if r is None:
            after: Sequence[str] = ("not run", "-", "-")
        else:
            after = (f"{r.total:,}" + (f" (+{r.throttled:,} retried)" if r.throttled else ""),
                     f"{r.total / r.bound:.1f}", str(r.invocations))
        lines.append(f"| {label} | {before} | {calls / bound:.1f} | {invocations} | "
                     + " | ".join(after) + " |")
    return lines
