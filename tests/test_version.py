"""`session_store.__version__` (what `session-store --version` prints without importing
importlib.metadata) is the installed distribution's version."""

from __future__ import annotations

from importlib.metadata import version

import session_store
from tests.kit import in_process


def test_the_version_constant_is_the_distributions() -> None:
    assert session_store.__version__ == version("session-store")
    code, out, _ = in_process("--version")
    assert (code, out) == (0, f"session-store {session_store.__version__}\n")
    code, out, _ = in_process("--db", "x.db", "--version")  # through the parser
    assert (code, out) == (0, f"session-store {session_store.__version__}\n")
