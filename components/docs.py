"""Files generated from the settings schema: the configuration reference and Pulumi.yaml.

``handler.settings.SCHEMA`` is the one description of every ``ami-upgrade:*`` key. Two
files render it so that neither can drift from the parsers:

- ``docs/configuration.md``: the keys (default, meaning) and the Lambda environment
  variables that carry them (format, meaning);
- ``docs/README.md``, the index of every page in ``docs/`` (a page added by hand is
  listed by its title after the next run);
- the outcome codes' table in ``docs/contracts.md`` (between its markers), from
  ``handler/outcomes.py``: each ``Code`` member with the actions and meaning its
  comments there give;
- ``Pulumi.yaml``'s project-level ``config:`` block, so that Pulumi itself checks a
  stack's values before the program runs: a type (``string``, ``integer``,
  ``boolean``, ``array`` of strings; objects stay untyped, Pulumi has no object type),
  a description and a default. Pulumi reports a declared key that a stack leaves unset
  and that has no default as missing, so every key but the required ones gets the
  default Pulumi hands the program when unset, chosen so that the key's parser reads it
  exactly as an unset key (``tests/infra/test_generated_docs.py`` checks each).

``python -m components.docs`` rewrites both (``make docs``); ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from handler.outcomes import Code
from handler.schema import Setting
from handler.settings import SCHEMA

REPO = Path(__file__).resolve().parent.parent
CONFIGURATION_DOC = Path("docs") / "configuration.md"
DOCS_INDEX = Path("docs") / "README.md"
PROJECT_FILE = Path("Pulumi.yaml")
CONTRACTS_DOC = Path("docs") / "contracts.md"
OUTCOMES_SOURCE = Path("handler") / "outcomes.py"
CODES_BEGIN = ("<!-- Generated from handler/outcomes.py by `python -m components.docs` "
               "(make docs): the table up to the end marker. -->\n")
CODES_END = "<!-- End of the generated outcome codes. -->\n"
NAMESPACE = "ami-upgrade"
REQUIRED = frozenset({"parameterName"})

PROJECT_HEAD = {
    "name": NAMESPACE,
    "description": "Keeps EC2 fleets on the AMI an SSM parameter names: an EventBridge rule on "
                   "the parameter's changes invokes a Lambda function (through its alias) that "
                   "starts instance refreshes for Auto Scaling groups and replaces standalone "
                   "instances.",
    "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}},
}
PROJECT_COMMENT = ("# Generated from handler/settings.py:SCHEMA by `python -m components.docs` "
                   "(make docs): do not edit the config block by hand.\n")

CONFIGURATION_INTRO = """\
# Configuration reference

<!-- Generated from handler/settings.py:SCHEMA by `python -m components.docs` (make docs). -->

Every key lives in the `ami-upgrade` namespace of `Pulumi.<stack>.yaml`. Pulumi checks
each value's type against the project's `config:` block (`Pulumi.yaml`, generated from
the same schema); then, during `pulumi preview`, the Lambda function's own parsers
(`handler/settings.py`) check each value, so a value that would fail in Lambda fails
the preview with a message naming the key. An unknown key (a typo such as
`ami-upgrade:dryrun`) fails the preview too. Lists are YAML lists, objects YAML mappings.

| key | default | meaning |
| --- | --- | --- |
| `aws:region` | required | the region of the stack (and of the fleet it manages) |
"""

ENVIRONMENT_INTRO = """
## Lambda environment

The stack sets these variables on the function from the keys above (lists and objects
as JSON, unset optional values as empty strings). When they do not fit Lambda's 4 KB
environment, the function gets only `CONFIGURATION_PARAMETER_NAME`: an SSM parameter
holding a JSON object of the same variables, read at start and parsed the same way.

| variable | format | meaning |
| --- | --- | --- |
"""

EXAMPLE = """
## Example: `asgConfigurations`

`default` applies to every group; a group's own entry is merged over it. The fields are
AWS's `RefreshPreferences` (checked against botocore's model of the shape, with the
rules AWS documents across fields) plus `Strategy` and `OnRefreshInProgress`:

