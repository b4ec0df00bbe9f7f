"""The library's loggers: silent unless the application asks for their output.

`get_logger(name)` gives a structlog-style logger (`log.debug("event", key=value)`).
While the application has not configured structlog, the events go to the standard
library's `logging` under `name`, all of them under the `session_store` logger (the read
models' `projections.runtime` logs as `session_store.projections.runtime`), where
logging's defaults apply as to any library: nothing below WARNING is shown, and a warning
or an error reaches stderr through `logging.lastResort` when no handler is configured.
`logging.basicConfig(level=logging.DEBUG)` shows them all. Once the application has
configured structlog (`structlog.configure`, as the command line does), the events follow
that configuration instead, like structlog's own loggers. The library configures neither.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


def _message(event: str, fields: dict[str, Any]) -> str:
    if not fields:
        return event
    return event + " " + " ".join(f"{key}={value!r}" for key, value in fields.items())


class Logger:
    """A logger of the library: `debug`, `info`, `warning`, `error`, `exception`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stdlib = logging.getLogger(name)
        self._structlog: Any = structlog.get_logger(name)

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False
             ) -> None:
        if structlog.is_configured():
            method = logging.getLevelName(level).lower()
            if exc_info:
                fields["exc_info"] = True
            getattr(self._structlog, method)(event, **fields)
        elif self._stdlib.isEnabledFor(level):
            self._stdlib.log(level, _message(event, fields), exc_info=exc_info, stacklevel=3,
                             extra={"event": event, "event_fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error with the exception being handled (call it in an `except` block)."""
        self._log(logging.ERROR, event, fields, exc_info=True)


ROOT = "session_store"
"""The standard library logger every logger of the library is under."""


def get_logger(name: str) -> Logger:
    """The logger of module `name` (pass `__name__`), under `ROOT`."""
    return Logger(name if name == ROOT or name.startswith(ROOT + ".") else f"{ROOT}.{name}")
