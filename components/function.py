"""The Lambda function: log group, function (published), alias and async-invoke config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

HANDLER_DIR = Path(__file__).resolve().parent.parent / "handler"
HANDLER = "handler.main.lambda_handler"
RUNTIME = "python3.13"
ARCHITECTURE = "arm64"


def handler_files(code_dir: Path) -> dict[str, Path]:
    """The package's files keyed by their path in the zip (``handler/main.py`` ...).

    Byte-code caches are left out, so the zip (and the published version) only
    changes when the source does, not whenever tests ran locally.
    """
    files = {}
    for path in sorted(code_dir.rglob("*")):
        relative = path.relative_to(code_dir)
        if (not path.is_file() or "__pycache__" in relative.parts or path.suffix == ".pyc"
                or any(part.startswith(".") for part in relative.parts)):
            continue
        files[f"{code_dir.name}/{relative.as_posix()}"] = path
    return files


def handler_archive(code_dir: Path = HANDLER_DIR) -> pulumi.AssetArchive:
    """The zip holding the ``handler/`` package only (boto3 comes from the runtime)."""
    return pulumi.AssetArchive({key: pulumi.FileAsset(str(path))
                                for key, path in handler_files(code_dir).items()})


@dataclass(frozen=True)
class FunctionArgs:
    function_name: str
    alias_name: str
    role_arn: pulumi.Input[str]
    environment: Mapping[str, str]
    log_group_name: str
    log_retention_days: int = 30
    timeout_seconds: int = 900
    memory_size: int = 512
    reserved_concurrency: int | None = 1
    maximum_event_age_seconds: int = 3600
    maximum_retry_attempts: int = 2
    on_failure_destination_arn: str | None = None
    code_dir: Path = HANDLER_DIR
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Resources the function must wait for (the role's policy: it may log from its first run).
    depends_on: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        if not self.function_name or not self.alias_name:
            raise ValueError("FunctionArgs.function_name and alias_name: required")
        if self.log_group_name != f"/aws/lambda/{self.function_name}":
            raise ValueError(f"FunctionArgs.log_group_name: expected /aws/lambda/"
                             f"{self.function_name}, got {self.log_group_name!r}")
        if not 1 <= self.timeout_seconds <= 900:
            raise ValueError(f"FunctionArgs.timeout_seconds: 1 to 900, got {self.timeout_seconds}")
        if not 128 <= self.memory_size <= 10240:
            raise ValueError(f"FunctionArgs.memory_size: 128 to 10240, got {self.memory_size}")
        if not 60 <= self.maximum_event_age_seconds <= 21600:
            raise ValueError("FunctionArgs.maximum_event_age_seconds: 60 to 21600")
        if not 0 <= self.maximum_retry_attempts <= 2:
            raise ValueError("FunctionArgs.maximum_retry_attempts: 0 to 2")
        if not (self.code_dir / "main.py").is_file():
            raise ValueError(f"FunctionArgs.code_dir: {self.code_dir} has no main.py "
                             f"(the entrypoint {HANDLER})")


class Function(pulumi.ComponentResource):
    """``<name>-logs``, ``<name>-lambda`` (published), ``<name>-alias``, ``<name>-async``."""

    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias
    async_config: aws.lambda_.FunctionEventInvokeConfig
    function_name: pulumi.Output[str]
    alias_arn: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: FunctionArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ami-upgrade:components:Function", name, None, opts)
        tags = dict(args.tags)

        # Created first: otherwise Lambda creates the group itself, without retention.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.function = aws.lambda_.Function(
            f"{name}-lambda",
            name=args.function_name,
            description="ami-upgrade: moves the fleet onto the AMI its SSM parameter names",
            role=args.role_arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=HANDLER,
            code=handler_archive(args.code_dir),
            publish=True,
            timeout=args.timeout_seconds,
            memory_size=args.memory_size,
            reserved_concurrent_executions=(args.reserved_concurrency
                                            if args.reserved_concurrency is not None else -1),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(args.environment)),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=self.log_group.name),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, delete_before_replace=True,
                depends_on=[self.log_group, *args.depends_on]),
        )
        self.alias = aws.lambda_.Alias(
            f"{name}-alias",
            name=args.alias_name,
            description="The version the trigger invokes",
            function_name=self.function.name,
            function_version=self.function.version,
            opts=pulumi.ResourceOptions(parent=self),
        )
        destination = None
        if args.on_failure_destination_arn:
            destination = aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=args.on_failure_destination_arn))
        self.async_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            qualifier=self.alias.name,
            maximum_event_age_in_seconds=args.maximum_event_age_seconds,
            maximum_retry_attempts=args.maximum_retry_attempts,
            destination_config=destination,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.function_name = self.function.name
        self.alias_arn = self.alias.arn
        self.alias_name = self.alias.name
        self.register_outputs({
            "function_name": self.function.name,
            "function_arn": self.function.arn,
            "version": self.function.version,
            "alias_arn": self.alias.arn,
            "log_group_name": self.log_group.name,
        })
