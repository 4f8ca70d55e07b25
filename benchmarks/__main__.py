"""``python -m benchmarks``: time the demo's default run and larger fleets; record RESULTS.md.

Each case runs the whole workflow in process (``sandbox.demo.run_demo``: estate
build, event routing, every invocation, emulated refreshes, verification) a few
times and keeps the median. Absolute times depend on the machine; what the
results are for is the ratios: how the run grows with the estate, per resource.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sandbox import embedded_aws
from sandbox.demo import DemoOptions, run_demo

from .aws_model import Bucket

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CASES = (("default (dev, fleet size 2)", 2), ("fleet size 10", 10), ("fleet size 25", 25))


@dataclass(frozen=True)
class Measurement:
    case: str
    fleet_size: int
    instances: int          # every instance of the estate (group members and standalone)
    in_scope: int           # groups and standalone instances the run must move
    invocations: int
    mutating_calls: int     # successful mutating AWS calls during the run
    emulated_seconds: float
    seconds: float          # median wall-clock time of run_demo
    exit_code: int


def measure(case: str, fleet_size: int, repeat: int, stack: str) -> Measurement:
    times, last = [], None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp, embedded_aws() as aws:
            options = DemoOptions(stack=stack, fleet_size=fleet_size,
                                  json_path=Path(tmp) / "report.json")
            started = time.perf_counter()
            result = run_demo(options, aws, Console(file=io.StringIO(), width=150))
            times.append(time.perf_counter() - started)
            calls = len(aws.faults.mutating_calls)
            last = (result, calls)
    assert last is not None
    result, calls = last
    estate = result.estate
    return Measurement(
        case=case, fleet_size=fleet_size,
        instances=sum(g.capacity for g in estate.groups) + len(estate.instances),
        in_scope=len(estate.groups_in("in scope")) + len(estate.instances_in("in scope")),
        invocations=len(result.invocations), mutating_calls=calls,
        emulated_seconds=result.emulated_seconds, seconds=statistics.median(times),
        exit_code=result.exit_code)


@dataclass(frozen=True)
class ColdStart:
    """What the Lambda package adds to a cold start: its import time and its zip size."""

    handler_import_ms: float    # median, fresh interpreter: ``import handler.main``
    boto3_import_ms: float      # median, fresh interpreter: ``import boto3`` (the runtime's own)
    package_bytes: int          # the files the function's zip holds


def _import_ms(module: str, repeat: int) -> float:
    """Median cumulative import time of ``module`` in a fresh interpreter (-X importtime)."""
    import subprocess

    samples = []
    for _ in range(repeat):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                             capture_output=True, text=True, check=True,
                             cwd=RESULTS.parent.parent).stderr
        line = next(x for x in reversed(err.splitlines()) if x.rstrip().endswith(f" {module}"))
        samples.append(int(line.split("|")[1]) / 1000)
    return statistics.median(samples)


def measure_cold_start(repeat: int = 5) -> ColdStart:
    from components.function import HANDLER_DIR, handler_files

    return ColdStart(handler_import_ms=_import_ms("handler.main", repeat),
                     boto3_import_ms=_import_ms("boto3", repeat),
                     package_bytes=sum(p.stat().st_size
                                       for p in handler_files(HANDLER_DIR).values()))


def render(measurements: list[Measurement], repeat: int, stack: str,
           cold: ColdStart | None = None) -> str:
    base = measurements[0]
    lines = [
        "# Benchmark results",
        "",
        "`python -m benchmarks` (or `make bench`) runs the whole demo workflow in process",
        f"(`sandbox.demo.run_demo`, stack `{stack}`) for each case, {repeat} times, and keeps the",
        "median wall-clock time. Absolute times depend on the machine; compare the ratios.",
        "",
        f"- recorded: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}, {platform.system()}",
        "",
        "| case | instances | in scope | invocations | mutating calls | emulated time "
        "| wall time (median) | time ratio | instance ratio | ms per instance | exit |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measurements:
        lines.append(
            f"| {m.case} | {m.instances} | {m.in_scope} | {m.invocations} | {m.mutating_calls} "
            f"| {m.emulated_seconds / 60:.1f} min | {m.seconds:.2f} s "
            f"| {m.seconds / base.seconds:.2f} | {m.instances / base.instances:.2f} "
            f"| {1000 * m.seconds / m.instances:.0f} | {m.exit_code} |")
    lines += [
        "",
        "time ratio / instance ratio below 1 means the fixed cost (moto start-up, images,",
        "trigger) dominates; close to 1 means the run grows linearly with the estate.",
        "",
    ]
    if cold is not None:
        lines += [
            "## Cold start of the Lambda package",
            "",
            "Median of 5 fresh interpreters (`python -X importtime`), cumulative import time.",
            "",
            "| what | import time | ratio to `import boto3` |",
            "| --- | ---: | ---: |",
            f"| `import handler.main` | {cold.handler_import_ms:.0f} ms "
            f"| {cold.handler_import_ms / cold.boto3_import_ms:.2f} |",
            f"| `import boto3` (in the runtime) | {cold.boto3_import_ms:.0f} ms | 1.00 |",
            "",
            f"The zip holds `handler/` only: {cold.package_bytes / 1024:.0f} KiB of source. "
            "`handler.main` imports only botocore's exceptions at module level; boto3 is "
            "imported when the clients are built.",
            "",
        ]
    return "\n".join(lines)


def run_real_aws(args) -> str:
    """The sections on calls and on the model of real AWS (``benchmarks/real_aws_report.py``)."""
    from . import real_aws_report
    from .aws_model import Bucket, Latency

    read_ms, write_ms = (float(x) for x in args.latency_ms.split(","))
    latency = Latency(read_ms / 1000, write_ms / 1000)
    size, refill = (float(x) for x in args.autoscaling_bucket.split(","))
    autoscaling = Bucket(size, refill)
    results = real_aws_report.run(latency, args.boot_seconds, args.parallelism, args.full,
                                  autoscaling, show=lambda line: print(line, flush=True))
    return real_aws_report.render(results, latency, args.boot_seconds, autoscaling)


def _bucket(args) -> Bucket:
    size, refill = (float(x) for x in args.autoscaling_bucket.split(","))
    return Bucket(size, refill)


def run_scale(args) -> str:
    """The section on thousands of groups (``benchmarks/scale.py``)."""
    from . import scale

    runs = scale.run(args.full, _bucket(args), show=lambda line: print(line, flush=True))
    return scale.render(runs, args.full, _bucket(args))


def recorded_scale_section() -> str:
    """RESULTS.md's section on thousands of groups as recorded (``--keep-scale``), or a
    line saying it is not recorded."""
    from . import scale

    heading = "\n" + scale.render([], False).splitlines()[0] + "\n"
    text = RESULTS.read_text() if RESULTS.exists() else ""
    if heading not in text:
        return heading.lstrip("\n") + "\nNot recorded: `python -m benchmarks --only scale`.\n"
    return heading.lstrip("\n") + text.split(heading, 1)[1]


def run_scale_only(args, argv: list[str] | None) -> int:
    """``--only scale``: that section alone, put in place of its own in RESULTS.md."""
    from . import scale

    started = time.perf_counter()
    command = "python -m benchmarks" + (" " + " ".join(argv if argv is not None
                                                        else sys.argv[1:])).rstrip()

    def record(runs: list) -> None:
        """The section so far in place of its own in RESULTS.md (after each estate)."""
        section = (scale.render(runs, args.full, _bucket(args))
                   + f"\nRecorded by `{command}` in {time.perf_counter() - started:.0f} s "
                   f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC).\n")
        print(section, flush=True)
        if not args.no_record:
            text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
            head = text.split("\n" + section.splitlines()[0] + "\n")[0].rstrip("\n")
            RESULTS.write_text(head + "\n\n" + section)
            print(f"recorded in {RESULTS}", flush=True)

    runs = scale.run(args.full, _bucket(args), show=lambda line: print(line, flush=True),
                     done=record)
    return 0 if all(scale.converged(r) for r in runs) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument("--stack", default="dev", help="stack to run (default dev)")
    parser.add_argument("--no-record", action="store_true",
                        help="print the results without writing benchmarks/RESULTS.md")
    parser.add_argument("--latency-ms", default="50,150",
                        help="per-call latency READ,WRITE in ms on the model of real AWS")
    parser.add_argument("--autoscaling-bucket", default="100,20",
                        help="Auto Scaling's shared bucket SIZE,REFILL per second (AWS "
                             "publishes none; default 100,20, an assumption)")
    parser.add_argument("--boot-seconds", type=float, default=90.0,
                        help="seconds a new instance's status checks take (default 90)")
    parser.add_argument("--parallelism", type=int, default=10,
                        help="standalone replacements in flight (default 10)")
    parser.add_argument("--full", action="store_true",
                        help="also 500 standalone (calls), 5,000 groups and 1,000 standalone "
                             "(projections), 5,000 and 10,000 groups throttled (scale): long "
                             "on a small machine")
    parser.add_argument("--keep-scale", action="store_true",
                        help="run the other parts and keep RESULTS.md's section on thousands "
                             "of groups as recorded (with --full it takes ~40 min more)")
    parser.add_argument("--only", choices=("demo", "real-aws", "scale"),
                        help="run one part only (RESULTS.md then holds that part; 'scale' "
                             "replaces only its own section of RESULTS.md)")
    args = parser.parse_args(argv)
    if args.only == "scale":
        return run_scale_only(args, argv)
    started = time.perf_counter()
    measurements = []
    for case, size in CASES if args.only != "real-aws" else ():
        measurement = measure(case, size, args.repeat, args.stack)
        print(f"{case}: {measurement.seconds:.2f} s, {measurement.instances} instances, "
              f"exit {measurement.exit_code}", flush=True)
        measurements.append(measurement)
    cold = measure_cold_start()
    print(f"cold start: import handler.main {cold.handler_import_ms:.0f} ms, "
          f"import boto3 {cold.boto3_import_ms:.0f} ms", flush=True)
    text = (render(measurements, args.repeat, args.stack, cold) if measurements else
            f"# Benchmark results\n\n- recorded: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n"
            f"- machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python "
            f"{platform.python_version()}, {platform.system()}\n\n")
    kept = recorded_scale_section() if args.keep_scale and args.only != "demo" else ""
    if args.only != "demo":
        text += run_real_aws(args)
        text += "" if kept else "\n" + run_scale(args)
    command = "python -m benchmarks" + (" " + " ".join(argv if argv is not None
                                                        else sys.argv[1:])).rstrip()
    text += (f"\nRecorded by `{command}` in {time.perf_counter() - started:.0f} s "
             f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC).\n")
    if kept:   # recorded by its own run, which its last line names
        text += "\n" + kept
    print(text)
    if not args.no_record:
        RESULTS.write_text(text)
        print(f"recorded in {RESULTS}")
    return 0 if all(m.exit_code == 0 for m in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
