"""`session-store`: the command line over a store (see `session-store --help`).

Exit codes: 0 done; 1 a check failed (`audit`, or the demo's integrity check);
2 a problem the user can fix (missing database, bad URL, unknown session, a
PostgreSQL server that refuses), reported in one line; 3 a bug (the one-line
report says to rerun with --debug for the traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa
import structlog

from session_store.cli import commands, conversation, figures, upkeep
from session_store.errors import SessionStoreError, StoreUnavailable
from session_store.store import SessionStore, database_file, describe_url

Command = Callable[[SessionStore, argparse.Namespace], Awaitable[int]]

OK, CHECK_FAILED, USAGE, BUG = 0, 1, 2, 3

COMMANDS: dict[str, Command] = {
    "demo": commands.demo, "sessions": commands.sessions, "replay": commands.replay,
    "audit": commands.audit, "verify": commands.audit, "digest": commands.digest,
    "rebuild": commands.rebuild,
    "analytics": commands.analytics, "export": commands.export,
    "import": commands.import_file, "import-adk": commands.import_adk,
    "purge": commands.purge, "show": conversation.show, "search": conversation.search,
    "delete": upkeep.delete, "cleanup": upkeep.cleanup, "tail": upkeep.tail,
}
CREATES_DATABASE = frozenset({"demo", "import", "import-adk"})
"""Commands that may start from an empty database; the others refuse a missing file."""


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--db/--json/--log-format/--debug, accepted before or after the command."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--db", metavar="URL", default=default(None),
                        help="a SQLite path or postgresql:// URL "
                             "(default: $SESSION_STORE_URL, then ./sessions.db)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print JSON for machines instead of tables")
    parser.add_argument("--log-format", choices=("text", "json"), default=default("text"),
                        help="how log lines on stderr look (default: text)")
    parser.add_argument("-v", "--verbose", action="store_true", default=default(False),
                        help="log what happens (info level; the default shows warnings only)")
    parser.add_argument("--debug", action="store_true", default=default(False),
                        help="debug logging, and tracebacks on errors")
    parser.add_argument("--wide", action="store_true", default=default(False),
                        help="tables as wide as their content, whatever the terminal")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="session-store", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="AI-agent conversations kept as an event log: write a demo, list, "
                    "show, search, replay, follow, audit, rebuild, analyse, export, import, "
                    "delete and purge sessions.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 a problem you can fix (the message "
               "says what), 3 a bug.")
    parser.add_argument("--version", action="version",
                        version=f"session-store {_version()}")
    _global_options(parser, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, top=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    def owner(p: argparse.ArgumentParser) -> None:
        p.add_argument("--app", help="the session's app (needed only when the id is ambiguous)")
        p.add_argument("--user", help="the session's user (likewise)")

    p = command("demo", "a simulated multi-user agent runner writes conversations, then "
                        "shows what the store knows")
    p.add_argument("--users", type=int, default=4, help="distinct users (default 4)")
    p.add_argument("--sessions", type=int, default=12, help="sessions in total (default 12)")
    p.add_argument("--turns", type=int, default=4, help="turns per session (default 4)")
    p.add_argument("--seed", type=int, default=7, help="seed of the mock model (default 7)")
    p.add_argument("--concurrency", type=int, default=32,
                   help="sessions talking at once (default 32)")
    p.add_argument("--latency-ms", type=float, default=4.0,
                   help="mean simulated model latency in ms (default 4; 0 for none)")

    p = command("sessions", "list sessions")
    p.add_argument("--app", help="only this app")
    p.add_argument("--user", help="only this user")
    p.add_argument("--status", choices=("active", "archived", "ended", "expired"))
    p.add_argument("--limit", type=positive, default=50,
                   help="sessions per page (default 50)")
    p.add_argument("--cursor", metavar="C", help="the page after the one that printed C")
    p.add_argument("--all", action="store_true", help="every session, no paging")

    p = command("replay", "a session's conversation as a timeline, folded from the log")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("--to-version", type=int, default=None, metavar="N",
                   help="stop after event N: the session as it was then")

    p = command("show", "one conversation in full: every message whole (Markdown when "
                        "piped, rich text on a terminal)")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("--format", choices=("md", "text", "json"), default=None,
                   help="md (default when piped), text (default on a terminal) or json")

    p = command("search", "messages containing every word of TEXT, newest first")
    p.add_argument("text", metavar="TEXT", help="words to find (case and accents ignored)")
    p.add_argument("--app", help="only this app")
    p.add_argument("--user", help="only this user")
    p.add_argument("--session", help="only this session id")
    p.add_argument("--role", help="only messages of this role (user, assistant, tool, ...)")
    p.add_argument("--since", metavar="WHEN",
                   help="only messages since WHEN (ISO date or time, UTC; or epoch seconds)")
    p.add_argument("--limit", type=positive, default=50, help="at most this many (default 50)")

    p = command("delete", "delete a session: hidden everywhere, its id never reused (the log "
                          "keeps its events; --purge erases their payloads)")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("--purge", action="store_true",
                   help="also erase its payloads and the app:/user: values it wrote")

    command("cleanup", "expire the active sessions idle past their own timeout")

    p = command("tail", "follow the log live: one line per event as it commits (Ctrl-C "
                        "stops; resume with --from-position)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--from-position", type=int, default=1, metavar="N",
                       help="start at log position N (default 1: the whole log)")
    where.add_argument("--from-now", action="store_true", help="only events from now on")
    p.add_argument("--app", help="only this app's events")
    p.add_argument("--limit", type=positive, default=None, help="stop after this many events")

    for name in ("audit", "verify"):
        p = command(name, "integrity check: every event decodes, hash chains and anchors, "
                          "versions and positions, the log's bookkeeping and triggers, "
                          "projections vs a fresh fold; exit 1 on any problem")
        p.add_argument("session", metavar="SESSION", nargs="?", help="only this session")
        owner(p)
        p.add_argument("--digest", metavar="D", default=None,
                       help="also check that the log still extends digest D (from "
                            "`session-store digest`); exit 1 when it does not")

    command("digest", "the log's digest (last line: POSITION:ANCHOR): keep it outside the "
                      "database and check it later with `audit --digest`")

    p = command("rebuild", "replay the log into fresh read models")
    p.add_argument("--projection", metavar="NAME", help="only this projection")

    p = command("analytics", "tokens, messages and response times, with a histogram")
    p.add_argument("--by", choices=figures.GROUPINGS, default="app")
    p.add_argument("--app", help="only this app")
    p.add_argument("--limit", type=positive, default=50, help="table rows shown (default 50)")

    p = command("export", "a session's events as JSON Lines")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")

    p = command("import", "append the sessions of an `export` file (importing twice is a "
                          "no-op)")
    p.add_argument("file", metavar="FILE", help="JSON Lines from `export` ('-' for stdin)")

    p = command("import-adk", "bring the sessions of a Google ADK session database in")
    p.add_argument("source", metavar="SOURCE_URL", help="the ADK database (path or URL)")

    p = command("purge", "forget a user of an app: erase every session of theirs, their "
                         "user: state and the app: values they wrote (the facts are kept)")
    p.add_argument("--user", required=True, help="the user to forget")
    p.add_argument("--app", required=True, help="the app the user is forgotten in")
    return parser


def positive(text: str) -> int:
    """An argparse type: a whole number of 1 or more (else a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("session-store")
    except PackageNotFoundError:
        return "unknown"


def configure_logging(log_format: str, debug: bool, verbose: bool = False) -> None:
    """Structured log lines on stderr: readable, or one JSON object per line."""
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
    path = database_file(args.db)
    if path is None or args.command in CREATES_DATABASE:
        return
    if not path.is_file():
        raise StoreUnavailable(
            f"no database at {path}: run `session-store demo` to make one, or point --db "
            "(or $SESSION_STORE_URL) at an existing store")


async def _run(args: argparse.Namespace) -> int:
    _check_database(args)
    if args.command == "import" and args.file != "-" and not Path(args.file).is_file():
        raise FileNotFoundError(f"no file {args.file}: give a file written by "
                                "`session-store export SESSION -o FILE`")
    store = await SessionStore.open(args.db)
    try:
        return await COMMANDS[args.command](store, args)
    finally:
        await _settle(store)
        await store.close()


async def _settle(store: SessionStore) -> None:
    """Let catch-up read models fold what this command appended, so the next command sees
    them current (and the follower is idle when it is stopped)."""
    await commands.catch_up(store, 15, "they catch up the next time the store is opened")


def explain(error: BaseException, db: str | None) -> str | None:
    """One line saying what went wrong and what to do, for errors a user can fix."""
    if isinstance(error, StoreUnavailable):
        text = _first_line(error)
        return text if "--db" in text else f"{text} (check --db or $SESSION_STORE_URL)"
    if isinstance(error, SessionStoreError | FileNotFoundError):
        return _first_line(error)
    where = _where(db)
    for cause in _causes(error):
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


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (SQLAlchemy's `orig`) and what caused it, outermost first."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend([getattr(current, "orig", None), current.__cause__, current.__context__])


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _where(db: str | None) -> str:
    try:
        return describe_url(db)
    except SessionStoreError:
        return str(db)


def _closed_pipe() -> int:
    """The reader went away (`| head`): end quietly, as `cat` does, with nothing more to
    write; stdout goes to /dev/null so the interpreter's last flush does not complain."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_format, args.debug, args.verbose)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place errors become exit codes
        if any(isinstance(cause, BrokenPipeError) for cause in _causes(error)):
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
