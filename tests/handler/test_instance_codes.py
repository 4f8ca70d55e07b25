"""Every code a standalone instance entry can carry is documented in the report contract."""

from __future__ import annotations

import re
from pathlib import Path

from handler.outcomes import Code

REPO = Path(__file__).resolve().parents[2]


def _documented() -> set[str]:
    """The codes the contract's generated table gives to instances, or to groups and instances."""
    text = (REPO / "docs" / "contracts.md").read_text()
    section = text.split("### Outcome codes", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \| (?:standalone instances|groups and instances) \|",
                          section, re.MULTILINE))


def _emitted() -> set[str]:
    found = set()
    for path in (REPO / "handler" / "standalone").glob("*.py"):
        found |= {Code[name].value for name in re.findall(r"\bCode\.([A-Z_]+)", path.read_text())}
    return found


def test_every_code_an_instance_entry_carries_is_in_the_contract():
    emitted = _emitted()
    assert {"replaced", "rolled_back", "progress_tags_kept", "planned"} <= emitted
    assert emitted == _documented()
