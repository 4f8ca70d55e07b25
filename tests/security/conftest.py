"""The security suite attacks the function on the embedded AWS with the handler suite's
builders: its fixtures (``aws``, ``estate``, ``function``, ``api_calls``...) are the
handler suite's own, and ``standalone_estate`` is importable here too."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
