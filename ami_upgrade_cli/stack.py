"""The stack's settings from ``Pulumi.<stack>.yaml``, through the program's own parser."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.stack_settings import StackSettings, load_stack_settings

from . import EXIT_USAGE
from .errors import CliError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "ami-upgrade"      # the config namespace of Pulumi.<stack>.yaml


def project_dir(given: Path | None) -> Path:
    """``--project-dir``, else the current directory when it holds Pulumi.yaml, else the
    checkout this package runs from (an installed package has none: the current directory)."""
    if given:
        return given
    cwd = Path.cwd()
    if (cwd / "Pulumi.yaml").is_file() or not (PACKAGE_ROOT / "Pulumi.yaml").is_file():
        return cwd
    return PACKAGE_ROOT


def stack_names(root: Path) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load(stack: str, root: Path) -> StackSettings:
    """Validated settings, or a usage error naming the file and the key."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stack_names(root)) or "none"
        raise CliError(EXIT_USAGE, f"stack {stack!r}: no {path.name} in {root} "
                                   f"(stacks there: {known})")
    try:
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        project_file = root / "Pulumi.yaml"
        project = ((yaml.safe_load(project_file.read_text()) or {}).get("name")
                   if project_file.is_file() else None) or "ami-upgrade"
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise CliError(EXIT_USAGE, f"{path.name}: cannot be read: {exc}") from None
    prefix = f"{NAMESPACE}:"
    values = {k[len(prefix):]: v for k, v in config.items()
              if isinstance(k, str) and k.startswith(prefix)}
    try:
        return load_stack_settings(values, stack=stack, region=config.get("aws:region"),
                                   project=project, root=root)
    except ValueError as exc:       # handler.settings.SettingsError names the key
        raise CliError(EXIT_USAGE, f"{path.name}: {exc}") from None
