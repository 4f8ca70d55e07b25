"""The demo's sample outputs in the README and docs/, taken from real runs.

A sample is a fenced block between ``<!-- sample: NAME -->`` and ``<!-- /sample -->``
in a Markdown file; NAME is one of :data:`SAMPLES` (the demo's arguments). ``python -m
sandbox.samples`` runs each demo in process (fixed seed, fixed width, no colour) and
writes its output into every block of that name; ``tests/sandbox/test_samples.py``
runs them again and compares, after :func:`mask` has replaced what differs from run to
run (IDs moto draws, refresh IDs, wall time, file paths). So a sample cannot go stale.
"""

from __future__ import annotations

import io
import re
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from .core import embedded_aws
from .demo import DemoOptions, run_demo

REPO = Path(__file__).resolve().parent.parent
WIDTH = 150
SAMPLES: dict[str, DemoOptions] = {
    "demo": DemoOptions(),
    "launch-failure": DemoOptions(fault="launch-failure"),
    "reconcile": DemoOptions(reconcile=True),
}
DOCUMENTS = ("README.md", "docs/demo.md")
BLOCK = re.compile(r"(<!-- sample: (?P<name>[\w-]+) -->\n```text\n)(?P<body>.*?)"
                   r"(```\n<!-- /sample -->)", re.DOTALL)
VARYING = (
    (re.compile(r"\bi-[0-9a-f]{17}\b"), "i-…"),
    (re.compile(r"\bvol-[0-9a-f]{17}\b"), "vol-…"),
    (re.compile(r"\b[0-9a-f]{8}\b"), "<refresh>"),
    (re.compile(r"real time \d+\.\d+s"), "real time …s"),
    # The emulated clock starts at the wall clock's time: retry times are dates of the run.
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<time>"),
    (re.compile(r"(report|function logs) \S+"), r"\1 …"),
)


def mask(text: str) -> str:
    """``text`` with what varies between runs replaced, and trailing spaces dropped."""
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def render(name: str) -> str:
    """The output of the demo ``name`` as a user sees it in a log (no terminal)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=WIDTH, color_system=None, force_terminal=False,
                      soft_wrap=True)
    with tempfile.TemporaryDirectory() as directory:
        options = SAMPLES[name]
        report = Path(directory) / "reports" / f"demo-{options.stack}.json"
        with embedded_aws() as aws:
            run_demo(DemoOptions(**{**options.__dict__, "json_path": report}), aws, console)
    text = buffer.getvalue().replace(directory + "/", "")
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def blocks(text: str) -> list[tuple[str, str]]:
    """Each sample block in a document: (name, body)."""
    return [(m["name"], m["body"]) for m in BLOCK.finditer(text)]


def fill(text: str, outputs: dict[str, str]) -> str:
    """``text`` with every sample block's body replaced by its output."""
    return BLOCK.sub(lambda m: m[1] + outputs[m["name"]] + m[4], text)


def main() -> int:
    """Run every sample and write it into the documents."""
    outputs = {name: render(name) for name in SAMPLES}
    for relative in DOCUMENTS:
        path = REPO / relative
        path.write_text(fill(path.read_text(), outputs))
        print(f"{relative}: {len(blocks(path.read_text()))} sample(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
