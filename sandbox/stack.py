"""A stack's settings read from ``Pulumi.<stack>.yaml``, as ``pulumi up`` would read them.

The values go through ``components.stack_settings.load_stack_settings``, the
parser the Pulumi program uses, so the sandbox deploys exactly what the stack
deploys (same environment variables, same trigger, same alias and timeout).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components.stack_settings import NAMESPACE, StackSettings, load_stack_settings
from handler.settings import SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent


class StackError(ValueError):
    """The stack does not exist or its configuration is invalid; the message says which."""


def stack_names(root: Path = REPO_ROOT) -> tuple[str, ...]:
    """The stacks that have a ``Pulumi.<stack>.yaml`` in ``root``."""
    return tuple(sorted(p.name[len("Pulumi."):-len(".yaml")]
                        for p in root.glob("Pulumi.*.yaml")))


def load_stack(stack: str, root: Path = REPO_ROOT) -> StackSettings:
    """The validated settings of ``stack``; StackError naming the file and key otherwise."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stack_names(root)) or "none"
        raise StackError(f"stack {stack!r}: no {path.name} in {root} (stacks: {known})")
    try:
        document = yaml.safe_load(path.read_text()) or {}
        project_document = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StackError(f"{path.name}: cannot be read: {exc}") from None
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackError(f"{path.name}: 'config' must be a mapping")
    prefix = f"{NAMESPACE}:"
    values = {key[len(prefix):]: value for key, value in config.items()
              if isinstance(key, str) and key.startswith(prefix)}
    try:
        return load_stack_settings(values, stack=stack, region=config.get("aws:region"),
                                   project=project_document.get("name", "ami-upgrade"))
    except SettingsError as exc:
        raise StackError(f"{path.name}: {exc}") from None
