"""`session-store --help`, written out, so printing it imports and formats no parser (the
start-up target of scripts/bench_cli.py). It is what `build_parser` prints at 80 columns;
tests/cli/test_usage.py checks that, and `python -m session_store.cli.usage` rewrites
this file after the parser changes."""

HELP = """\
usage: session-store [-h] [--version] [--db URL] [--json]
                     [--log-format {text,json}] [-v] [--debug] [--wide]
                     COMMAND

AI-agent conversations kept as an event log: write a demo, list, show, search,
replay, follow, audit, rebuild, analyse, export, import, delete and purge
sessions.

commands:
  demo        a simulated multi-user agent runner writes conversations, then
              shows what the store knows
  sessions    list sessions
  replay      a session's conversation as a timeline, folded from the log
  show        one conversation in full: every message whole (Markdown when
              piped, rich text on a terminal)
  search      messages containing every word of TEXT, newest first
  delete      delete a session: hidden everywhere, its id never reused (the
              log keeps its events; --purge erases their payloads)
  cleanup     expire the active sessions idle past their own timeout;
              --retention also applies the apps' retention policies
  tail        follow the log live: one line per event as it commits (Ctrl-C
              stops; resume with --from-position)
  audit       integrity check: every event decodes, hash chains and anchors,
              versions and positions, the log's bookkeeping and triggers,
              projections vs a fresh fold; exit 1 on any problem
  verify      integrity check: every event decodes, hash chains and anchors,
              versions and positions, the log's bookkeeping and triggers,
              projections vs a fresh fold; exit 1 on any problem
  digest      the log's digest (last line: POSITION:ANCHOR): keep it outside
              the database and check it later with `audit --digest`
  rebuild     replay the log into fresh read models
  analytics   tokens, messages and response times, with a histogram
  export      a session's events as JSON Lines
  import      append the sessions of an `export` file (importing twice is a
              no-op)
  import-adk  bring the sessions of a Google ADK session database in
  serve       the web viewer: sessions, timelines with time travel, search,
              analytics and audit in a browser, live (read-only; needs the
              `web` extra)
  fork        a new session from SESSION as it was at a version (its state and
              visible messages); both record the link
  rewind      take SESSION back to version N: later messages leave the visible
              history (the log keeps them), the state is as it was then
  history     every value a state key took in SESSION (app: and user: keys
              from their shared scope), with versions and times
  purge       forget a user of an app: erase every session of theirs, their
              user: state and the app: values they wrote (the facts are kept)

positional arguments:
  COMMAND               one of the commands below; `session-store COMMAND
                        --help` for its options

options:
  -h, --help            show this help message and exit
  --version             show the version and exit
  --db URL              a SQLite path or postgresql:// URL (default:
                        $SESSION_STORE_URL, then ./sessions.db)
  --json                print JSON for machines instead of tables
  --log-format {text,json}
                        how log lines on stderr look (default: text)
  -v, --verbose         log what happens (info level; the default shows
                        warnings only)
  --debug               debug logging, and tracebacks on errors
  --wide                tables as wide as their content, whatever the terminal

Exit codes: 0 ok, 1 a check failed, 2 a problem you can fix (the message says what), 3 a bug.
"""


def _rewrite() -> None:
    import os
    from pathlib import Path

    from session_store.cli.parser import build_parser

    os.environ["COLUMNS"] = "80"
    text = build_parser(None, every=False).format_help()
    assert '"""' not in text and "\\" not in text, "the help cannot be written out as is"
    path = Path(__file__)
    head, _, rest = path.read_text().partition('HELP = """\\\n')
    _, _, tail = rest.partition('"""\n')
    path.write_text(f'{head}HELP = """\\\n{text}"""\n{tail}')


if __name__ == "__main__":
    _rewrite()
