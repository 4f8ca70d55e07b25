"""Argument parsing, the four commands and their exit codes.

``plan`` invokes the deployed alias synchronously with ``{"dry_run": true}``: the
deployed code, configuration and permissions decide, exactly as a run would, and a
dry run changes nothing. The call waits up to the function's timeout (plus a
margin) and is never retried by the client. ``run`` invokes the alias
asynchronously (``InvocationType=Event``): Lambda queues it and answers 202 at once,
so no read timeout can fire and resend it; Lambda's own asynchronous retries and
the engine's continuations take it from there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape

from components.stack_settings import StackSettings

from . import (
    EXIT_ABORTED,
    EXIT_ATTENTION,
    EXIT_CODES,
    EXIT_NOT_DEPLOYED,
    EXIT_OK,
    EXIT_USAGE,
    __version__,
    fleet,
    render,
)
from .errors import CliError, translate
from .stack import load, project_dir, stack_names

INVOKE_MARGIN_SECONDS = 60        # beyond the function's timeout, for plan's synchronous call
CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=60,
                       retries={"mode": "standard", "max_attempts": 3})
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
WIDTH = 160                       # table width when stdout is not a terminal
WATCH_INTERVAL_SECONDS = 10.0
IN_FLIGHT = frozenset({"replacing", "rolling-back", "new-instance", "root-volume"})
SLEEP = time.sleep                # between reads of --watch (tests advance emulated time)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", default="dev", help="the stack (Pulumi.<stack>.yaml); "
                                                       "default dev")
    common.add_argument("--region", help="must match the stack's aws:region (the default)")
    common.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    common.add_argument("--endpoint-url", help="another AWS endpoint, e.g. the sandbox's "
                                               "--serve")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    common.add_argument("--project-dir", type=Path, help="where Pulumi.<stack>.yaml is "
                                                         "(default: here, else the repository)")
    parser = argparse.ArgumentParser(
        prog="ami-upgrade", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Operate a deployed ami-upgrade stack.",
        epilog=f"exit codes:\n{codes}")
    parser.add_argument("--version", action="version", version=f"ami-upgrade {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("plan", parents=[common],
                        help="what a run would do now (a dry run of the deployed function)")
    commands.add_parser("run", parents=[common],
                        help="start a run now (asynchronous invoke of the stack's alias)")
    status = commands.add_parser("status", parents=[common],
                                 help="refreshes, standalone replacements and the last run's "
                                      "report")
    status.add_argument("--watch", action="store_true",
                        help="follow the rollout: a line per group and instance as it "
                             "progresses, until no refresh or replacement is in flight")
    status.add_argument("--interval", type=_positive_seconds, default=WATCH_INTERVAL_SECONDS,
                        metavar="SECONDS", help="with --watch: seconds between reads "
                                                f"(default {WATCH_INTERVAL_SECONDS:g})")
    cancel = commands.add_parser("cancel", parents=[common],
                                 help="cancel the instance refreshes ami-upgrade started")
    cancel.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser.parse_args(argv)


def endpoint_url(value: str | None) -> str | None:
    """``--endpoint-url`` when it is an http(s) URL with a host; else a usage error."""
    if value is None:
        return None
    parsed = urllib.parse.urlsplit(value)
    try:
        parsed.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CliError(EXIT_USAGE, f"--endpoint-url {value!r} is not a URL such as "
                                   "http://127.0.0.1:5000")
    return value


def repeated_flags(args: argparse.Namespace) -> list[str]:
    """The options the user gave that select the stack and the account, for hints."""
    flags = ["--stack", args.stack]
    for flag, value in (("--region", args.region), ("--profile", args.profile),
                        ("--endpoint-url", args.endpoint_url),
                        ("--project-dir", args.project_dir)):
        if value is not None:
            flags += [flag, str(value)]
    return flags


class Context:
    """The stack, a session and clients for one command; checks what it can up front."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.flags = repeated_flags(args)
        root = project_dir(args.project_dir)
        self.stack: StackSettings = load(args.stack, root)
        region = args.region or self.stack.region
        if not REGION_RE.match(region):
            raise CliError(EXIT_USAGE, f"--region {region!r} is not a region name")
        if region != self.stack.region:
            raise CliError(EXIT_USAGE, f"--region {region}: stack {self.stack.stack} is "
                                       f"deployed in {self.stack.region} (aws:region in "
                                       f"Pulumi.{self.stack.stack}.yaml)")
        self.endpoint_url = endpoint_url(args.endpoint_url)
        try:
            self.session = boto3.session.Session(profile_name=args.profile, region_name=region)
            if self.session.get_credentials() is None:
                raise CliError(*_no_credentials())
            identity = self.client("sts").get_caller_identity()
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "checking the credentials") from None
        self.account = identity["Account"]
        self.alias_arn = self._alias_arn()

    def members(self) -> dict[str, str]:
        """Instance ID -> its Auto Scaling group, for folding members into their group's row."""
        try:
            return fleet.group_members(self.client("autoscaling"))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "reading the Auto Scaling groups") from None

    def command_line(self, command: str) -> str:
        """``ami-upgrade <command>`` with the options this invocation was given."""
        return shlex.join(["ami-upgrade", command, *self.flags])

    def client(self, service: str, config: Config = CLIENT_CONFIG) -> Any:
        make: Any = self.session.client    # the service is a runtime name: one stub for all
        return make(service, endpoint_url=self.endpoint_url, config=config)

    def _alias_arn(self) -> str:
        stack = self.stack
        try:
            arn: str = self.client("lambda").get_alias(FunctionName=stack.function_name,
                                                       Name=stack.alias_name)["AliasArn"]
            return arn
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise CliError(EXIT_NOT_DEPLOYED, (
                    f"stack {stack.stack} is not deployed in account {self.account}, region "
                    f"{stack.region}: no function {stack.function_name} with alias "
                    f"{stack.alias_name} (pulumi up; or other credentials)")) from None
            raise translate(exc, f"reading alias {stack.alias_name} of "
                                 f"{stack.function_name}") from None
        except BotoCoreError as exc:
            raise translate(exc, "reading the function's alias") from None