```yaml
ami-upgrade:asgConfigurations:
  default:
    MinHealthyPercentage: 100      # never below full capacity:
    MaxHealthyPercentage: 200      # launch before terminating
    InstanceWarmup: 300
    CheckpointPercentages: [10, 50, 100]
    CheckpointDelay: 900
    SkipMatching: true
    AutoRollback: true
    OnRefreshInProgress: wait      # wait | cancel-and-restart | skip
  batch-workers:
    MinHealthyPercentage: 50
```
"""


def pulumi_type(setting: Setting) -> dict[str, Any]:
    """The Pulumi type of a key, from the Python type of the value its parser gives unset.

    ``bool`` -> boolean, ``int`` -> integer, a tuple -> array of strings, a mapping ->
    untyped (an object), anything else (text, an enum, None) -> string.
    """
    unset = None if setting.key in REQUIRED else setting.parse(None, setting.key)
    if isinstance(unset, bool):
        return {"type": "boolean"}
    if isinstance(unset, int):
        return {"type": "integer"}
    if isinstance(unset, tuple):
        return {"type": "array", "items": {"type": "string"}}
    if isinstance(unset, Mapping):
        return {}
    return {"type": "string"}


def pulumi_default(setting: Setting) -> Any:
    """The default Pulumi applies when a stack leaves the key unset (None: required).

    The parsed default for scalars (an enum as its value), otherwise the empty value of
    the key's type, which its parser reads as unset.
    """
    if setting.key in REQUIRED:
        return None
    unset = setting.parse(None, setting.key)
    if isinstance(unset, bool | int):
        return unset
    if isinstance(unset, str):
        return str(unset.value) if hasattr(unset, "value") else unset
    if isinstance(unset, tuple):
        return []
    if isinstance(unset, Mapping):
        return {}
    return ""


def plain(text: str) -> str:
    """A table cell's Markdown as plain text, for Pulumi's descriptions."""
    return text.replace("`", "")


def config_block() -> dict[str, dict[str, Any]]:
    """Pulumi.yaml's ``config:``: every schema key with its type, description and default."""
    block: dict[str, dict[str, Any]] = {}
    for setting in SCHEMA:
        default = pulumi_default(setting)
        description = plain(setting.doc)
        if default == "" and setting.default_doc != "none":
            description += f" (default {plain(setting.default_doc)})"
        entry: dict[str, Any] = {**pulumi_type(setting), "description": description}
        if default is not None:
            entry["default"] = default
        block[f"{NAMESPACE}:{setting.key}"] = entry
    return block


def project_file() -> str:
    """The whole of Pulumi.yaml."""
    head : str = yaml.safe_dump(PROJECT_HEAD, sort_keys=False, width=90)
    config : str = yaml.safe_dump({"config": config_block()}, sort_keys=False, width=90)
    return head + "\n" + PROJECT_COMMENT + config


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |\n"


def configuration_reference() -> str:
    """The whole of docs/configuration.md."""
    text = CONFIGURATION_INTRO
    text += "".join(_row(f"`{NAMESPACE}:{s.key}`", s.default_doc, s.doc) for s in SCHEMA)
    text += ENVIRONMENT_INTRO
    text += "".join(_row(f"`{s.env}`", s.env_format, s.env_doc) for s in SCHEMA if s.env)
    return text + EXAMPLE


# What each page is for, in the index's order; other pages follow by their title.
PAGES = {
    "configuration.md": "every `ami-upgrade:*` key, its default, and the function's "
                        "environment (generated from the schema)",
    "demo.md": "the demo's options, the faults it injects, `--reconcile`, `--serve`",
    "deploying.md": "referencing the AMI, what a stack creates, first deploy, preview "
                    "errors, CI",
    "operating.md": "the operator CLI: commands, options, exit codes",
    "monitoring.md": "log lines, metrics, alarms, dashboard, the scheduled reconcile",
    "what-can-go-wrong.md": "every failure the engine handles and what you see",
    "security.md": "the security model: scope, other orchestrators' marks, what the role "
                   "may write",
    "permissions.md": "the function's IAM policy, statement by statement, and how it is "
                      "checked",
    "contracts.md": "the entrypoint, events, the report and the tags",
    "scale.md": "benchmarks and large fleets",
    "development.md": "layout, checks, the lock file, generated files",
}
INDEX_INTRO = """\
# Documentation

<!-- Generated by `python -m components.docs` (make docs): every page of docs/. -->

[The README](../README.md) gets you from a clone to a converged demo and a deployed
stack. The reference:

| page | what |
| --- | --- |
"""


