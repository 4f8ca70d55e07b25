"""``python -m sandbox`` as a user runs it: exit status, report file, ``--serve``."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from sandbox.__main__ import main, parse_args

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120


def sandbox_process(*args: str, sigint_ignored: bool = False) -> subprocess.Popen:
    """``python -m sandbox``; ``sigint_ignored``: started as a shell starts ``cmd &``."""
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen([sys.executable, "-m", "sandbox", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=ignore)


def test_python_m_sandbox_exits_zero_and_writes_the_report(tmp_path):
    path = tmp_path / "demo.json"

    done = subprocess.run([sys.executable, "-m", "sandbox", "--json", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)

    report = json.loads(path.read_text())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (report["stack"], report["converged"], report["exit_code"]) == ("dev", True, 0)
    assert report["report"]["ami_id"] == report["new_ami"]
    assert path.with_suffix(".log").read_text().count('"event"') > 0


def test_an_unknown_fault_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--fault", "meteor-strike"])

    assert exit_info.value.code == 2


def test_fault_and_dry_run_together_are_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--fault", "launch-failure", "--dry-run"])

    assert exit_info.value.code == 2


def test_an_unknown_stack_exits_2_and_writes_no_report(tmp_path, capsys):
    path = tmp_path / "demo.json"

    code = main(["--stack", "staging", "--json", str(path)])

    assert code == 2
    assert "Pulumi.staging.yaml" in capsys.readouterr().out
    assert not path.exists()


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.mark.parametrize("sigint_ignored", [False, True],
                         ids=["interactive", "started-in-background"])
def test_serve_answers_the_aws_api_on_loopback_until_interrupted(tmp_path, sigint_ignored):
    path = tmp_path / "serve.json"
    process = sandbox_process("--serve", "--port", "0", "--json", str(path),
                              sigint_ignored=sigint_ignored)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        endpoint = None
        while endpoint is None:
            line = lines.get(timeout=TIMEOUT)
            assert line is not None, "the sandbox exited before serving"
            if line.startswith("embedded AWS listening on "):
                endpoint = line.split()[4]
        report = json.loads(path.read_text())
        client = dict(endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
        ec2 = boto3.client("ec2", **client)
        autoscaling = boto3.client("autoscaling", **client)

        served = {i["InstanceId"]: i["ImageId"]
                  for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
        web = next(g for g in report["estate"]["groups"] if g["name"] == "web")
        refresh = autoscaling.describe_instance_refreshes(AutoScalingGroupName="web")

        assert endpoint.startswith("http://127.0.0.1:")
        assert {served[i] for i in web["instances_after"]} == set(web["images_after"])
        assert [r["Status"] for r in refresh["InstanceRefreshes"]] == ["Successful"]
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=TIMEOUT)
    assert code == report["exit_code"]