def _no_credentials() -> tuple[int, str]:
    from botocore.exceptions import NoCredentialsError

    error = translate(NoCredentialsError(), "")
    return error.exit_code, str(error)


class Output:
    """Tables on a console, or one JSON document."""

    def __init__(self, as_json: bool, console: Console) -> None:
        self.as_json = as_json
        self.console = console

    def line(self, text: str) -> None:
        """One line of text, printed literally (AWS data in it is never read as markup)."""
        if not self.as_json:
            self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def show(self, *renderables: Any) -> None:
        if not self.as_json:
            for item in renderables:
                self.console.print(item)

    def document(self, value: dict) -> None:
        if self.as_json:
            self.console.file.write(json.dumps(value, indent=2, default=str) + "\n")


def _report_exit(report: dict) -> int:
    return EXIT_OK if report.get("status") in ("succeeded", "ignored") else EXIT_ATTENTION


def cmd_plan(ctx: Context, out: Output) -> int:
    stack = ctx.stack
    config = Config(connect_timeout=10, read_timeout=stack.timeout_seconds
                    + INVOKE_MARGIN_SECONDS, retries={"total_max_attempts": 1})
    out.line(f"dry run of {ctx.alias_arn} (waits up to {stack.timeout_seconds} s) ...")
    try:
        response = ctx.client("lambda", config).invoke(
            FunctionName=ctx.alias_arn, InvocationType="RequestResponse",
            Payload=json.dumps({"parameter_name": stack.parameter_name,
                                "dry_run": True}).encode())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TooManyRequestsException":
            raise CliError(EXIT_ATTENTION, "the function is busy (a run is in progress; "
                                           "reserved concurrency): try plan again after it "
                                           "ends, see status") from None
        raise translate(exc, "invoking the function") from None
    except BotoCoreError as exc:
        raise translate(exc, "invoking the function") from None
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise CliError(EXIT_ATTENTION, f"the function failed: {payload}")
    out.document({"stack": stack.stack, "command": "plan", "report": payload})
    out.line(render.report_summary(payload))
    out.show(*render.report_tables(payload, ctx.members() if not out.as_json else {}))
    return _report_exit(payload)


def cmd_run(ctx: Context, out: Output) -> int:
    stack = ctx.stack
    config = Config(connect_timeout=10, read_timeout=60, retries={"total_max_attempts": 1})
    try:
        response = ctx.client("lambda", config).invoke(
            FunctionName=ctx.alias_arn, InvocationType="Event",
            Payload=json.dumps({"parameter_name": stack.parameter_name}).encode())
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, "invoking the function") from None
    request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
    out.document({"stack": stack.stack, "command": "run", "function": ctx.alias_arn,
                  "status_code": response["StatusCode"], "request_id": request_id})
    out.line(f"run started: {ctx.alias_arn} accepted the invocation (HTTP "
             f"{response['StatusCode']}, request {request_id})")
    out.line(f"  follow it with: {ctx.command_line('status')} --watch")
    return EXIT_OK


@dataclass(frozen=True)
class Fleet:
    """One read of what ``status`` shows."""

    refreshes: list[fleet.Refresh]
    replacements: list[fleet.Replacement]
    report: dict | None
    source: str

    @property
    def in_flight(self) -> bool:
        """A refresh is active or a standalone replacement is under way."""
        return (any(r.status in fleet.ACTIVE for r in self.refreshes)
                or any(r.phase in IN_FLIGHT for r in self.replacements))

    def progress(self) -> list[str]:
        """One line per group refresh and per standalone replacement."""
        lines = []
        for r in self.refreshes:
            done = "" if r.percentage is None else f" {r.percentage}%"
            to_go = f" ({r.instances_to_update} to go)" if r.instances_to_update else ""
            lines.append(f"  group {r.group}: {r.status}{done}{to_go}"
                         + (f", checkpoint {r.checkpoint}" if r.checkpoint else ""))
        lines += [f"  instance {r.instance}: {r.phase} ({r.state})"
                  + (f", {r.detail}" if r.detail else "") for r in self.replacements]
        return lines


