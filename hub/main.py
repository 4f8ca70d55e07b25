"""The promoter Lambda's entrypoint: ``hub.main.lambda_handler``.

Its environment (the hub stack renders it): ``HUB_SETTINGS`` (the hub's configuration
as :meth:`hub.settings.HubSettings.to_document` writes it), ``HUB_STATE_TABLE``,
``HUB_FUNCTION_ARN`` (what the bake-check schedules invoke), ``HUB_SCHEDULER_ROLE_ARN``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any

from hub.driver import Deployment, HubClients, Promoter
from hub.settings import load_hub_settings


def promoter_from_env(env: Mapping[str, str], session: Any = None) -> Promoter:
    """The promoter with clients in the hub account: SSM in every region of the waves,
    CloudWatch in every region of a gate alarm."""
    import boto3

    hub = load_hub_settings(json.loads(env["HUB_SETTINGS"]))
    session = session or boto3.session.Session()
    clients = HubClients(
        ssm={region: session.client("ssm", region_name=region)
             for region in {hub.region, *hub.regions}},
        dynamodb=session.client("dynamodb", region_name=hub.region),
        scheduler=session.client("scheduler", region_name=hub.region),
        cloudwatch={region: session.client("cloudwatch", region_name=region)
                    for region in {hub.region, *hub.alarm_regions}})
    deployment = Deployment(table_name=env["HUB_STATE_TABLE"],
                            function_arn=env["HUB_FUNCTION_ARN"],
                            scheduler_role_arn=env["HUB_SCHEDULER_ROLE_ARN"])
    return Promoter(hub, clients, deployment, now=lambda: dt.datetime.now(dt.UTC))


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    result = promoter_from_env(os.environ).handle(event)
    print(json.dumps({"event": "promoter", **result}, default=str))
    return result
