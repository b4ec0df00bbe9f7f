"""`session-store`: the command line over a store (`session_store.cli.main`)."""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: `session-store --help` starts without it
if TYPE_CHECKING:
    from typing import Any


def __getattr__(name: str) -> Any:
    if name == "main":  # `from session_store.cli import main`, without importing it eagerly
        from session_store.cli.main import main
        return main
    raise AttributeError(f"module 'session_store.cli' has no attribute {name!r}")
