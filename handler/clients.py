"""The AWS clients the engine is given: built once per invocation, adaptive retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RETRY_CONFIG = {"retries": {"mode": "adaptive", "max_attempts": 10}}

# botocore's data loader, kept while the process lives (a warm Lambda reuses it).
_LOADER: Any = None


@dataclass(frozen=True)
class Clients:
    ec2: Any
    autoscaling: Any
    ssm: Any
    lambda_: Any
    sns: Any

    @classmethod
    def create(cls, session: Any = None) -> Clients:
        """Clients with adaptive retries (throttling backs off instead of failing the run).

        A fresh session per invocation (credentials and event hooks are not carried
        over), sharing one botocore data loader: parsing the service models (EC2's is
        megabytes of JSON) would otherwise cost most of a second per invocation.
        """
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session(botocore_session=_core_session())
        if _LOADER is not None:   # boto3 appends its data path to the loader per session
            _LOADER.search_paths[:] = list(dict.fromkeys(_LOADER.search_paths))
        config = Config(**RETRY_CONFIG, user_agent_extra="ami-upgrade")
        return cls(*(session.client(name, config=config)
                     for name in ("ec2", "autoscaling", "ssm", "lambda", "sns")))


def _core_session() -> Any:
    """A new botocore session on the process-wide data loader."""
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _LOADER)
    return core
