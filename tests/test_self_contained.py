"""The repository carries every file it reads: a user's clone has nothing beside it.

A scan of the project's own files for paths that leave the repository root:
``../`` in a string, ``".."`` or ``os.pardir`` as a path part, ``parents[N]`` climbing
above the root from where the file sits, and absolute paths into this workplace.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCANNED_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".txt"}
SCANNED_NAMES = {"Makefile", "run"}

# A relative parent in a string literal ("../x", '..\\x'), ".." as a path part, os.pardir.
PARENT_STRING = re.compile(r"""["'][^"'\n]*\.\.[/\\]|["']\.\.["']|os\.pardir""")
PARENTS_INDEX = re.compile(r"parents\[(\d+)\]")
WORKPLACE_ABSOLUTE = re.compile(r"""["']/work/""")


def project_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    paths = [REPO / line for line in listed.splitlines() if line]
    return [p for p in paths if p.is_file()
            and (p.suffix in SCANNED_SUFFIXES or p.name in SCANNED_NAMES)
            and "fixtures" not in p.relative_to(REPO).parts
            and p != Path(__file__).resolve()]  # this file holds the bad samples on purpose


def escapes(path: Path, text: str) -> list[str]:
    """Lines of ``text`` (the file at ``path``) that name a place outside the repository."""
    depth = len(path.relative_to(REPO).parts) - 1  # folders between the root and the file
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if PARENT_STRING.search(line) or WORKPLACE_ABSOLUTE.search(line):
            found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
            continue
        for match in PARENTS_INDEX.finditer(line):
            if int(match.group(1)) > depth:
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    return found


def test_no_project_file_names_a_path_outside_the_repository():
    files = project_files()
    assert len(files) > 50, f"the scan found only {len(files)} files: the listing is wrong"
    offenders = [hit for path in files for hit in escapes(path, path.read_text(errors="replace"))]
    assert offenders == []


@pytest.mark.parametrize("line", [
    'FIXTURES = (REPO / ".." / "sibling" / "fixtures").resolve()',
    'open("../sibling/fixtures/events/x.json")',
    "ROOT = Path(__file__).resolve().parents[3]",
    'os.path.join(here, os.pardir, "sibling")',
    'DATA = Path("/work/sibling/fixtures")',
])
def test_scan_flags_a_path_that_leaves_the_repository(line):
    assert escapes(REPO / "tests" / "handler" / "example.py", line) != []


@pytest.mark.parametrize("line", [
    "REPO = Path(__file__).resolve().parents[2]",
    "from ..run import RunContext",
    'text = "waiting..."',
])
def test_scan_accepts_paths_inside_the_repository(line):
    assert escapes(REPO / "tests" / "handler" / "example.py", line) == []


def test_event_fixtures_are_read_from_inside_the_repository(fixtures_dir):
    assert fixtures_dir.resolve().is_relative_to(REPO)
    names = sorted(p.name for p in (fixtures_dir / "events").glob("*.json"))
    assert names == [
        "autoscaling-refresh-succeeded.json",
        "cloudtrail-put-parameter-failed.json",
        "cloudtrail-put-parameter-other-name.json",
        "cloudtrail-put-parameter.json",
        "parameter-store-change-create.json",
        "parameter-store-change-delete.json",
        "parameter-store-change-invalid-image.json",
        "parameter-store-change-update.json",
    ]
