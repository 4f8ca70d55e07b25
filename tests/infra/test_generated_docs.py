"""docs/configuration.md and Pulumi.yaml's config block are the settings schema, rendered.

Pulumi's own rules for a project's ``config:`` block are restated here from its
documentation (types ``string``, ``integer``, ``boolean``, ``array`` with ``items``; a
declared key a stack leaves unset needs a default, else Pulumi reports it missing; a
default must have the declared type; unset keys get the default as text, lists and
objects as JSON), so a declaration Pulumi would refuse fails here, offline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import docs
from handler.outcomes import Code
from handler.settings import SCHEMA

REPO = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


def declared() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]


def pulumi_accepts(declaration: dict[str, Any], value: Any) -> bool:
    """Pulumi's check of a value against a declared type (untyped: anything)."""
    kind = declaration.get("type")
    if kind is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value == math.trunc(value)):
            return True
        return isinstance(value, str) and value.lstrip("-").isdigit()
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    items = declaration.get("items")
    return (kind == "array" and isinstance(value, list) and items is not None
            and all(pulumi_accepts(items, item) for item in value))


def as_pulumi_hands_it(value: Any) -> str:
    """An unset key's default as the program reads it: text, lists and objects as JSON."""
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_the_configuration_reference_is_generated_from_the_schema():
    assert (REPO / docs.CONFIGURATION_DOC).read_text() == docs.configuration_reference()


def test_pulumi_yaml_is_generated_from_the_schema():
    assert (REPO / docs.PROJECT_FILE).read_text() == docs.project_file()


def test_the_docs_index_is_generated_from_the_pages_present():
    assert (REPO / docs.DOCS_INDEX).read_text() == docs.docs_index()


def test_the_contracts_outcome_codes_are_generated_from_the_enum():
    contracts = (REPO / docs.CONTRACTS_DOC).read_text()
    source = (REPO / docs.OUTCOMES_SOURCE).read_text()
    assert contracts == docs.contracts(contracts, source)
    rows = docs.code_rows(source)
    assert [code for code, *_ in rows] == [c.value for c in Code]   # every member, in order
    assert all(meaning for *_, meaning in rows)
    assert ("| `already_current` | groups and instances | skipped |" in contracts
            and "| `start_deferred` | Auto Scaling groups | deferred |" in contracts)


def test_the_codes_table_is_rewritten_between_its_markers_only():
    page = f"# Contracts\nbefore\n{docs.CODES_BEGIN}| stale |\n{docs.CODES_END}after\n"
    source = ('class Code(StrEnum):\n    # ---- runs\n    # failed:\n'
              '    STEP_FAILED = "step_failed"   # a step failed\n')
    assert docs.contracts(page, source) == (
        f"# Contracts\nbefore\n{docs.CODES_BEGIN}| `code` | on | action | meaning |\n"
        "| --- | --- | --- | --- |\n| `step_failed` | runs | failed | a step failed |\n"
        f"{docs.CODES_END}after\n")


def test_the_docs_index_lists_a_page_added_by_hand_by_its_title(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "demo.md").write_text("# Demo\n")
    (tmp_path / "docs" / "zz-notes.md").write_text("intro\n# Field notes\n")
    index = docs.docs_index(tmp_path)
    assert "| [demo.md](demo.md) | the demo's options" in index
    assert "| [configuration.md](configuration.md) |" in index
    assert index.index("demo.md") < index.index("| [zz-notes.md](zz-notes.md) | Field notes |")


def test_pulumi_yaml_declares_every_schema_key_and_nothing_else():
    assert list(declared()) == [f"ami-upgrade:{s.key}" for s in SCHEMA]


def test_only_the_required_key_has_no_default():
    assert [key for key, d in declared().items() if "default" not in d] == [
        "ami-upgrade:parameterName"]


@pytest.mark.parametrize("setting", SCHEMA, ids=lambda s: s.key)
def test_a_declared_default_has_its_declared_type(setting):
    declaration = declared()[f"ami-upgrade:{setting.key}"]
    assert declaration.get("type") in (None, "string", "integer", "boolean", "array")
    assert declaration.get("type") != "array" or "items" in declaration
    if "default" in declaration:
        assert pulumi_accepts(declaration, declaration["default"])


@pytest.mark.parametrize("setting", [s for s in SCHEMA if s.key not in docs.REQUIRED],
                         ids=lambda s: s.key)
def test_a_pulumi_default_parses_as_an_unset_key(setting):
    default = declared()[f"ami-upgrade:{setting.key}"]["default"]
    assert setting.parse(as_pulumi_hands_it(default), setting.key) == setting.parse(
        None, setting.key)


@pytest.mark.parametrize("stack", STACKS)
def test_the_committed_stacks_have_the_declared_types(stack):
    config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    declarations = declared()
    refused = {key: value for key, value in config.items()
               if key.startswith("ami-upgrade:") and not pulumi_accepts(declarations[key], value)}
    assert refused == {}


def test_a_value_of_another_type_is_refused_by_the_declaration():
    declarations = declared()
    assert not pulumi_accepts(declarations["ami-upgrade:memorySize"], "lots")
    assert not pulumi_accepts(declarations["ami-upgrade:excludedAsgs"], "web,api")
    assert not pulumi_accepts(declarations["ami-upgrade:dryRun"], "yes")


def test_check_mode_names_a_stale_file_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "Pulumi.yaml").write_text("name: ami-upgrade\n")
    assert docs.main(["--check"], root=tmp_path) == 1
    assert (tmp_path / "Pulumi.yaml").read_text() == "name: ami-upgrade\n"
    assert not (tmp_path / "docs").exists()
    assert ("docs/configuration.md, Pulumi.yaml, docs/README.md: differ from the schema"
            in capsys.readouterr().out)


def test_writing_makes_the_files_current(tmp_path):
    assert docs.main([], root=tmp_path) == 0
    assert docs.main(["--check"], root=tmp_path) == 0
