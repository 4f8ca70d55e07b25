"""The AWS clients the engine is given: built once per invocation, adaptive retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RETRY_CONFIG = {"retries": {"mode": "adaptive", "max_attempts": 10}}


@dataclass(frozen=True)
class Clients:
    ec2: Any
    autoscaling: Any
    ssm: Any
    lambda_: Any
    sns: Any

    @classmethod
    def create(cls, session: Any = None) -> Clients:
        """Clients with adaptive retries (throttling backs off instead of failing the run)."""
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session()
        config = Config(**RETRY_CONFIG, user_agent_extra="ami-upgrade")
        return cls(*(session.client(name, config=config)
                     for name in ("ec2", "autoscaling", "ssm", "lambda", "sns")))