def title(path: Path) -> str:
    """A Markdown page's first heading, or its file name."""
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.name


def docs_index(root: Path = REPO) -> str:
    """The whole of docs/README.md: the known pages, then any other by its title."""
    present = {p.name for p in (root / "docs").glob("*.md")} | {CONFIGURATION_DOC.name}
    present.discard(DOCS_INDEX.name)
    rows = [(name, PAGES[name]) for name in PAGES if name in present]
    rows += [(name, title(root / "docs" / name)) for name in sorted(present - set(PAGES))]
    text = INDEX_INTRO + "".join(_row(f"[{name}]({name})", what) for name, what in rows)
    architecture = Path(os.path.relpath(root / "ARCHITECTURE.md", root / "docs")).as_posix()
    return text + _row(f"[ARCHITECTURE.md]({architecture})",
                       "how the code is organised and where to extend it")


_SECTION = re.compile(r"\s*# -+ (?P<section>.+)$")
_ACTIONS = re.compile(r"\s*# (?P<actions>[^:]+):$")
_MEMBER = re.compile(r'\s*(?P<name>[A-Z_]+) = "(?P<value>[a-z_]+)"\s*(?:# (?P<doc>.*))?$')


def code_rows(source: str) -> list[tuple[str, str, str, str]]:
    """(code, entries, actions, meaning) for each member of ``Code`` in ``source`` (the
    text of handler/outcomes.py): the section and the actions are the comment lines
    above the member, the meaning its own comment."""
    rows, section, actions = [], "", ""
    for line in source.splitlines():
        if found := _SECTION.match(line):
            section, actions = found["section"], ""
        elif found := _ACTIONS.match(line):
            actions = found["actions"]
        elif (found := _MEMBER.match(line)) and found["name"] in Code.__members__:
            rows.append((Code[found["name"]].value, section, actions, found["doc"] or ""))
    return rows


def codes_table(source: str) -> str:
    """The outcome codes' table, its markers included."""
    head = _row("`code`", "on", "action", "meaning") + _row("---", "---", "---", "---")
    return CODES_BEGIN + head + "".join(
        _row(f"`{code}`", section, actions, meaning)
        for code, section, actions, meaning in code_rows(source)) + CODES_END


def contracts(text: str, source: str) -> str:
    """``text`` (docs/contracts.md) with the table between its markers generated anew."""
    start, end = text.index(CODES_BEGIN), text.index(CODES_END) + len(CODES_END)
    return text[:start] + codes_table(source) + text[end:]


def generated(root: Path = REPO) -> dict[Path, str]:
    """Each generated file (relative to the repository) and its text; docs/contracts.md
    where it exists (its table is a part of a page written by hand)."""
    files = {CONFIGURATION_DOC: configuration_reference(), PROJECT_FILE: project_file(),
             DOCS_INDEX: docs_index(root)}
    if (root / CONTRACTS_DOC).is_file():
        files[CONTRACTS_DOC] = contracts((root / CONTRACTS_DOC).read_text(),
                                         (REPO / OUTCOMES_SOURCE).read_text())
    return files


def main(argv: list[str] | None = None, root: Path = REPO) -> int:
    """Write the generated files (or with ``--check``, list those that differ: exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m components.docs", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a file differs from the schema")
    args = parser.parse_args(argv)
    stale = []
    for relative, text in generated(root).items():
        path = root / relative
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(str(relative))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "differ from the schema" if args.check else "written"
    print(f"{', '.join(stale)}: {verb}" if stale else "up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
