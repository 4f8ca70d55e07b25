"""``--serve``: the embedded AWS on loopback, so the AWS CLI can inspect the estate.

moto's ``ThreadedMotoServer`` serves the same in-process state the demo built,
with the sandbox's emulations active (they patch moto's response classes). The
emulated clock keeps moving while serving, ``SERVE_TIME_SCALE`` emulated seconds
per real second, so an instance refresh started from the CLI progresses;
requests and clock ticks take one lock, since moto's state is not thread-safe.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from .core import EmbeddedAws

SERVE_TIME_SCALE = 10.0       # emulated seconds per real second while serving
TICK_SECONDS = 1.0


class QuietRequestHandler(MotoRequestHandler):
    """moto's request handler without the access line per request (errors still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing: a user of the served sandbox reads its outcomes, not its traffic."""


class LockedMotoServer(ThreadedMotoServer):
    """moto's threaded server, each request holding ``lock`` (shared with the clock).

    ``verbose``: log an access line per request (werkzeug's ``INFO`` lines).
    """

    def __init__(self, lock: threading.Lock, ip_address: str, port: int,
                 verbose: bool = False) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self._lock = lock
        self._handler = MotoRequestHandler if verbose else QuietRequestHandler

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        lock = self._lock

        def locked(environ: dict, start_response: Callable) -> Any:
            with lock:
                return list(app(environ, start_response))

        self._server = make_server(self._ip_address, self._port, locked, True,
                                   request_handler=self._handler)
        self._server_ready_event.set()
        self._server.serve_forever()


class Served:
    """A running server: its endpoint, and ``tick``/``stop`` for the owner's loop."""

    def __init__(self, aws: EmbeddedAws, host: str = "127.0.0.1", port: int = 5000,
                 on_tick: Callable[[], object] | None = None, verbose: bool = False) -> None:
        self.aws = aws
        self.on_tick = on_tick      # e.g. LiveStack.pump: runs after each tick, under the lock
        self.lock = threading.Lock()
        self.server = LockedMotoServer(self.lock, host, port, verbose=verbose)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"

    def tick(self, real_seconds: float = TICK_SECONDS) -> None:
        with self.lock:
            self.aws.advance(real_seconds * SERVE_TIME_SCALE)
            if self.on_tick:
                self.on_tick()

    def stop(self) -> None:
        self.server.stop()


def serve_until_stopped(served: Served, stop: threading.Event) -> None:
    """Tick the emulated clock until ``stop`` is set or Ctrl-C; then stop the server.

    Ctrl-C is made to interrupt even when the parent started this process with SIGINT
    ignored (as a non-interactive shell does for a command run with ``&``): Python then
    installs no handler of its own, and the server would never stop.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while not stop.wait(TICK_SECONDS):
            served.tick()
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()


def usage(endpoint_url: str, region: str) -> list[str]:
    """What to type in another terminal to look at the estate."""
    env = "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
    return [
        f"embedded AWS listening on {endpoint_url} (Ctrl-C to stop)",
        f"  --endpoint-url {endpoint_url} --region {region}",
        f"  {env} aws ec2 describe-instances --endpoint-url {endpoint_url} --region {region} "
        "--query 'Reservations[].Instances[].[InstanceId,ImageId,State.Name]' --output table",
        f"  {env} aws autoscaling describe-instance-refreshes --endpoint-url {endpoint_url} "
        f"--region {region} --auto-scaling-group-name web",
    ]
