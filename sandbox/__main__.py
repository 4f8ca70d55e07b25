"""``python -m sandbox``: ami-upgrade's whole workflow on the embedded AWS, end to end.

See ``sandbox.demo`` for the steps and the exit codes, README "Demo" for the output.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import threading
from pathlib import Path

from rich.console import Console

from .demo import EXIT_USAGE, DemoOptions, run_demo
from .fleet import MAX_FLEET_SIZE
from .routing import Invocation
from .scenarios import NAMES, scenario
from .stack import StackError, stack_names

HUB_FAULT = "canary-alarm"  # the hub playground's one fault: the canary's gate alarm
MIN_PIPE_WIDTH = 150      # table width when the output is not a terminal (logs, CI)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run ami-upgrade end to end on the embedded AWS (moto plus emulations): "
                    "build an estate from a stack's configuration, write a new AMI into the "
                    "parameter, route the event to the function and drive the fleet to the "
                    "new image.",
        epilog="exit status: 0 when the run did what it must (converged; dry run: nothing "
               "changed and the plan lists the scope; with --fault: the rollback or the "
               "recovery verified), 1 when not (the problems are printed), 2 for bad options.")
    parser.add_argument("--stack", default="dev",
                        help=f"the stack whose Pulumi.<stack>.yaml configures the run "
                             f"({', '.join(stack_names()) or 'none found'}; default dev)")
    parser.add_argument("--dry-run", action="store_true",
                        help="deploy with DRY_RUN=true: the function plans and changes nothing")
    parser.add_argument("--fleet-size", type=int, default=2, metavar="N",
                        help="instances per in-scope Auto Scaling group and in-scope standalone "
                             f"instances (1 to {MAX_FLEET_SIZE}; default 2)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the estate's shape and moto's IDs (default 0)")
    parser.add_argument("--fault", metavar="NAME", nargs="?", const=HUB_FAULT,
                        help=f"inject a failure: {', '.join(NAMES)}; with --accounts: "
                             f"{HUB_FAULT} (the default)")
    parser.add_argument("--reconcile", action="store_true",
                        help="lose the change event (EventBridge delivers on a best-effort "
                             "basis): the stack's scheduled reconcile converges the fleet at "
                             "its next time, and the one after must change nothing")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="where to write the JSON report (default reports/demo-<stack>.json;"
                             " the function's logs go beside it, .log)")
    parser.add_argument("--accounts", type=int, metavar="N",
                        help="run a hub and its spokes instead (docs/multi-account.md): N spoke "
                             "accounts (1 to 7) x --regions regions, promoted in waves; "
                             "--fault trips the canary's gate alarm")
    parser.add_argument("--regions", type=int, default=1, metavar="M",
                        help="with --accounts: regions per spoke account (1 to 4; default 1)")
    parser.add_argument("--serve", action="store_true",
                        help="afterwards keep the embedded AWS listening on loopback for the "
                             "AWS CLI (--endpoint-url), until Ctrl-C")
    parser.add_argument("--port", type=int, default=5000,
                        help="port for --serve on 127.0.0.1 (default 5000; 0 picks a free one)")
    parser.add_argument("--verbose", action="store_true",
                        help="with --serve: also print an access line per request")
    args = parser.parse_args(argv)
    if not 1 <= args.fleet_size <= MAX_FLEET_SIZE:
        parser.error(f"--fleet-size: expected 1 to {MAX_FLEET_SIZE}, got {args.fleet_size}")
    if args.accounts is not None:
        if args.fault not in (None, HUB_FAULT):
            parser.error(f"--fault with --accounts: expected {HUB_FAULT}, got {args.fault}")
        return args
    if args.fault:
        try:
            scenario(args.fault)
        except ValueError as exc:
            parser.error(str(exc))
    if args.fault and args.dry_run:
        parser.error("--fault and --dry-run exclude each other: a dry run changes nothing")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: expected 0 to 65535, got {args.port}")
    return args


def make_console() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(MIN_PIPE_WIDTH, shutil.get_terminal_size().columns))
    return console


def hub_main(args: argparse.Namespace, console: Console) -> int:
    """The hub playground (``--accounts``): see :mod:`sandbox.hub_demo`."""
    from .core import embedded_aws
    from .hub_demo import HubDemoOptions, run_hub_demo
    from .hub_world import sized

    try:
        sized(args.accounts, args.regions)
    except ValueError as exc:
        console.print(f"[red]error[/red]: {exc}")
        return EXIT_USAGE
    with embedded_aws() as aws:
        return run_hub_demo(HubDemoOptions(accounts=args.accounts, regions=args.regions,
                                           fault=bool(args.fault), json_path=args.json),
                            aws, console)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = make_console()
    if args.accounts is not None:
        return hub_main(args, console)
    options = DemoOptions(stack=args.stack, dry_run=args.dry_run, fleet_size=args.fleet_size,
                          seed=args.seed, fault=args.fault, json_path=args.json,
                          reconcile=args.reconcile)
    from .core import embedded_aws

    with embedded_aws() as aws:
        try:
            result = run_demo(options, aws, console)
        except StackError as exc:
            console.print(f"[red]error[/red]: {exc}")
            return EXIT_USAGE
        if args.serve:
            from .live import LiveStack, outcome_line
            from .serve import Served, serve_until_stopped, usage

            def print_outcome(invocation: Invocation) -> None:
                console.print(outcome_line(invocation), highlight=False, soft_wrap=True,
                              markup=False)
                sys.stdout.flush()

            live = LiveStack(aws, result.estate.stack, result.estate.environment,
                             on_invocation=print_outcome)
            served = Served(aws, port=args.port, on_tick=live.pump, verbose=args.verbose)
            for line in (*usage(served.endpoint_url, result.estate.stack.region),
                         *live.usage(served.endpoint_url)):
                console.print(line, highlight=False, soft_wrap=True)
            sys.stdout.flush()
            serve_until_stopped(served, threading.Event())
            live.close()
            console.print("stopped serving")
    return result.exit_code


if __name__ == "__main__":
    # moto's backends are large object graphs (some 1,300 stock images per EC2 backend): at
    # the default thresholds the cyclic collector re-scans them often enough to cost about a
    # third of a run. Nothing here depends on when garbage is collected.
    gc.set_threshold(50_000, 50, 100)
    sys.exit(main())
