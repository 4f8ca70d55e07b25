"""The handler's modules import each other without cycles (type-only imports aside).

A cycle is what made ``asg``, ``engine`` and ``standalone`` import each other lazily;
the run core (``handler/run.py``) and ``handler/aws.py`` import no subsystem.
"""

from __future__ import annotations

import ast
from pathlib import Path

HANDLER = Path(__file__).resolve().parents[2] / "handler"


def module_name(path: Path) -> str:
    parts = path.relative_to(HANDLER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """Modules of the handler that ``path`` imports when it is imported."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:   # module level only: not TYPE_CHECKING
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("handler"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if (HANDLER.parent / sub.replace(".", "/")).with_suffix(".py")
                          .exists() or (HANDLER.parent / sub.replace(".", "/")).is_dir()
                          else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("handler")}
    return found - {name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): runtime_imports(p) for p in HANDLER.rglob("*.py")}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_the_scan_sees_the_imports():
    edges = graph()
    assert "handler.run" in edges["handler.engine"]
    assert "handler.standalone.registry" in edges["handler.standalone.plan"]


def test_no_import_cycles_in_the_handler():
    assert cycles(graph()) == []


def test_the_core_imports_no_subsystem():
    edges = graph()
    for core in ("handler.run", "handler.aws", "handler.report", "handler.tags"):
        assert not {m for m in edges[core]
                    if m.startswith(("handler.asg", "handler.standalone", "handler.engine"))}, core


def test_a_cycle_is_found_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
