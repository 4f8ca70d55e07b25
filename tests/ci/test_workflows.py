"""The GitHub Actions workflows pass actionlint, and actionlint really rejects a broken one.

actionlint is a pinned dev dependency (a wheel that ships the binary), so a broken
workflow fails ``make test`` locally instead of on GitHub.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BROKEN = ROOT / "tests" / "fixtures" / "workflows" / "broken.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def actionlint() -> str:
    """The binary installed beside this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: pip install -r requirements-dev.txt")
    return found


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", "-oneline", *map(str, paths)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def test_workflows_pass_actionlint():
    files = workflow_files()
    assert {f.name for f in files} >= {"tests.yml", "preview.yml", "deploy.yml"}
    result = lint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_fails_actionlint():
    result = lint(BROKEN)
    assert result.returncode == 1, result.stdout + result.stderr
    # Each deliberate mistake is reported on its line.
    lines = {int(m.group(1)) for m in re.finditer(r"broken\.yml:(\d+):", result.stdout)}
    assert {8, 16, 20} <= lines, result.stdout


def test_every_action_is_pinned_to_a_commit():
    for path in workflow_files():
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)", line)
            if match and not match.group(1).startswith("./"):
                assert PINNED.match(match.group(1)), f"{path.name}: {line.strip()}"


def test_every_job_declares_its_permissions():
    for path in workflow_files():
        document = yaml.safe_load(path.read_text())
        assert document.get("permissions") == {"contents": "read"}, path.name
        for name, job in document["jobs"].items():
            if "uses" in job and "permissions" not in job:
                pytest.fail(f"{path.name}: job {name} calls a workflow without permissions")
            if "id-token" in job.get("permissions", {}):
                assert job["permissions"]["id-token"] == "write", (path.name, name)


def test_prod_deploys_only_through_its_environment_one_at_a_time():
    up = yaml.safe_load((WORKFLOWS / "pulumi-up.yml").read_text())["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-up-${{ inputs.stack }}",
                                 "cancel-in-progress": False}
    jobs = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())["jobs"]
    assert jobs["prod"]["needs"] == "dev"
    assert jobs["prod"]["with"] == {"stack": "prod"}
    text = "\n".join(p.read_text() for p in workflow_files())
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_deploys_run_only_from_main_after_the_tests():
    deploy = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())
    jobs = deploy["jobs"]
    assert jobs["tests"]["uses"] == "./.github/workflows/tests.yml"
    assert jobs["dev"]["needs"] == "tests"
    for name in ("tests", "dev", "prod"):
        assert jobs[name]["if"] == "github.ref == 'refs/heads/main'", name
    tests = yaml.safe_load((WORKFLOWS / "tests.yml").read_text())
    assert "workflow_call" in tests[True]          # YAML reads the key `on` as True


def test_no_workflow_inherits_or_passes_secrets():
    for path in workflow_files():
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            assert "secrets" not in job, f"{path.name}: job {name} passes secrets"


def test_previews_hold_nothing_a_deploy_uses():
    """The preview runs a pull request's code: its own environment, its own secret names,
    the read-only role; the deploy's secrets and role appear nowhere in it."""
    preview = (WORKFLOWS / "preview.yml").read_text()
    job = yaml.safe_load(preview)["jobs"]["preview"]
    assert job["environment"] == "preview"
    assert job["env"] == {
        "PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}",
        "PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PULUMI_PREVIEW_CONFIG_PASSPHRASE }}"}
    used = set(re.findall(r"secrets\.(\w+)", preview))
    assert used == {"PULUMI_PREVIEW_ACCESS_TOKEN", "PULUMI_PREVIEW_CONFIG_PASSPHRASE",
                    "GITHUB_TOKEN"}
    assert "AWS_DEPLOY_ROLE_ARN" not in preview
