"""``--serve`` with a live trigger: the deployed stack behind the served endpoint.

While the sandbox serves, it behaves like the account a stack is deployed to:

- the function exists in moto's Lambda (function, published version, alias, log
  group), so ``GetAlias`` and the operator CLI find it;
- a ``PutParameter`` from any client (the AWS CLI too) is followed by the event AWS
  would emit, published on EventBridge, routed by the stack's rule and delivered to
  ``handler.main.lambda_handler`` with Lambda's asynchronous semantics, exactly as in
  the demo (``sandbox.routing``'s path: ``parameter_change_entry``, ``publish``,
  ``receive``, ``Deliveries``);
- an asynchronous ``Invoke`` of the alias (``run``) is delivered the same way, and a
  synchronous one (``plan``) runs the handler and answers with its report;
- the function's log lines go to its log group, one stream per invocation, as
  Lambda writes them (``status`` reads the last report there).

Events are delivered by ``pump``, which the serving loop calls at each clock tick
under the server's lock; a synchronous ``Invoke`` runs inside its request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import boto3
from moto.awslambda.responses import LambdaResponse
from moto.ssm.responses import SimpleSystemManagerResponse

from components.stack_settings import StackSettings

from .core import EmbeddedAws, patch_method
from .lambda_runtime import LambdaFunction
from .routing import (
    Deliveries,
    Invocation,
    install_trigger,
    parameter_change_entry,
    publish,
    receive,
)
from .stack import REPO_ROOT

LOGGER_NAME = "ami-upgrade"      # handler.log's logger
ROLE_NAME = "ami-upgrade-sandbox-function"


class DeployedFunction(LambdaFunction):
    """``LambdaFunction`` whose log lines go to its CloudWatch log group, per invocation."""

    def invoke(self, event: Any) -> dict:
        lines: list[str] = []
        with _captured_logs(lines):
            try:
                return super().invoke(event)
            except BaseException as exc:
                lines.append(json.dumps({"event": "invocation_failed",
                                         "error": f"{type(exc).__name__}: {exc}"}))
                raise
            finally:
                self._ship(lines)

    def _ship(self, lines: list[str]) -> None:
        logs = boto3.client("logs", region_name=self.aws.region)
        now = self.aws.clock.now()
        stream = f"{now:%Y/%m/%d}/[1]{uuid.uuid4().hex}"
        group = f"/aws/lambda/{self.name}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        # Real time: CloudWatch Logs rejects events more than 2 h ahead of it, and emulated
        # time runs ahead; real time also orders the streams as the invocations ran.
        stamp = int(time.time() * 1000)
        if lines:
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": stamp, "message": line}
                                           for line in lines])


@contextlib.contextmanager
def _captured_logs(lines: list[str]) -> Iterator[None]:
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger.handlers = [Collect()]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _function_zip() -> bytes:
    """The Lambda package as the stack builds it: the ``handler/`` directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((REPO_ROOT / "handler").glob("*.py")):
            archive.write(path, f"handler/{path.name}")
    return buffer.getvalue()


def deploy_function(stack: StackSettings, environment: Mapping[str, str]) -> str:
    """Function, version, alias and log group in moto, as ``pulumi up`` creates them."""
    iam = boto3.client("iam", region_name=stack.region)
    lambda_ = boto3.client("lambda", region_name=stack.region)
    logs = boto3.client("logs", region_name=stack.region)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=f"{ROLE_NAME}-{stack.stack}",
                               AssumeRolePolicyDocument=json.dumps(policy))["Role"]["Arn"]
    logs.create_log_group(logGroupName=stack.log_group_name)
    version = lambda_.create_function(
        FunctionName=stack.function_name, Runtime="python3.13", Role=role_arn,
        Handler="handler.main.lambda_handler", Code={"ZipFile": _function_zip()},
        Timeout=stack.timeout_seconds, MemorySize=stack.memory_size, Publish=True,
        Environment={"Variables": dict(environment)}, Architectures=["arm64"])["Version"]
    return lambda_.create_alias(FunctionName=stack.function_name, Name=stack.alias_name,
                                FunctionVersion=version)["AliasArn"]


