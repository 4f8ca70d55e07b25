"""The whole workflow end to end on the embedded AWS (``python -m sandbox``).

1. Build the estate from the stack's configuration (``fleet``), all on the old AMI.
2. Deploy the trigger the stack deploys (``routing``): the same EventBridge pattern,
   and its follow-up rule (``follow_up``, DISABLED until the function enables it).
3. ``PutParameter`` the new AMI, publish the event AWS would emit, and deliver
   what the rule routes to ``handler.main.lambda_handler`` as Lambda would
   (retries on failure, continuations). With ``reconcile``, the event is lost
   (EventBridge delivers on a best-effort basis) and the stack's scheduled rule
   delivers its reconcile event at the next scheduled time instead; once the
   fleet has converged, the next reconcile must make no mutating call.
4. Drive emulated time until every instance refresh has settled, no invocation
   is pending and nothing carries the in-flight tag, firing the follow-up rule
   every 5 minutes while it is enabled, with live progress (``progress``).
5. Compare the estate before and after (``convergence``), print the tables and
   the verdict, and write the JSON report.

Exit codes: 0 when the run did what it must (converged; in a dry run nothing
changed and the plan lists the scope; under a fault the rollback or the
recovery is verified), 1 when it did not (the problems are listed), 2 for bad
options or configuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from components.stack_settings import StackSettings
from handler.follow_up import PERIOD_SECONDS
from handler.tags import IN_FLIGHT

from . import follow_up
from .convergence import (
    CONVERGE,
    TERMINAL_REFRESH,
    UNCHANGED,
    Check,
    Snapshot,
    Verdict,
    read_refreshes,
    take_snapshot,
    verify,
)
from .core import EmbeddedAws
from .fleet import IN_SCOPE, Estate, build_estate
from .lambda_runtime import LambdaFunction
from .progress import FleetProgress, duration, group_table, instance_table, verdict_lines
from .routing import (
    Deliveries,
    Invocation,
    install_trigger,
    parameter_change_entry,
    publish,
    put_parameter,
    receive,
)
from .scenarios import Scenario, scenario
from .schedule import ScheduledRule, fire, install_schedule, period_seconds
from .stack import REPO_ROOT, StackError, load_stack

EXIT_OK, EXIT_NOT_CONVERGED, EXIT_USAGE = 0, 1, 2
STEP_SECONDS = 30
MAX_EMULATED_SECONDS = 12 * 3600
LOGGER_NAME = "ami-upgrade"


@dataclass(frozen=True)
class DemoOptions:
    stack: str = "dev"
    dry_run: bool = False
    fleet_size: int = 2
    seed: int = 0
    fault: str | None = None
    json_path: Path | None = None         # default: reports/demo-<stack>.json
    reconcile: bool = False               # the change event is lost; the schedule catches up

    def report_path(self) -> Path:
        return self.json_path or REPO_ROOT / "reports" / f"demo-{self.stack}.json"

    def log_path(self) -> Path:
        return self.report_path().with_suffix(".log")


@dataclass(frozen=True)
class DemoResult:
    options: DemoOptions
    exit_code: int
    verdict: Verdict
    estate: Estate
    before: Snapshot
    after: Snapshot
    invocations: tuple[Invocation, ...]
    emulated_seconds: float
    real_seconds: float
    report_path: Path
    # With ``reconcile``: the next scheduled run on the converged fleet, and its mutating calls.
    reconciled_again: Invocation | None = None
    mutating_calls_again: int | None = None

    @property
    def reports(self) -> list[dict]:
        return [i.report for i in self.invocations if i.report is not None]


@contextlib.contextmanager
def function_logs(path: Path) -> Iterator[None]:
    """The function's JSON log lines go to ``path`` (its CloudWatch log group, in effect)."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        handler.close()
        logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _settled(estate: Estate, autoscaling: Any) -> bool:
    return all(not refreshes or refreshes[0].status in TERMINAL_REFRESH
               for refreshes in (read_refreshes(autoscaling, g.name)
                                 for g in estate.groups_in(IN_SCOPE)))


