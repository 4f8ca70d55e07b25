"""A fault run proves something only if the fault happened."""

from __future__ import annotations

from .estate import demo_run


def test_a_crash_that_never_fires_fails_the_run_even_though_the_fleet_converged(tmp_path):
    with demo_run(tmp_path, fault="crash-after:100000") as (_aws, result):
        assert result.exit_code == 1
        assert result.verdict.problems() == [
            "estate run: fault crash-after:100000 never fired: the run made fewer mutating "
            "calls"]
