"""ami-upgrade's operator CLI: plan, run, status and cancel for one deployed stack.

An operator tool (``python -m ami_upgrade_cli`` or the ``ami-upgrade`` console
script), not part of the Lambda package: it reads the stack's configuration from
``Pulumi.<stack>.yaml`` with the parser the Pulumi program uses and talks to the
account with the operator's credentials. Exit codes: see ``EXIT_CODES``.

Installed with ``pip install .``, this is the one top-level package: the stack parser
(``components``) and the vocabulary it shares with the function (``handler``) are
installed inside it, under ``_project/``, which is appended to the import path here. In
a checkout ``_project/`` does not exist and the repository's own packages are used.
"""

import sys
from pathlib import Path

__version__ = "0.1.0"

_PROJECT = Path(__file__).resolve().parent / "_project"
if _PROJECT.is_dir() and str(_PROJECT) not in sys.path:
    sys.path.append(str(_PROJECT))

EXIT_OK = 0          # done; nothing needs attention
EXIT_ATTENTION = 1   # done, but something failed: the function, a refresh, a replacement, a cancel
EXIT_USAGE = 2       # bad options, unknown stack, invalid stack configuration, wrong region
EXIT_AWS = 3         # no credentials, unknown profile, endpoint unreachable, access denied
EXIT_NOT_DEPLOYED = 4  # the stack's function or alias does not exist in that account and region
EXIT_ABORTED = 5     # cancel: not confirmed (answer no, or no terminal and no --yes)

EXIT_CODES = {
    EXIT_OK: "done; nothing needs attention",
    EXIT_ATTENTION: "done, but something failed (the function, a refresh, a replacement, "
                    "a cancel) or a run is in progress (plan)",
    EXIT_USAGE: "bad options, unknown stack, invalid stack configuration, wrong region",
    EXIT_AWS: "no credentials, unknown profile, endpoint unreachable, access denied",
    EXIT_NOT_DEPLOYED: "the stack is not deployed there (function or alias not found)",
    EXIT_ABORTED: "cancel not confirmed: nothing was cancelled",
}
