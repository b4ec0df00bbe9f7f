"""`show` (one conversation in full, to read or to keep) and `search` (messages by text).

`show` prints every visible message whole: Markdown when stdout is not a terminal
(a pipe or a file: a transcript to keep), rich text on a terminal, JSON with
`--format json` or `--json`. `search` reads the history read model
(`store.history.search`), across every app unless `--app` says one.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
from rich.markup import escape

from session_store.cli import lookup, render
from session_store.domain.events import Event
from session_store.domain.snapshot import Session
from session_store.errors import InvalidEvent
from session_store.store import SessionStore


def message_text(message: Event) -> str:
    """A message's text, its tool calls and results written out whole."""
    return render.message_text(message.text, message.parts,
                               show=lambda value: json.dumps(value, default=str), sep="\n")


def _details(message: Event) -> str:
    bits = []
    if message.usage is not None:
        bits.append(f"{message.usage.tokens_in:,} tokens in / {message.usage.tokens_out:,} out"
                    + (f" ({message.usage.model})" if message.usage.model else ""))
    if message.response_time is not None:
        bits.append(render.ms(message.response_time))
    if message.state_delta:
        bits.append("state " + json.dumps(message.state_delta, sort_keys=True, default=str))
    return " · ".join(bits)


def _stamp(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def markdown(session: Session) -> str:
    """The conversation as a Markdown transcript."""
    lines = [f"# {session.app_name} / {session.user_id} / {session.id}", "",
             f"{session.status} · v{session.version} · created {_stamp(session.created_at)} · "
             f"{len(session.messages)} messages", ""]
    for message in session.messages:
        lines += [f"## {message.speaker} ({message.role}) · {_stamp(message.timestamp)}", ""]
        text = message_text(message)
        lines += [text if not message.parts else "\n".join(f"    {line}" for line in
                                                           text.splitlines()), ""]
        details = _details(message)
        if details:
            lines += [f"*{details}*", ""]
    if session.state:
        lines += ["## State", "", "```json",
                  json.dumps(dict(session.state), indent=2, sort_keys=True, default=str),
                  "```", ""]
    return "\n".join(lines)


def _as_json(session: Session) -> dict[str, Any]:
    return {"session": render.session_summary(session),
            "messages": [msgspec.to_builtins(m) for m in session.messages]}


async def show(store: SessionStore, args: argparse.Namespace) -> int:
    key = await lookup.find_session(store, args.session, app_name=args.app, user_id=args.user)
    session = await store.replay(key)
    chosen = "json" if args.json else args.format or (
        "text" if render.out.is_terminal else "md")
    if chosen == "json":
        render.print_json(_as_json(session))
    elif chosen == "md":
        render.write(markdown(session))
    else:
        out = render.out
        out.print(f"[bold]{escape(session.app_name)} / {escape(session.user_id)} / "
                  f"{escape(session.id)}[/bold]  ·  {session.status}  ·  v{session.version}")
        for message in session.messages:
            style = render.ROLE_STYLE.get(message.role, "")
            out.print()
            out.print(f"[{style or 'bold'}]{escape(message.speaker)}[/] [dim]({message.role}) "
                      f"{_stamp(message.timestamp)}[/dim]")
            out.print(message_text(message), markup=False)
            details = _details(message)
            if details:
                out.print(f"[dim]{escape(details)}[/dim]")
    return 0


async def search(store: SessionStore, args: argparse.Namespace) -> int:
    since = None
    if args.since is not None:
        try:
            since = datetime.fromisoformat(args.since).replace(tzinfo=UTC).timestamp() \
                if "T" in args.since or "-" in args.since else float(args.since)
        except ValueError:
            raise InvalidEvent(f"--since {args.since!r}: give an ISO date (2026-12-01 or "
                               "2026-12-01T10:00, UTC) or epoch seconds") from None
    apps = [args.app] if args.app else await store.app_names()
    found = []
    for app in apps:
        found.extend(await store.history.search(
            args.text, app_name=app, user_id=args.user, session_id=args.session,
            roles=[args.role] if args.role else None, since=since, limit=args.limit))
    found.sort(key=lambda m: m.position, reverse=True)
    found = found[:args.limit]
    if args.json:
        render.print_json([msgspec.to_builtins(m) for m in found])
        return 0
    if not found:
        render.out.print(f"No message contains {args.text!r}.", markup=False)
        return 0
    out = render.out
    out.print(f"{len(found)} message(s) matching {args.text!r}, newest first:", markup=False)
    for m in found:
        out.print()
        out.print(f"[bold]{escape(m.app_name)}/{escape(m.user_id)}/{escape(m.session_id)}"
                  f"[/bold]  v{m.version}  {escape(m.role)}  {render.when(m.timestamp)}",
                  soft_wrap=True)
        out.print(" ".join(m.text.split()), markup=False)
    return 0