def _in_flight(region: str) -> bool:
    """True while any instance or volume carries the engine's in-flight tag."""
    import boto3

    ec2 = boto3.client("ec2", region_name=region)
    marked = [{"Name": "tag-key", "Values": [IN_FLIGHT]}]
    instances = ec2.describe_instances(Filters=[*marked, {
        "Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    return bool([i for r in instances["Reservations"] for i in r["Instances"]]
                or ec2.describe_volumes(Filters=marked)["Volumes"])


def _drive(aws: EmbeddedAws, estate: Estate, deliveries: Deliveries) -> bool:
    """Advance emulated time until refreshes settle, nothing is queued and nothing is in
    flight; the follow-up rule fires every period while enabled, as EventBridge would.
    False on timeout."""
    import boto3

    autoscaling = boto3.client("autoscaling", region_name=estate.stack.region)
    start = aws.clock.monotonic()
    fired = start
    while True:
        deliveries.deliver_queued()
        if not deliveries.pending() and _settled(estate, autoscaling) and not _in_flight(
                estate.stack.region):
            return True
        if aws.clock.monotonic() - start >= MAX_EMULATED_SECONDS:
            return False
        aws.advance(STEP_SECONDS)
        if aws.clock.monotonic() - fired >= PERIOD_SECONDS and not deliveries.pending():
            fired = aws.clock.monotonic()
            if follow_up.state(deliveries.function) == "ENABLED":
                deliveries.deliver(follow_up.rule_input(deliveries.function), source="follow-up")


def _header(console: Console, options: DemoOptions, estate: Estate, fault: Scenario | None,
            version: int) -> None:
    stack = estate.stack
    groups, instances = len(estate.groups), len(estate.instances)
    members = sum(g.capacity for g in estate.groups)
    console.print(f"[bold]ami-upgrade demo[/bold] · stack [bold]{stack.stack}[/bold] · trigger "
                  f"{stack.trigger} · scope {stack.scope} · function "
                  f"{stack.function_name}:{stack.alias_name}"
                  + (" · [cyan]dry run[/cyan]" if options.dry_run else ""))
    console.print(f"  estate: {groups} Auto Scaling groups ({members} instances), {instances} "
                  f"standalone instances (fleet size {options.fleet_size}, seed {options.seed})")
    console.print(f"  images: old = {estate.old_image} (golden-linux-2026.10), new = "
                  f"{estate.new_image} (golden-linux-2026.11)")
    console.print(f"  excluded-by-list resources listed in {estate.exclusions_source}")
    console.print(f"  PutParameter {stack.parameter_name} = new (version {version})")
    if fault:
        console.print(f"  [yellow]fault {fault.name}[/yellow]: {fault.summary}")


def _json_report(options: DemoOptions, result: DemoResult, fault: Scenario | None) -> dict:
    estate, after = result.estate, result.after
    first = next((i.report for i in result.invocations if i.report is not None), None)
    return {
        "stack": estate.stack.stack,
        "trigger": estate.stack.trigger,
        "parameter": estate.stack.parameter_name,
        "old_ami": estate.old_image,
        "new_ami": estate.new_image,
        "dry_run": options.dry_run,
        "fault": fault.name if fault else None,
        "reconcile": options.reconcile,
        "mutating_calls_of_the_next_reconcile": result.mutating_calls_again,
        "fleet_size": options.fleet_size,
        "seed": options.seed,
        "expectation": result.verdict.expectation,
        "converged": result.verdict.ok,
        "exit_code": result.exit_code,
        "problems": result.verdict.problems(),
        "emulated_seconds": result.emulated_seconds,
        "report": first,
        "invocations": [{"source": i.source, "attempt": i.attempt, "report": i.report,
                         "error": i.error} for i in (
                             *result.invocations,
                             *([result.reconciled_again] if result.reconciled_again else []))],
        "checks": [dataclasses.asdict(c) for c in result.verdict.checks],
        "estate": {
            "groups": [{"name": g.name, "role": g.role,
                        "instances_before": list(result.before.groups[g.name].instance_ids),
                        "instances_after": list(after.groups[g.name].instance_ids)
                        if g.name in after.groups else [],
                        "images_after": sorted({after.instances[i].image_id
                                                for i in after.groups[g.name].instance_ids
                                                if i in after.instances})
                        if g.name in after.groups else []}
                       for g in estate.groups],
            "instances": [{"id": i.id, "name": i.name, "role": i.role,
                           "image_before": i.image_id, "strategy": i.strategy,
                           "volumes": {v.device: v.id for v in i.volumes}}
                          for i in estate.instances],
        },
    }


def run_demo(options: DemoOptions, aws: EmbeddedAws, console: Console) -> DemoResult:
    """Run the workflow on ``aws`` (inside ``embedded_aws()``); never raises for a bad run."""
    fault = scenario(options.fault) if options.fault else None
    if fault and options.dry_run:
        raise ValueError("--fault and --dry-run exclude each other: a dry run changes nothing")
    stack = load_stack(options.stack)
    if options.dry_run:
        stack = dataclasses.replace(stack, dry_run=True)
    if options.reconcile and not stack.reconcile_schedule:
        raise StackError(f"stack {stack.stack}: --reconcile needs ami-upgrade:reconcileSchedule "
                         "(it is off)")
    started = time.perf_counter()
    estate = build_estate(stack, size=options.fleet_size, seed=options.seed)
    function = LambdaFunction(aws, {**estate.environment, "AWS_REGION": stack.region,
                                    "AWS_DEFAULT_REGION": stack.region},
                              name=stack.function_name, alias=stack.alias_name,
                              timeout_seconds=stack.timeout_seconds,
                              memory_mb=stack.memory_size)
    trigger = install_trigger(stack)
    follow_up.deploy(function, stack.parameter_name, dry_run=stack.dry_run)
    schedule = install_schedule(stack, function.arn) if options.reconcile else None
    before = take_snapshot(stack.region)
    clock_start = aws.clock.monotonic()

    with function_logs(options.log_path()):
        version = put_parameter(stack, estate.new_image)
        _header(console, options, estate, fault, version)
        if schedule:
            source, events = "schedule", [_lost_then_scheduled(aws, stack, schedule, console)]
        else:
            publish(stack, parameter_change_entry(aws, stack, version))
            source, events = "event", receive(stack, trigger)
            console.print(f"  EventBridge rule {trigger.rule_name} routed {len(events)} "
                          f"event(s) ({', '.join(e['detail-type'] for e in events) or 'none'})"
                          f" to the function")
        if fault:
            fault.arm(aws, estate)
        title = f"ami-upgrade {stack.stack}: {stack.parameter_name}"
        with FleetProgress(aws, estate, console, title) as progress:
            deliveries = Deliveries(aws, function, on_invocation=progress.note)
            for event in events:
                deliveries.deliver(event, source=source)
            settled = _drive(aws, estate, deliveries)
        if fault:
            aws.faults.clear()
        expectation = UNCHANGED if options.dry_run else (fault.expectation if fault
                                                         else CONVERGE)
        again = (_reconcile_again(aws, estate, schedule, function)
                 if schedule and settled and expectation in (CONVERGE, UNCHANGED) else None)

    after = take_snapshot(stack.region)
    reports = [i.report for i in deliveries.invocations if i.report is not None]
    verdict = verify(estate, before, after, reports, expectation)
    if again is not None:
        verdict = dataclasses.replace(verdict, checks=(*verdict.checks, _reconcile_check(again)))
    if not events:
        verdict = dataclasses.replace(verdict, checks=(*verdict.checks, _problem(
            "the rule routed no event to the function")))
    if fault and fault.expectation == CONVERGE and not any(i.error for i in
                                                           deliveries.invocations):
        verdict = dataclasses.replace(verdict, checks=(*verdict.checks, _problem(
            f"fault {fault.name} never fired: the run made fewer mutating calls")))
    if not settled:
        verdict = dataclasses.replace(verdict, checks=(*verdict.checks, _problem(
            f"still running after {duration(MAX_EMULATED_SECONDS)} of emulated time")))
    result = DemoResult(options, EXIT_OK if verdict.ok else EXIT_NOT_CONVERGED, verdict, estate,
                        before, after, tuple(deliveries.invocations),
                        aws.clock.monotonic() - clock_start, time.perf_counter() - started,
                        options.report_path(), *(again or (None, None)))

    console.print()
    console.print(group_table(estate, before, after, reports))
    console.print(instance_table(estate, before, after, reports))
    if again is not None:
        invocation, calls = again
        status = (invocation.report or {}).get("status", invocation.error)
        console.print(f"  next scheduled reconcile on the settled fleet: {status}, {calls} "
                      "mutating call(s)" + (": nothing to do" if not calls else ""))
    for line in verdict_lines(verdict, fault.name if fault else None, options.dry_run):
        console.print(line)
    path = options.report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_report(options, result, fault), indent=2, default=str))
    console.print(f"  emulated time {duration(result.emulated_seconds)}, real time "
                  f"{result.real_seconds:.1f}s · report {_shown(path)} · function logs "
                  f"{_shown(options.log_path())} · exit {result.exit_code}")
    return result


