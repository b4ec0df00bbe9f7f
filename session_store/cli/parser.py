"""The argument parser of `session-store` (built lazily: only the command a run names
gets its arguments, so `--help` starts quickly)."""

from __future__ import annotations

import argparse
import os

TYPE_CHECKING = False  # not `typing`'s: see session_store.cli.main
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

COMMANDS: dict[str, str] = {
    "demo": "commands:demo", "sessions": "commands:sessions", "replay": "commands:replay",
    "audit": "commands:audit", "verify": "commands:audit", "digest": "commands:digest",
    "rebuild": "commands:rebuild", "analytics": "commands:analytics",
    "export": "commands:export", "import": "commands:import_file",
    "import-adk": "commands:import_adk", "purge": "commands:purge",
    "show": "conversation:show", "search": "conversation:search",
    "delete": "upkeep:delete", "cleanup": "upkeep:cleanup", "tail": "upkeep:tail",
    "serve": "serve:serve",
    "fork": "branches:fork", "rewind": "branches:rewind", "history": "branches:history",
}
"""Each command's function, as `module:name` in session_store.cli (imported when run)."""

GROUPINGS = ("session", "user", "app", "day")
"""`analytics --by` (as `session_store.cli.figures.GROUPINGS`)."""


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


class _Unused:
    """Stands in for the parser of a command this run does not use: its arguments are not
    built (building all of them is a third of `--help`'s start-up)."""

    def add_argument(self, *args: object, **kwargs: object) -> _Unused:
        return self

    def add_mutually_exclusive_group(self, *args: object, **kwargs: object) -> _Unused:
        return self


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in `argv` (the first word that is one), None when there is none."""
    return next((word for word in argv if word in COMMANDS), None)


def build_parser(only: str | None = None, *, every: bool = True) -> argparse.ArgumentParser:
    """The parser; with `every` False, only command `only` gets its arguments (the others
    are listed, with their help line)."""
    parser = argparse.ArgumentParser(
        prog="session-store",
        description="AI-agent conversations kept as an event log: write a demo, list, "
                    "show, search, replay, follow, audit, rebuild, analyse, export, import, "
                    "delete and purge sessions.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 a problem you can fix (the message "
               "says what), 3 a bug.")
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    _global_options(parser, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, top=False)
    listing: list[tuple[str, str]] = []
    briefly = not every and only is None  # no command given: help or a usage error only
    sub = None if briefly else parser.add_subparsers(dest="command", metavar="COMMAND",
                                                     required=True)

    def command(name: str, text: str) -> Any:
        listing.append((name, text))
        if sub is None:
            return _Unused()
        if not every and name != only:
            sub.add_parser(name, help=text, add_help=False)
            return _Unused()
        return sub.add_parser(name, help=text, description=text, parents=[common])

    def owner(p: Any) -> None:
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

    p = command("cleanup", "expire the active sessions idle past their own timeout; "
                           "--retention also applies the apps' retention policies")
    p.add_argument("--retention", action="store_true",
                   help="also archive, delete, purge and trim as each app's retention "
                        "policy says (store.enforce_retention)")
    p.add_argument("--app", help="with --retention: only this app's policy")
    p.add_argument("--optimize", action="store_true",
                   help="then optimize the storage (SQLite: VACUUM, ANALYZE, FTS merge, WAL "
                        "checkpoint; PostgreSQL: VACUUM ANALYZE)")

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
    p.add_argument("--by", choices=GROUPINGS, default="app")
    p.add_argument("--app", help="only this app")
    p.add_argument("--limit", type=positive, default=50, help="table rows shown (default 50)")

    p = command("export", "a session's events as JSON Lines")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--format", choices=("jsonl", "json"), default="jsonl",
                   help="JSON Lines of events (default), or one JSON document")

    p = command("import", "append the sessions of an `export` file (importing twice is a "
                          "no-op)")
    p.add_argument("file", metavar="FILE", help="what `export` wrote ('-' for stdin)")

    p = command("import-adk", "bring the sessions of a Google ADK session database in")
    p.add_argument("source", metavar="SOURCE_URL", help="the ADK database (path or URL)")

    p = command("serve", "the web viewer: sessions, timelines with time travel, search, "
                         "analytics and audit in a browser, live (read-only; needs the "
                         "`web` extra)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=port_number, default=8765, help="port (default 8765)")
    p.add_argument("--token", nargs="?", const="", default=None, metavar="TOKEN",
                   help="require this token on every request (default: $SESSION_STORE_TOKEN;"
                        " --token alone makes one up and prints it)")

    p = command("fork", "a new session from SESSION as it was at a version (its state and "
                        "visible messages); both record the link")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("--at-version", type=positive, default=None, metavar="N",
                   help="fork as of event N (default: now)")
    p.add_argument("--id", default=None, help="the new session's id (default: a new one)")
    p.add_argument("--to-user", default=None, metavar="USER",
                   help="the new session's user (default: the source's)")

    p = command("rewind", "take SESSION back to version N: later messages leave the visible "
                          "history (the log keeps them), the state is as it was then")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("--to-version", type=positive, required=True, metavar="N",
                   help="the version to go back to")

    p = command("history", "every value a state key took in SESSION (app: and user: keys "
                           "from their shared scope), with versions and times")
    p.add_argument("session", metavar="SESSION", help="session id")
    owner(p)
    p.add_argument("--key", required=True, help="the state key (e.g. city, user:lang)")

    p = command("purge", "forget a user of an app: erase every session of theirs, their "
                         "user: state and the app: values they wrote (the facts are kept)")
    p.add_argument("--user", required=True, help="the user to forget")
    p.add_argument("--app", required=True, help="the app the user is forgotten in")
    if briefly:  # the commands listed as a subparsers action lists them, for less
        parser.add_argument("command", metavar="COMMAND", choices=list(COMMANDS),
                            help="one of the commands below; `session-store COMMAND --help` "
                                 "for its options")
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        import textwrap

        width = max(min(int(os.environ.get("COLUMNS", "80") or 80), 100) - 2, 40)
        lines = [textwrap.fill(parser.description or "", width), "", "commands:"]
        for name, text in listing:
            lines += textwrap.wrap(text, width, initial_indent=f"  {name:<12}",
                                   subsequent_indent=" " * 14)
        parser.description = "\n".join(lines)
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


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (0 lets the system choose)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


class _Version(argparse.Action):
    """--version, looked up only when asked for (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"session-store {_version()}")
        parser.exit()


def _version() -> str:
    from session_store import __version__
    return __version__
