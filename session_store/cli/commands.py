"""What each command does, given an open store and the parsed arguments.

Every command returns its exit code: 0 done, 1 the check it ran failed.
Errors a user can act on are raised as `SessionStoreError`s and reported by
`main` (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import structlog
from rich.rule import Rule

from session_store.cli import demo as demo_module
from session_store.cli import figures, lookup, render
from session_store.domain.events import (
    RecordedEvent,
    SessionKey,
)
from session_store.errors import InvalidEvent, SessionStoreError
from session_store.store import SessionStore

log = structlog.get_logger("session_store.cli")


async def sessions(store: SessionStore, args: argparse.Namespace) -> int:
    if args.all:
        found = await lookup.all_sessions(store, app_name=args.app, user_id=args.user,
                                          status=args.status)
        following = None
    else:
        found, following = await lookup.page_of_sessions(
            store, app_name=args.app, user_id=args.user, status=args.status,
            limit=args.limit, cursor=args.cursor)
    if args.json:
        render.print_json([render.session_summary(s) for s in found])
        if following is not None:  # stdout stays the list; where the next page starts
            render.err.print(f"next page: --cursor {following}", markup=False)
    elif not found:
        render.out.print("No sessions match. (`session-store demo` writes some.)")
    else:
        render.sessions_table(found, f"Sessions ({len(found)})", wide=args.wide)
        if following is not None:
            render.out.print(f"More: session-store sessions --cursor {following} (or --all)",
                             markup=False)
    return 0


async def resolve(store: SessionStore, args: argparse.Namespace) -> SessionKey:
    return await lookup.find_session(store, args.session, app_name=args.app, user_id=args.user)


async def replay(store: SessionStore, args: argparse.Namespace) -> int:
    key = await resolve(store, args)
    await show_replay(store, key, to_version=args.to_version, as_json=args.json,
                      wide=args.wide)
    return 0


async def show_replay(store: SessionStore, key: SessionKey, *, to_version: int | None,
                      as_json: bool, wide: bool = False) -> dict[str, Any]:
    if to_version is not None and to_version < 1:
        raise InvalidEvent(f"--to-version must be 1 or more, not {to_version}")
    records = [r async for r in store.read_stream(key, to_version=to_version)]
    if to_version is not None and records and records[-1].version < to_version:
        to_version = None  # past the last event: the whole session, as it is now
    session = await store.replay(key, to_version=to_version)
    rows = render.timeline_rows(records)
    result = {"session": render.session_summary(session), "timeline": rows,
              "statistics": _statistics(session)}
    if as_json:
        render.print_json(result)
        return result
    render.timeline_table(session, rows, wide=wide)
    render.state_table(session, wide=wide)
    stats = session.statistics()
    render.out.print(
        f"{stats.messages} messages · {stats.interactions} model calls · "
        f"{stats.tokens_in:,} tokens in / {stats.tokens_out:,} out · "
        f"mean {render.ms(stats.mean_response_time)} · p95 {render.ms(stats.p95_response_time)}")
    render.out.print(f"Every word of it: session-store show {key.session_id}", markup=False)
    return result


def _statistics(session: Any) -> dict[str, Any]:
    stats = session.statistics()
    return {"messages": stats.messages, "messages_by_role": dict(stats.messages_by_role),
            "tokens_in": stats.tokens_in, "tokens_out": stats.tokens_out,
            "interactions": stats.interactions, "mean_response_time": stats.mean_response_time,
            "p95_response_time": stats.p95_response_time, "duration": stats.duration}


async def audit(store: SessionStore, args: argparse.Namespace) -> int:
    key = await resolve(store, args) if args.session else None
    started = time.perf_counter()
    report = await store.verify(key, digest=args.digest)
    elapsed = time.perf_counter() - started
    if args.json:
        render.print_json({"ok": report.ok, "events": report.events, "streams": report.streams,
                           "problems": report.problems, "seconds": elapsed,
                           "digest": None if report.digest is None else str(report.digest)})
    else:
        print_report(report, elapsed)
        if args.digest and report.ok:
            render.out.print(f"[green]✔[/green] the log still extends digest "
                             f"{args.digest.strip()[:24]}… (position "
                             f"{int(args.digest.split(':')[0]):,})")
    return 0 if report.ok else 1


async def digest(store: SessionStore, args: argparse.Namespace) -> int:
    found = await store.digest()
    if args.json:
        render.print_json({"digest": str(found), "position": found.position,
                           "anchor": found.anchor})
        return 0
    render.out.print(f"Digest of the log at position {found.position:,} (keep it outside the "
                     "database; check it later with `session-store audit --digest D`):",
                     markup=False)
    print(found)  # the last line, whole, whatever the terminal's width
    return 0


def print_report(report: Any, elapsed: float) -> None:
    checked = (f"{report.events:,} events in {report.streams:,} streams checked in "
               f"{elapsed:.2f}s: payloads, hash chains, anchors, versions, positions, "
               "bookkeeping, triggers, projections vs a fresh fold")
    if report.ok:
        render.out.print(f"[green]✔ integrity OK[/green] — {checked}")
        return
    render.out.print(f"[red bold]✘ integrity check FAILED[/red bold] — {checked}")
    render.out.print(f"{len(report.problems)} problem(s):")
    for problem in report.problems[:50]:
        render.out.print(f"  • {problem}", markup=False)
    if len(report.problems) > 50:
        render.out.print(f"  … and {len(report.problems) - 50} more (--json lists all)")


async def rebuild(store: SessionStore, args: argparse.Namespace) -> int:
    names = [args.projection] if args.projection else None
    if args.projection and args.projection not in store.projection_names:
        known = ", ".join(store.projection_names)
        raise InvalidEvent(f"no projection {args.projection!r}; the projections are {known}")
    started = time.perf_counter()
    with render.progress("rebuilding", await store.count_events(),
                         enabled=not args.json) as bar:
        report = await store.rebuild(
            names, progress=lambda done, total: render.update(bar, done, started, total=total))
    elapsed = time.perf_counter() - started
    rate = report.events / report.seconds if report.seconds > 0 else 0.0
    set_aside = [item.describe() for item in report.quarantined]
    summary = {"projections": list(report.names), "events": report.events,
               "seconds": report.seconds, "events_per_second": rate,
               "position": report.position, "quarantined": set_aside}
    text = (f"Rebuilt {', '.join(report.names)} from {report.events:,} events "
            f"in {elapsed:.2f}s ({rate:,.0f} events/s)")
    if set_aside:  # rebuilt without them; `audit` keeps naming them
        text += "".join(f"\n  quarantined: {line}" for line in set_aside)
    render.result(summary, text, as_json=args.json)
    return 0


async def analytics(store: SessionStore, args: argparse.Namespace) -> int:
    # A fresh process has written nothing, so the store's read-your-writes does not cover
    # what other processes wrote: fold the whole log first.
    await catch_up(store, figures.CATCH_UP_SECONDS,
                   "the figures leave out the newest events; run the command again")
    found = await figures.analytics(store, args.by, app_name=args.app)
    if args.json:
        render.print_json(found.as_json())
    else:
        show_analytics(found, limit=args.limit, wide=args.wide)
    return 0


async def catch_up(store: SessionStore, timeout: float, hint: str) -> None:
    """Wait until catch-up read models have folded the whole log as it is now; after
    `timeout` seconds, log a warning with `hint` and go on."""
    last = await store.last_position()
    try:
        await store.wait_for(last, timeout)
    except TimeoutError:
        log.warning("projections.behind", position=last, waited=timeout, hint=hint)


def show_analytics(found: figures.Figures, *, limit: int | None = 50,
                   wide: bool = False) -> None:
    if not found.rows:
        render.out.print("No sessions to analyse.")
        return
    shown = found.rows if limit is None else found.rows[:limit]
    render.analytics_table(found.by, figures.KEYS[found.by], shown, wide=wide)
    if len(shown) < len(found.rows):
        render.out.print(f"… {len(found.rows) - len(shown)} more rows (--limit, or --json for "
                         "all)")
    if found.histogram:
        render.out.print(render.histogram(found.histogram))


# --- export / import --------------------------------------------------------------------------

async def export(store: SessionStore, args: argparse.Namespace) -> int:
    """The session's events (`SessionStore.export_session`), JSON Lines or one document."""
    key = await resolve(store, args)
    text = await store.export_session(app_name=key.app_name, user_id=key.user_id,
                                      session_id=key.session_id,
                                      format=getattr(args, "format", "jsonl"))
    with ExitStack() as stack:
        target: IO[bytes] = (sys.stdout.buffer if args.output in (None, "-")
                             else stack.enter_context(Path(args.output).open("wb")))
        target.write(text.encode())
        target.flush()
    log.info("exported", session=f"{key.app_name}/{key.user_id}/{key.session_id}",
             bytes=len(text), to=args.output or "stdout")
    return 0


