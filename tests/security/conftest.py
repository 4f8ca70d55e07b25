"""The security suite attacks the function on the embedded AWS with the handler suite's
builders: its fixtures (``aws``, ``estate``, ``function``, ``api_calls``...) are the
handler suite's own, and ``standalone_estate`` is importable here too."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from sandbox.faults import SimulatedCrash

HANDLER_TESTS = Path(__file__).resolve().parents[1] / "handler"
if str(HANDLER_TESTS) not in sys.path:
    sys.path.insert(0, str(HANDLER_TESTS))

_spec = importlib.util.spec_from_file_location("handler_suite_fixtures",
                                               HANDLER_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fixtures
_spec.loader.exec_module(_fixtures)

aws = _fixtures.aws
ec2 = _fixtures.ec2
images = _fixtures.images
estate = _fixtures.estate
function = _fixtures.function
api_calls = _fixtures.api_calls
log_lines = _fixtures.log_lines
logged_events = _fixtures.logged_events


# ---------------------------------------------------------------- shared by the attacks
from standalone_estate import build_estate, set_parameter  # noqa: E402  (on the path above)


@pytest.fixture
def fleet(estate):
    """One Auto Scaling group ``web`` on its template (version 1), following the parameter."""
    estate.group("web")
    return estate


@pytest.fixture
def standalone(aws):
    """The standalone estate (``standalone_estate``), its parameter on the new image."""
    built = build_estate()
    set_parameter(built.new_ami)
    return built


def untouched(fleet, api_calls) -> None:
    """No mutating call, no template version, no refresh."""
    assert api_calls.mutating() == []
    assert sorted(fleet.versions(fleet.template_id("web"))) == [1]
    assert fleet.refreshes("web") == []


def crash_after(aws, fn, n: int) -> None:
    """Kill the invocation after its ``n``-th mutating call."""
    aws.faults.crash_after(n)
    with pytest.raises(SimulatedCrash):
        fn.invoke({})
