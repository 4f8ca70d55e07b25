"""Render the real Pulumi program (``__main__.py``) for a stack under Pulumi's mocks.

No Pulumi CLI, no cloud: the stack's ``Pulumi.<stack>.yaml`` is loaded into the
runtime's config exactly as the CLI would pass it (structured values as JSON
text), ``__main__.py`` runs as the program, and every resource registration is
recorded with its inputs, its URN (the parent chain) and its dependencies.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.settings import SETTINGS, reset_options
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "__main__.py"
PROJECT = "ami-upgrade"
ACCOUNT = "123456789012"


def stack_config(stack: str) -> dict[str, Any]:
    """The ``config:`` of ``Pulumi.<stack>.yaml`` as YAML values."""
    return dict(yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"])


def as_cli_config(config: dict[str, Any]) -> dict[str, str]:
    """What the CLI hands the program: strings, structured values as JSON."""
    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)
    return {key: text(value) for key, value in config.items()}


@dataclass(frozen=True)
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: tuple[str, ...]
    parent: str  # the parent's URN ("" for none)


@dataclass
class Rendered:
    stack: str
    config: dict[str, Any]
    resources: list[Registration] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, under: str = "") -> Registration:
        """The only resource of ``type_`` (whose name starts with ``under``, when given)."""
        found = [r for r in self.of_type(type_) if r.name.startswith(under)]
        assert len(found) == 1, f"expected one {type_}, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration | None:
        return next((r for r in self.resources if r.urn == urn), None)

    def ancestors(self, resource: Registration) -> list[str]:
        """The types of the resource's parents, innermost first (the stack last)."""
        types, parent = [], resource.parent
        while parent:
            registered = self.by_urn(parent)
            if registered is None:  # the root stack is not recorded
                types.append(parent.split("::")[2].split("$")[-1])
                break
            types.append(registered.type)
            parent = registered.parent
        return types

    @property
    def custom(self) -> list[Registration]:
        return [r for r in self.resources if not r.type.startswith("ami-upgrade:")]


class _Mocks(pulumi.runtime.Mocks):
    """Answers registrations with plausible AWS outputs (ARNs, versions, names)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.inputs[(args.typ, args.name)] = dict(args.inputs)
        outputs = dict(args.inputs)
        name = outputs.get("name") or args.name
        outputs.setdefault("name", name)
        prefix = f"arn:aws:{{}}:{self.region}:{ACCOUNT}"
        arn = {
            "aws:iam/role:Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "aws:lambda/function:Function": f"{prefix.format('lambda')}:function:{name}",
            "aws:lambda/alias:Alias":
                f"{prefix.format('lambda')}:function:{outputs.get('functionName')}:{name}",
            "aws:cloudwatch/eventRule:EventRule": f"{prefix.format('events')}:rule/{name}",
            "aws:cloudwatch/logGroup:LogGroup": f"{prefix.format('logs')}:log-group:{name}",
            "aws:cloudwatch/metricAlarm:MetricAlarm": f"{prefix.format('cloudwatch')}:alarm:{name}",
        }.get(args.typ, f"{prefix.format('mock')}:{args.typ}/{name}")
        outputs["arn"] = arn
        if args.typ == "aws:lambda/function:Function":
            outputs["version"] = "1"
            outputs["qualifiedArn"] = f"{arn}:1"
        return f"{name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
                    "userId": "AIDATEST", "id": ACCOUNT}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com",
                    "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
        raise NotImplementedError(f"unexpected invoke {args.token}")


class _Monitor(pulumi_mocks.MockMonitor):
    """Also records each registration's parent and dependencies (depends_on and inputs')."""

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[str, tuple[str, ...]] = {}
        self.parents: dict[str, str] = {}

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        deps = set(request.dependencies)
        for prop in request.propertyDependencies.values():
            deps.update(prop.urns)
        self.dependencies[urn] = tuple(sorted(deps))
        self.parents[urn] = request.parent
        return super().RegisterResource(request)


def render(stack: str, overrides: dict[str, Any] | None = None,
           via_environment: bool = False) -> Rendered:
    """Run ``__main__.py`` for ``stack`` (its YAML config, plus ``overrides``) under mocks.

    ``via_environment``: pass the config in ``PULUMI_CONFIG`` (as the CLI's language
    host does) instead of setting it in the runtime (as the Automation API does).
    """
    config = stack_config(stack)
    config.update(overrides or {})
    region = str(config.get("aws:region", "us-east-1"))
    mocks = _Mocks(region)
    monitor = _Monitor(mocks)

    reset_options(project=PROJECT, stack=stack)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config({} if via_environment else as_cli_config(config), [])
    environment = {"PULUMI_CONFIG": json.dumps(as_cli_config(config))} if via_environment else {}
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False,
                             monitor=monitor)

    exports: dict[str, Any] = {}

    def program() -> None:
        with (mock.patch.object(pulumi, "export", exports.__setitem__),
              mock.patch.dict(os.environ, environment)):
            runpy.run_path(str(PROGRAM), run_name="__main__")
        _sync_await(pulumi.Output.from_input(exports).future())

    _sync_await(run_pulumi_func(program))
    resolved = _sync_await(pulumi.Output.from_input(exports).future()) if exports else {}

    rendered = Rendered(stack=stack, config=config, exports=dict(resolved or {}))
    for urn, registration in monitor.resources.items():
        type_ = urn.split("::")[2].split("$")[-1]
        rendered.resources.append(Registration(
            type=type_,
            name=urn.split("::")[-1],
            urn=urn,
            inputs=mocks.inputs.get((type_, urn.split("::")[-1]), {}),
            outputs=dict(registration.state),
            dependencies=monitor.dependencies.get(urn, ()),
            parent=monitor.parents.get(urn, ""),
        ))
    return rendered


@cache
def rendered_stack(stack: str) -> Rendered:
    """One render per stack and test process (renders are deterministic)."""
    return render(stack)


def resource_class(type_: str) -> type:
    """The pulumi_aws class for a type token such as ``aws:lambda/function:Function``."""
    package, module_path, class_name = type_.split(":")
    module = module_path.split("/")[0]
    module = {"lambda": "lambda_"}.get(module, module)
    return getattr(importlib.import_module(f"pulumi_{package}.{module}"), class_name)


def is_taggable(type_: str) -> bool:
    """Whether the resource type has a ``tags`` input."""
    cls = resource_class(type_)
    args_class = getattr(importlib.import_module(cls.__module__), f"{class_name(type_)}Args")
    return hasattr(args_class, "tags")


def class_name(type_: str) -> str:
    return type_.split(":")[-1]