def read_fleet(ctx: Context) -> Fleet:
    stack = ctx.stack
    try:
        refreshes = fleet.refreshes(ctx.client("autoscaling"), stack, dt.datetime.now(dt.UTC))
        replacements = fleet.replacements(ctx.client("ec2"), stack)
        report, source = fleet.last_report(ctx.client("logs"), stack)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, "reading the fleet") from None
    return Fleet(refreshes, replacements, report, source)


def cmd_watch(ctx: Context, out: Output, interval: float) -> int:
    """Print the rollout's progress as it changes until nothing is in flight; then status."""
    shown: list[str] | None = None
    out.line(f"watching stack {ctx.stack.stack} (every {interval:g} s, Ctrl-C to stop)")
    current = read_fleet(ctx)
    try:
        while True:
            progress = current.progress()
            if progress != shown:
                stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
                out.line(f"{stamp} " + ("in flight" if current.in_flight else "at rest"))
                for line in progress:
                    out.line(line)
                shown = progress
            if not current.in_flight:
                break
            SLEEP(interval)
            current = read_fleet(ctx)
    except KeyboardInterrupt:
        out.line("stopped watching")
    return show_status(ctx, out, current)


def cmd_status(ctx: Context, out: Output) -> int:
    return show_status(ctx, out, read_fleet(ctx))


def show_status(ctx: Context, out: Output, current: Fleet) -> int:
    stack = ctx.stack
    refreshes, replacements = current.refreshes, current.replacements
    report, source = current.report, current.source
    attention = (any(r.status in fleet.FAILED for r in refreshes)
                 or any(r.failed for r in replacements)
                 or (report is not None and _report_exit(report) != EXIT_OK))
    out.document({"stack": stack.stack, "command": "status", "parameter": stack.parameter_name,
                  "refreshes": [r.to_dict() for r in refreshes],
                  "replacements": [r.to_dict() for r in replacements],
                  "last_report": report, "last_report_source": source})
    out.line(f"stack {stack.stack} · {ctx.alias_arn} · parameter {stack.parameter_name} · "
             f"scope {stack.scope}")
    out.show(render.refresh_table(refreshes) if refreshes
             else "no instance refresh in progress or ended in the last 24 h")
    out.show(render.replacement_table(replacements) if replacements
             else "no standalone replacement in flight, failed or kept")
    if report is None:
        out.line(f"last report: {source}")
    else:
        out.line(f"last report ({source}): {render.report_summary(report)}")
        out.show(*render.report_tables(report, ctx.members() if not out.as_json else {}))
    return EXIT_ATTENTION if attention else EXIT_OK


def cmd_cancel(ctx: Context, out: Output, yes: bool) -> int:
    stack = ctx.stack
    autoscaling = ctx.client("autoscaling")
    try:
        targets = fleet.cancellable(autoscaling, stack)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, "reading the refreshes") from None
    if not targets:
        out.document({"stack": stack.stack, "command": "cancel", "cancelled": [],
                      "outcomes": {}})
        out.line("nothing to cancel: no active instance refresh that ami-upgrade started")
        return EXIT_OK
    out.show(render.refresh_table(targets))
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(EXIT_ABORTED, f"{len(targets)} refresh(es) to cancel: confirm with "
                                         "--yes (stdin is not a terminal)")
        answer = input(f"Cancel {len(targets)} instance refresh(es)? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise CliError(EXIT_ABORTED, "not confirmed: nothing cancelled")
    outcomes: dict[str, str] = {}
    for refresh in targets:
        try:
            outcomes[refresh.group] = fleet.cancel_refresh(autoscaling, refresh)
        except (BotoCoreError, ClientError) as exc:
            outcomes[refresh.group] = f"failed: {translate(exc, 'cancelling')}"
    cancelled = [g for g, o in outcomes.items() if o.startswith("cancelled")]
    out.document({"stack": stack.stack, "command": "cancel", "cancelled": cancelled,
                  "outcomes": outcomes})
    for group, outcome in outcomes.items():
        out.line(f"  {group}: {outcome}")
    out.line("note: the next event for the parameter (or a run) starts refreshes again")
    return EXIT_ATTENTION if any(o.startswith("failed") for o in outcomes.values()) else EXIT_OK


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    args = parse_args(argv)
    if console is None:
        console = Console(soft_wrap=args.json)
        if not console.is_terminal and not args.json:
            console = Console(width=WIDTH)
    out = Output(args.json, console)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        ctx = Context(args)
        if args.command == "plan":
            return cmd_plan(ctx, out)
        if args.command == "run":
            return cmd_run(ctx, out)
        if args.command == "status":
            return cmd_watch(ctx, out, args.interval) if args.watch else cmd_status(ctx, out)
        return cmd_cancel(ctx, out, args.yes)
    except CliError as exc:
        errors.print(f"[red]error[/red]: {escape(str(exc))}")
        if args.json:
            out.document({"command": args.command, "error": str(exc),
                          "exit_code": exc.exit_code})
        return exc.exit_code


__all__ = ["main", "stack_names"]