def _read_export(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


async def import_file(store: SessionStore, args: argparse.Namespace) -> int:
    """Append the exported streams of FILE; ids are kept, so importing twice changes nothing
    (see `SessionStore.import_records`)."""
    try:
        report = await store.import_events(_read_export(args.file))
    except InvalidEvent as error:
        said = str(error)
        where = f"{args.file}:" if said.startswith("line ") else f"{args.file}: "
        raise InvalidEvent(where + said.removeprefix("line ")) from None
    text = (f"Imported {args.file}: {report.added:,} events added, {report.present:,} already "
            f"present ({report.events:,} read, of {report.sessions} session(s); "
            f"{report.sessions_added} new)")
    render.result({**dataclasses.asdict(report), "present": report.present}, text,
                  as_json=args.json)
    return 0


async def import_adk(store: SessionStore, args: argparse.Namespace) -> int:
    try:
        from session_store.adapters.adk_import import ImportProgress
        from session_store.adapters.adk_import import import_adk as run_import
    except ImportError as error:
        raise SessionStoreError(f"import-adk needs Google ADK: pip install "
                                f"'session-store[adk]' ({error})") from None
    started = time.perf_counter()
    with render.progress("importing sessions", None, enabled=not args.json) as bar:
        def progress(done: ImportProgress) -> None:
            render.update(bar, done.sessions_done, started, "sessions",
                          total=done.sessions_total)

        report = await run_import(args.source, store, progress=progress)
    lines = [f"Imported from {args.source} ({report.source}): {report.sessions_created:,} new "
             f"of {report.sessions_found:,} sessions, {report.events_imported:,} new of "
             f"{report.events_found:,} events, {report.state_fixes:,} state fix(es) in "
             f"{report.seconds:.2f}s", *(f"  skipped {skipped}" for skipped in report.skipped)]
    render.result(dataclasses.asdict(report), "\n".join(lines), as_json=args.json)
    return 0


async def purge(store: SessionStore, args: argparse.Namespace) -> int:
    report = await store.purge_user(app_name=args.app, user_id=args.user)
    who = f"user {args.user!r} of app {args.app!r}"
    if report.sessions or report.scope_events:
        text = (f"Purged {who}: {report.sessions:,} session(s) and {report.scope_events:,} "
                "app/user state event(s) erased; ids, times, types and hashes are kept, so "
                "`session-store audit` still checks the chain")
    else:
        text = f"Nothing left to purge of {who}"
    render.result({"app_name": args.app, "user_id": args.user, **dataclasses.asdict(report)},
                  text, as_json=args.json)
    return 0


# --- demo --------------------------------------------------------------------------------

async def demo(store: SessionStore, args: argparse.Namespace) -> int:
    plan = demo_module.Plan(users=args.users, sessions=args.sessions, turns=args.turns,
                            seed=args.seed, concurrency=args.concurrency,
                            latency_ms=args.latency_ms)
    for value, what in ((plan.users, "--users"), (plan.sessions, "--sessions"),
                        (plan.turns, "--turns"), (plan.concurrency, "--concurrency")):
        if value < 1:
            raise InvalidEvent(f"{what} must be 1 or more, not {value}")
    written = 0

    def count(record: RecordedEvent) -> None:  # what this demo wrote, not other writers
        nonlocal written
        written += 1

    store.on("*", count)
    started = time.perf_counter()
    with render.progress("conversations", plan.sessions * plan.turns,
                         enabled=not args.json) as bar:
        demos = await demo_module.run(store, plan,
                                      lambda: render.advance(bar, 1, started, "turns"))
    elapsed = time.perf_counter() - started
    log.info("demo.written", events=written, sessions=len(demos), seconds=round(elapsed, 2),
             events_per_second=round(written / elapsed) if elapsed else None)
    ours = [d for d in demos if d.fate != "deleted"]
    shown = next((d for d in demos if d.fate == "active"), ours[0] if ours else None)
    ids = {d.key for d in demos}
    listed = [s for s in await lookup.all_sessions(store) if s.key in ids]
    found = await figures.analytics(store, "app")
    checked = time.perf_counter()
    report = await store.verify()
    verify_seconds = time.perf_counter() - checked
    fates = {d.key.session_id: d.fate for d in demos if d.fate != "active"}
    if args.json:
        render.print_json({
            "events_written": written, "seconds": elapsed,
            "sessions": [render.session_summary(s) for s in listed], "fates": fates,
            "replayed": list(shown.key) if shown else None,
            "analytics": found.as_json(), "verify": {"ok": report.ok, "events": report.events,
                                             "problems": report.problems}})
        return 0 if report.ok else 1
    out = render.out
    out.print(f"Wrote [bold]{written:,}[/bold] events for {len(demos)} sessions of "
              f"{len({d.key.user_id for d in demos})} users in {elapsed:.2f}s "
              f"({written / elapsed if elapsed else 0:,.0f} events/s) to {store.display_url}")
    out.print(", ".join(f"{sid}: {fate}" for sid, fate in fates.items()) or "")
    out.print(Rule("What the store now knows"))
    if len(listed) <= 200:
        out.print(render.users_table(listed))
    else:
        out.print(f"{len(listed):,} sessions (see `session-store sessions`)")
    if shown is not None:
        out.print(Rule(f"One conversation, replayed from the log ({shown.key.session_id})"))
        await show_replay(store, shown.key, to_version=None, as_json=False)
    out.print(Rule("Analytics"))
    show_analytics(found)
    out.print(Rule("Integrity"))
    print_report(report, verify_seconds)
    if shown is not None:
        out.print(f"\nNext: [bold]session-store replay {shown.key.session_id}[/bold] · "
                  "[bold]session-store sessions[/bold] · [bold]session-store analytics --by "
                  "user[/bold] · [bold]session-store audit[/bold]")
    out.print(f"\nLook at it in a browser: {viewer_command(store.display_url)}  "
              "(then open http://127.0.0.1:8765/)", markup=False, soft_wrap=True)
    return 0 if report.ok else 1


def viewer_command(display_url: str) -> str:
    """The command that opens the web viewer on this database."""
    import shlex

    return f"session-store --db {shlex.quote(display_url)} serve"
