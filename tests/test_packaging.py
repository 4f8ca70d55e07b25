"""The lock agrees with the declared dependencies; ``pip install .`` gives the CLI alone.

``requirements.txt`` (the Pulumi program), ``requirements-dev.txt`` (tests, tools) and
``pyproject.toml`` (the operator CLI) declare pins; ``requirements.lock`` pins every
package they pull in, with hashes, and is what ``make`` and ``.ci/run`` install.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[normalise(match["name"])] = match["version"]
    return found


def requirement_file(name: str) -> dict[str, str]:
    return pins((REPO / name).read_text().splitlines())


def declared() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {**requirement_file("requirements.txt"), **requirement_file("requirements-dev.txt"),
            **pins(project["dependencies"])}


def lock_entries() -> dict[str, list[str]]:
    """Each locked requirement's text (its pin, hashes and ``# via`` lines)."""
    entries: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if PIN.match(line):
            current = [line]
            entries[normalise(PIN.match(line)["name"])] = current
        elif line.startswith(" ") and current:
            current.append(line.strip())
    return entries


def test_every_declared_pin_is_locked_at_its_version():
    locked = {name: pins(lines[:1])[name] for name, lines in lock_entries().items()}
    assert {name: (version, locked.get(name)) for name, version in declared().items()
            if locked.get(name) != version} == {}


def test_every_locked_package_has_hashes():
    assert [name for name, lines in lock_entries().items()
            if not any(line.startswith("--hash=sha256:") for line in lines)] == []


def test_every_locked_package_is_wanted_by_a_declared_or_locked_one():
    entries = lock_entries()
    inputs = {"-r requirements-dev.txt", "-r requirements.txt"}
    orphans = []
    for name, lines in entries.items():
        via = [line.removeprefix("# via").strip(" #") for line in lines
               if line.startswith("#")]
        wanters = {w for w in via if w} | {line.strip("# ") for line in lines[1:]
                                            if line.startswith("#   ")}
        if not any(w in inputs or normalise(w.split()[0]) in entries for w in wanters):
            orphans.append(name)
    assert orphans == []


def test_the_cli_dependencies_are_declared_for_development_too():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    dev = {**requirement_file("requirements.txt"), **requirement_file("requirements-dev.txt")}
    assert {name: version for name, version in pins(project["dependencies"]).items()
            if dev.get(name) != version} == {}


def test_make_and_ci_install_from_the_lock_with_hashes():
    makefile = (REPO / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements.lock" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--quiet", "--wheel-dir", str(out), str(REPO)], check=True,
                   capture_output=True, timeout=300)
    [built] = out.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_one_top_level_package(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"ami_upgrade_cli"}


def test_the_wheel_carries_every_module_the_cli_imports_from_the_project(wheel):
    shipped = {name for name in wheel.namelist() if name.endswith(".py")}
    expected = {f"ami_upgrade_cli/_project/{path.relative_to(REPO).as_posix()}"
                for folder in ("handler", "components") for path in (REPO / folder).rglob("*.py")}
    assert expected - shipped == set()


def test_the_wheel_declares_the_cli_dependencies(wheel):
    [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [line.removeprefix("Requires-Dist: ")
                for line in wheel.read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist: ")]
    assert pins(requires) == {"boto3": declared()["boto3"], "pyyaml": declared()["pyyaml"],
                              "rich": declared()["rich"]}