def outcome_line(invocation: Invocation) -> str:
    """One line for a run of the function while serving: what started it, how it ended."""
    kind = invocation.source + (f", retry {invocation.attempt}" if invocation.attempt else "")
    if invocation.error:
        return f"  run ({kind}): crashed: {invocation.error}"
    report = invocation.report or {}
    entries = (*report.get("asgs", []), *report.get("instances", []))
    acted = sum(1 for e in entries if e.get("action") not in ("skipped", None))
    failed = sum(1 for e in entries if e.get("action") == "failed")
    line = (f"  run ({kind}): {report.get('parameter')} -> {report.get('ami_id')}: status "
            f"{report.get('status')}, {acted} acted on")
    if failed:
        line += f", {failed} failed"
    if report.get("continuation"):
        line += f", continuation #{report['continuation']} queued"
    return line


class LiveStack:
    """The stack deployed on the embedded AWS, its trigger live; ``close`` undoes the hooks."""

    def __init__(self, aws: EmbeddedAws, stack: StackSettings,
                 environment: Mapping[str, str],
                 on_invocation: Callable[[Invocation], None] | None = None) -> None:
        """``on_invocation``: called with each invocation's outcome as it ends."""
        self.aws = aws
        self.stack = stack
        self.function = DeployedFunction(
            aws, {**environment, "AWS_REGION": stack.region, "AWS_DEFAULT_REGION": stack.region},
            name=stack.function_name, alias=stack.alias_name,
            timeout_seconds=stack.timeout_seconds, memory_mb=stack.memory_size)
        self.alias_arn = deploy_function(stack, environment)
        self.trigger = install_trigger(stack)
        self.deliveries = Deliveries(aws, self.function, on_invocation=on_invocation)
        self.changes: list[tuple[str, int]] = []      # (parameter, version) put, not yet routed
        self._undo = [self._hook_put_parameter(), self._hook_sync_invoke()]

    def pump(self) -> int:
        """Route the parameter changes and deliver what is queued; the invocations made."""
        before = len(self.deliveries.invocations)
        changes, self.changes[:] = list(self.changes), []
        for name, version in changes:
            about = dataclasses.replace(self.stack, parameter_name=name)
            publish(self.stack, parameter_change_entry(
                self.aws, about, version, operation="Create" if version == 1 else "Update"))
        for event in receive(self.stack, self.trigger):
            self.deliveries.deliver(event)
        self.deliveries.deliver_queued()
        return len(self.deliveries.invocations) - before

    def close(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def usage(self, endpoint_url: str) -> list[str]:
        env = "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
        where = f"--endpoint-url {endpoint_url} --region {self.stack.region}"
        return [
            f"  live trigger: a PutParameter of {self.stack.parameter_name} goes through rule "
            f"{self.trigger.rule_name} to {self.stack.function_name}:{self.stack.alias_name}",
            f"  {env} aws ssm put-parameter {where} --name {self.stack.parameter_name} "
            "--type String --data-type aws:ec2:image --overwrite --value <ami-id>",
            f"  {env} python -m ami_upgrade_cli status --watch --stack {self.stack.stack} "
            f"{where}",
        ]

    def _hook_put_parameter(self) -> Callable[[], None]:
        original = SimpleSystemManagerResponse.put_parameter
        changes = self.changes

        def put_parameter(response: SimpleSystemManagerResponse) -> Any:
            result = original(response)
            changes.append((response._get_param("Name"), result.result["Version"]))
            return result

        return patch_method(SimpleSystemManagerResponse, "put_parameter", put_parameter)

    def _hook_sync_invoke(self) -> Callable[[], None]:
        previous = LambdaResponse.invoke
        function = self.function

        def invoke(response: LambdaResponse) -> Any:
            kind = response.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
            target = unquote(response.path.rsplit("/", 2)[-2])
            if kind != "RequestResponse" or not function._is_ours({"function": target}):
                return previous(response)
            body = response.body.decode() if isinstance(response.body, bytes) else response.body
            headers = {"content-type": "application/json", "x-amz-executed-version": "1"}
            try:
                report = function.invoke(json.loads(body or "{}"))
            except Exception as exc:      # Lambda answers 200 with the error as the payload
                headers["x-amz-function-error"] = "Unhandled"
                return 200, headers, json.dumps({"errorMessage": str(exc),
                                                 "errorType": type(exc).__name__})
            return 200, headers, json.dumps(report, default=str)

        return patch_method(LambdaResponse, "invoke", invoke)
