"""`delete`, `cleanup` and `tail`: end a session, expire idle ones (and apply retention),
follow the log live."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import msgspec
from rich.markup import escape

from session_store.cli import lookup, render
from session_store.domain.events import RecordedEvent, SessionKey
from session_store.store import SessionStore


async def delete(store: SessionStore, args: argparse.Namespace) -> int:
    if args.app and args.user:  # named in full: a session deleted before can still be purged
        key = SessionKey(args.app, args.user, args.session)
    else:
        key = await lookup.find_session(store, args.session, app_name=args.app,
                                        user_id=args.user)
    await store.delete_session(app_name=key.app_name, user_id=key.user_id,
                               session_id=key.session_id, purge=args.purge)
    name = f"{key.app_name}/{key.user_id}/{key.session_id}"
    text = (f"Deleted {name}: hidden everywhere, its id never reused"
            + ("; its payloads and the app:/user: values it wrote are erased (ids, times, "
               "types and hashes are kept)" if args.purge else
               " (the log keeps its events; --purge erases them)"))
    render.result({"app_name": key.app_name, "user_id": key.user_id,
                   "session_id": key.session_id, "purged": args.purge}, text, as_json=args.json)
    return 0


async def cleanup(store: SessionStore, args: argparse.Namespace) -> int:
    expired = await store.cleanup_expired_sessions()
    lines = [f"Expired {expired:,} session(s) idle past their timeout" if expired
             else "No session is idle past its timeout"]
    value: dict[str, Any] = {"expired": expired}
    if args.retention:
        report = await store.enforce_retention(app_name=args.app)
        value["retention"] = {name: [list(key) for key in getattr(report, name)]
                              for name in report.counts}
        done = ", ".join(f"{name} {count:,}" for name, count in report.counts.items() if count)
        lines.append(f"Retention: {done}" if done else "Retention: nothing is due")
    if args.optimize:
        optimized = await store.optimize()
        value["optimize"] = msgspec.to_builtins(optimized)
        lines.append(f"Optimized ({', '.join(optimized.steps)}): "
                     f"{optimized.bytes_before:,} -> {optimized.bytes_after:,} bytes")
    render.result(value, "\n".join(lines), as_json=args.json)
    return 0


def line(record: RecordedEvent, width: int = 10_000) -> str:
    """One event on one line: position, time, session, version, type and a short what."""
    data: Any = msgspec.to_builtins(record.data)
    data.pop("type", None)
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, dict):
        what = f"{message.get('author') or message.get('role')}: " + (
            message.get("text") or json.dumps(message.get("parts"), default=str))
    else:
        what = json.dumps(data, sort_keys=True, default=str) if data else ""
    stream = "/".join(part for part in record.key if part) or "-"
    head = (f"{record.position:>8}  {render.when(record.recorded_at)}  {stream}  "
            f"v{record.version}  {record.type}")
    return f"{head}  {render.short(what, max(20, width - len(head) - 2))}" if what else head


async def tail(store: SessionStore, args: argparse.Namespace) -> int:
    """Follow the log: every event as it commits, from a position or from now; `--limit`
    stops after that many (else until interrupted)."""
    start = (await store.last_position() + 1) if args.from_now else args.from_position
    shown, resume = 0, start
    try:
        async for record in store.subscribe(from_position=start, app_name=args.app):
            if args.json:
                render.write(json.dumps(msgspec.to_builtins(record), sort_keys=True,
                                        default=str))
            else:
                render.out.print(escape(line(record, render.out.width)), soft_wrap=True)
                render.out.file.flush()
            shown, resume = shown + 1, record.position + 1
            if args.limit is not None and shown >= args.limit:
                break
    except (asyncio.CancelledError, KeyboardInterrupt):  # Ctrl-C: say where to pick up
        print(f"stopped after {shown:,} event(s); resume with "
              f"`session-store tail --from-position {resume}`", file=sys.stderr, flush=True)
        raise
    return 0
