"""`session-store`: the command line over a store (see `session-store --help`).

Exit codes: 0 done; 1 a check failed (`audit`, or the demo's integrity check);
2 a problem the user can fix (missing database, bad URL, unknown session, a
PostgreSQL server that refuses), reported in one line; 3 a bug (the one-line
report says to rerun with --debug for the traceback).
"""

from __future__ import annotations

import os
import sys

# Imported lazily, where used: `session-store --help` and `--version` start in the time
# of a bare interpreter, without SQLAlchemy, rich, structlog or even `typing`
# (scripts/bench_cli.py). Mypy reads `TYPE_CHECKING` as true whatever its value.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable, Sequence

    from session_store.store import SessionStore

    Command = Callable[[SessionStore, argparse.Namespace], Awaitable[int]]

OK, CHECK_FAILED, USAGE, BUG = 0, 1, 2, 3



def command_function(name: str) -> Command:
    from importlib import import_module

    from session_store.cli.parser import COMMANDS

    module, function = COMMANDS[name].split(":")
    found: Command = getattr(import_module(f"session_store.cli.{module}"), function)
    return found


CREATES_DATABASE = frozenset({"demo", "import", "import-adk"})
"""Commands that may start from an empty database; the others refuse a missing file."""


def configure_logging(log_format: str, debug: bool, verbose: bool = False) -> None:
    """Structured log lines on stderr: readable, or one JSON object per line."""
    import logging

    import structlog

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty() and
                                           "NO_COLOR" not in os.environ))
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def _check_database(args: argparse.Namespace) -> None:
    from session_store.errors import StoreUnavailable
    from session_store.store import database_file

    path = database_file(args.db)
    if path is None or args.command in CREATES_DATABASE:
        return
    if not path.is_file():
        raise StoreUnavailable(
            f"no database at {path}: run `session-store demo` to make one, or point --db "
            "(or $SESSION_STORE_URL) at an existing store")


async def _run(args: argparse.Namespace) -> int:
    from session_store.store import SessionStore

    _check_database(args)
    if args.command == "import" and args.file != "-" and not os.path.isfile(args.file):
        raise FileNotFoundError(f"no file {args.file}: give a file written by "
                                "`session-store export SESSION -o FILE`")
    store = await SessionStore.open(args.db)
    try:
        return await command_function(args.command)(store, args)
    finally:
        await _settle(store)
        await store.close()


async def _settle(store: SessionStore) -> None:
    """Let catch-up read models fold what this command appended, so the next command sees
    them current (and the follower is idle when it is stopped)."""
    from session_store.cli import commands

    await commands.catch_up(store, 15, "they catch up the next time the store is opened")


def explain(error: BaseException, db: str | None) -> str | None:
    """One line saying what went wrong and what to do, for errors a user can fix."""
    import sqlalchemy as sa

    from session_store.errors import SessionStoreError, StoreUnavailable, causes

    if isinstance(error, StoreUnavailable):
        text = _first_line(error)
        return text if "--db" in text else f"{text} (check --db or $SESSION_STORE_URL)"
    if isinstance(error, SessionStoreError | FileNotFoundError):
        return _first_line(error)
    where = _where(db)
    for cause in causes(error):
        if (type(cause).__module__ or "").startswith("asyncpg"):
            return (f"PostgreSQL at {where} refused: {_first_line(cause)} — check the user, "
                    "password and database name in --db (create a database with `createdb`)")
        if isinstance(cause, TimeoutError):
            return f"timed out connecting to {where}: is the server up and reachable?"
        if isinstance(cause, OSError):
            return (f"cannot reach the database at {where}: {cause.strerror or cause} — is "
                    "the server running, and are the host and port in --db right?")
    if isinstance(error, sa.exc.DBAPIError) and any(
            words in str(error.orig) for words in _UNUSABLE_SQLITE):
        return f"the database at {where} cannot be used: {_first_line(error.orig)} — check --db"
    return None


_UNUSABLE_SQLITE = ("unable to open", "not a database", "locked", "readonly", "disk I/O",
                    "malformed", "no such table")



def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _where(db: str | None) -> str:
    from session_store.errors import SessionStoreError
    from session_store.store import describe_url

    try:
        return describe_url(db)
    except SessionStoreError:
        return str(db)


def _closed_pipe() -> int:
    """The reader went away (`| head`): end quietly, as `cat` does, with nothing more to
    write; stdout goes to /dev/null so the interpreter's last flush does not complain."""
    import contextlib

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words == ["--version"]:  # the answer alone, before any parser is built
        from session_store import __version__

        print(f"session-store {__version__}")
        return OK
    if words in (["--help"], ["-h"]):  # written out: no argparse to import or format
        from session_store.cli.usage import HELP

        sys.stdout.write(HELP)
        return OK
    from session_store.cli.parser import build_parser, chosen_command

    args = build_parser(chosen_command(words), every=False).parse_args(words)
    configure_logging(args.log_format, args.debug, args.verbose)
    try:
        import asyncio

        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place errors become exit codes
        from session_store.errors import causes

        if any(isinstance(cause, BrokenPipeError) for cause in causes(error)):
            return _closed_pipe()
        if args.debug:
            raise
        message = explain(error, args.db)
        if message is not None:
            print(f"session-store: error: {message}", file=sys.stderr)
            return USAGE
        print(f"session-store: internal error: {type(error).__name__}: {error} "
              "(rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return BUG