def _lost_then_scheduled(aws: EmbeddedAws, stack: StackSettings, schedule: ScheduledRule,
                         console: Console) -> dict:
    """The change event is lost; the scheduled rule fires at its next time: its event."""
    wait = period_seconds(schedule.expression)
    console.print("  [yellow]the change event is lost[/yellow] (EventBridge delivers on a "
                  "best-effort basis): no run starts")
    aws.clock.advance(wait, step=wait)       # nothing is in progress: one step
    event = fire(stack, schedule)
    console.print(f"  {duration(wait)} later the scheduled rule {schedule.rule_name} "
                  f"({schedule.expression}) invokes the alias with {json.dumps(event)}")
    return event


def _reconcile_again(aws: EmbeddedAws, estate: Estate, schedule: ScheduledRule,
                     function: LambdaFunction) -> tuple[Invocation, int]:
    """The next scheduled run on the settled fleet, and the mutating calls it made."""
    wait = period_seconds(schedule.expression)
    aws.clock.advance(wait, step=wait)
    calls = len(aws.faults.mutating_calls)
    deliveries = Deliveries(aws, function)
    invocation = deliveries.deliver(fire(estate.stack, schedule), source="schedule")
    _drive(aws, estate, deliveries)
    return invocation, len(aws.faults.mutating_calls) - calls


def _reconcile_check(again: tuple[Invocation, int]) -> Check:
    invocation, calls = again
    problems = []
    if invocation.error:
        problems.append(f"the next reconcile failed: {invocation.error}")
    if calls:
        problems.append(f"the next reconcile made {calls} mutating call(s) on a converged "
                        "fleet")
    return Check("estate", "next reconcile", "idempotent" if not problems else "changed",
                 tuple(problems))


def _problem(text: str) -> Check:
    return Check("estate", "run", "incomplete", (text,))


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)
