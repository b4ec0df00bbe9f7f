"""Terminal output: rich tables, the conversation timeline, a histogram, JSON for machines.

Colour and live progress bars only appear on a terminal; piped output is plain.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from projections.analytics import Stats
from session_store.cli import fit
from session_store.cli.fit import Column
from session_store.domain.events import (
    InteractionTracked,
    MessageAppended,
    MetadataChanged,
    RecordedEvent,
    SessionCreated,
    StateChanged,
)
from session_store.domain.snapshot import Session


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (`| head`): stop writing and let `main` end quietly with
        exit 0 (rich's own handler exits 1)."""
        self.quiet = True
        raise BrokenPipeError("stdout was closed")


def new_console(width: int | None = None) -> Console:
    """The console commands print on (stdout); `width` None: the terminal's, or $COLUMNS."""
    return _Console(highlight=False, soft_wrap=False, width=width)


out = new_console()
err = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """One JSON document on stdout (no colour, no wrapping: for machines)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def write(text: str) -> None:
    """Plain text on stdout, as it is (no markup, no wrapping)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[fit.Cell]], *,
          wide: bool = False) -> None:
    """A table fitted to the terminal (`session_store.cli.fit`) on stdout."""
    fit.show(out, title, columns, rows, wide=wide)


def result(value: Any, text: str, *, as_json: bool) -> None:
    """A command's result: `value` as JSON for machines, else `text` (printed as is)."""
    if as_json:
        print_json(value)
    else:
        out.print(text, markup=False)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M:%S.%f")[:-3]


def ms(seconds: float | None) -> str:
    """Milliseconds, with the digits that matter below one (`0.0123 ms`, not `0.0 ms`)."""
    return "-" if seconds is None else f"{milliseconds(seconds)} ms"


def milliseconds(seconds: float | None) -> str:
    """The number of `ms` alone (`-` for none)."""
    if seconds is None:
        return "-"
    value = seconds * 1000
    return f"{value:,.1f}" if value >= 1 or value == 0 else f"{value:.3g}"


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@contextmanager
def progress(description: str, total: int | None, *, enabled: bool = True
             ) -> Iterator[Progress]:
    """A progress bar on stderr (silent when stderr is not a terminal)."""
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
        TimeRemainingColumn(), console=err, disable=not (enabled and err.is_terminal),
        transient=False)
    with bar:
        bar.add_task(description, total=total, rate="")
        yield bar


def advance(bar: Progress, steps: int, started: float, unit: str = "events") -> None:
    """Move the bar `steps` further."""
    update(bar, int(bar.tasks[0].completed) + steps, started, unit)


def update(bar: Progress, done: int, started: float, unit: str = "events", *,
           total: int | None = None) -> None:
    """Set the bar to `done` (of `total` when given), with the rate since `started`."""
    task = bar.tasks[0]
    elapsed = max(time.perf_counter() - started, 1e-9)
    if total is not None:
        bar.update(task.id, total=max(total, done))
    bar.update(task.id, completed=done, rate=f"{done / elapsed:,.0f} {unit}/s")


# --- sessions -----------------------------------------------------------------------------

def session_summary(session: Session) -> dict[str, Any]:
    """The session's own JSON form (`Session.to_dict`) without its events."""
    summary = session.to_dict()
    del summary["events"]
    return summary


_STATUS_STYLE = {"active": "green", "archived": "blue", "ended": "magenta", "expired": "yellow"}


def sessions_table(sessions: Sequence[Session], title: str = "Sessions", *,
                   wide: bool = False) -> None:
    columns = [Column("app"), Column("user"), Column("session"), Column("status"),
               Column("events", "num"), Column("last activity (UTC)"),
               Column("tags", "text", optional=True)]
    rows: list[list[fit.Cell]] = [
        [s.app_name, s.user_id, s.id, Text(s.status, style=_STATUS_STYLE.get(s.status, "")),
         str(s.version), when(s.last_update_time), ", ".join(s.tags)] for s in sessions]
    fit.show(out, title, columns, rows, wide=wide)


def users_table(sessions: Iterable[Session]) -> Table:
    """Sessions per user and app, counted by status."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for s in sessions:
        row = counts.setdefault((s.user_id, s.app_name), {})
        row[s.status] = row.get(s.status, 0) + 1
    statuses = ("active", "archived", "ended", "expired")
    table = Table(title="Sessions per user", title_justify="left")
    table.add_column("user")
    table.add_column("app")
    for status in statuses:
        table.add_column(status, justify="right", style=_STATUS_STYLE[status])
    for (user, app), row in sorted(counts.items()):
        table.add_row(user, app, *(str(row.get(status, 0) or "") for status in statuses))
    return table


# --- the timeline --------------------------------------------------------------------------

def timeline_rows(records: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """One row per event: who, what, state change, tokens and latency (JSON-ready)."""
    rows = []
    for record in records:
        data = record.data
        row: dict[str, Any] = {"version": record.version, "type": record.type,
                               "recorded_at": record.recorded_at}
        if isinstance(data, MessageAppended):
            message = data.message
            row.update(who=message.speaker, role=message.role, at=message.timestamp,
                       what=message_text(message.text, message.parts),
                       state_delta=message.state_delta or {})
            if message.usage is not None:
                row.update(tokens_in=message.usage.tokens_in,
                           tokens_out=message.usage.tokens_out, model=message.usage.model)
            if message.response_time is not None:
                row["response_time"] = message.response_time
        elif isinstance(data, SessionCreated):
            row.update(who="store", what="session created", state_delta=data.state,
                       metadata=data.metadata, tags=data.tags, timeout=data.timeout)
        elif isinstance(data, StateChanged):
            row.update(who="runner", what="state changed", state_delta=data.delta)
        elif isinstance(data, MetadataChanged):
            row.update(who="runner", what="metadata " + ("merged" if data.merge else "set"),
                       metadata=data.patch)
        elif isinstance(data, InteractionTracked):
            row.update(who="runner", what="interaction tracked", tokens_in=data.tokens_in,
                       tokens_out=data.tokens_out, response_time=data.response_time,
                       model=data.model)
        else:
            fields = msgspec.to_builtins(data)
            fields.pop("type", None)
            row.update(who="store", what=_lifecycle(record.type, fields))
        rows.append(row)
    return rows


def _lifecycle(type_name: str, fields: Mapping[str, Any]) -> str:
    words = {"SessionArchived": "archived", "SessionReactivated": "reactivated",
             "SessionEnded": "ended", "SessionExpired": "expired",
             "HistoryCleared": "history cleared", "HistoryTrimmed": "history trimmed",
             "SessionDeleted": "deleted",
             "SessionPurged": "purged", "MessageRetracted": "message retracted",
             "SessionForked": "forked from", "ForkCreated": "fork created",
             "HistoryRewound": "rewound", "HistoryCompacted": "history compacted",
             "PayloadErased": "payload erased"}
    text = words.get(type_name, type_name)
    extra = ", ".join(f"{k}={short(v, 30)}" for k, v in fields.items() if v not in (None, ""))
    return f"{text} ({extra})" if extra else text


def _short(value: Any) -> str:
    return short(value, 40)


def message_text(text: str | None, parts: list[Any] | None, *,
                 show: Callable[[Any], str] = _short, sep: str = " ") -> str:
    """A message's text with its tool calls (→) and results (←), each value through `show`
    (cut short by default: the timeline; `show` writes them whole)."""
    pieces = [text] if text else []
    for part in parts or []:
        if isinstance(part, Mapping) and "function_call" in part:
            call = part["function_call"]
            pieces.append(f"→ {call.get('name')}({show(call.get('args', {}))})")
        elif isinstance(part, Mapping) and "function_response" in part:
            answer = part["function_response"]
            pieces.append(f"← {answer.get('name')}: {show(answer.get('response'))}")
        elif isinstance(part, Mapping) and "text" in part:
            if not text:
                pieces.append(str(part["text"]))
        else:
            pieces.append(show(part))
    return sep.join(pieces) or "(empty)"


ROLE_STYLE = {"user": "cyan", "assistant": "green", "model": "green", "tool": "yellow",
               "store": "dim", "runner": "blue"}


def timeline_table(session: Session, rows: Sequence[dict[str, Any]], *,
                   wide: bool = False) -> None:
    """One line per event (free text ends in … when narrow: `show` has it whole)."""
    start = session.created_at
    title = (f"{session.app_name} / {session.user_id} / {session.id}  ·  "
             f"v{session.version}  ·  {session.status}")
    columns = [Column("v", "num", "dim"), Column("+time", "num"), Column("who"),
               Column("what", "line", ratio=3), Column("state", "line", ratio=2),
               Column("tokens", "num"), Column("latency", "num")]
    cells: list[list[fit.Cell]] = []
    for row in rows:
        at = row.get("at", row["recorded_at"])
        tokens = (f"{row['tokens_in']:,}/{row['tokens_out']:,}" if "tokens_in" in row else "")
        delta = row.get("state_delta") or row.get("metadata") or {}
        role = row.get("role", row["who"])
        cells.append([str(row["version"]), f"{at - start:+.3f}s",
                      Text(row["who"], style=ROLE_STYLE.get(role, "")),
                      " ".join(row["what"].split()), short(delta, 10_000) if delta else "",
                      tokens, ms(row.get("response_time")) if "response_time" in row else ""])
    fit.show(out, title, columns, cells, wide=wide)


def state_table(session: Session, *, wide: bool = False) -> None:
    rows = [[key, short(session.state[key], 10_000)] for key in sorted(session.state)]
    fit.show(out, f"State at v{session.version}", [Column("key"), Column("value", "text")],
             rows, wide=wide)


# --- analytics -----------------------------------------------------------------------------

_KEY_HEADINGS = {"app_name": "app", "user_id": "user", "session_id": "session", "day": "day"}


def analytics_table(by: str, keys: Sequence[str], rows: Sequence[Stats], *,
                    wide: bool = False) -> None:
    """The read model's rows; `keys` are the `Stats` fields that name a row. When the
    names and numbers do not fit side by side, the names stack in one column."""
    numbers = [Column(name, "num") for name in ("msgs", "calls", "tokens in", "out",
                                                 "timed", "mean ms", "p50 ms", "p95 ms")]
    figures = [[f"{row.messages:,}", f"{row.interactions:,}", f"{row.tokens_in:,}",
                f"{row.tokens_out:,}", f"{row.response_time.count:,}",
                *(milliseconds(value) for value in (row.response_time.mean, row.response_time.p50,
                                               row.response_time.p95))] for row in rows]
    names = [[str(getattr(row, name)) for name in keys] for row in rows]
    title = f"Analytics by {by}"
    columns = [Column(_KEY_HEADINGS[name]) for name in keys] + numbers
    cells: list[list[fit.Cell]] = [[*n, *f] for n, f in zip(names, figures, strict=True)]
    _, width = fit.table(title, columns, cells, width=out.width, wide=wide)
    if len(keys) > 1 and width > out.width and not wide:
        columns = [Column("/".join(_KEY_HEADINGS[name] for name in keys)), *numbers]
        cells = [["\n".join(n), *f] for n, f in zip(names, figures, strict=True)]
    fit.show(out, title, columns, cells, wide=wide)


def histogram(buckets: Sequence[Mapping[str, Any]], width: int = 40) -> Table:
    """Response times as horizontal bars, one per bucket."""
    table = Table(title="Response time distribution", title_justify="left", box=None,
                  show_header=False, padding=(0, 1))
    table.add_column("bucket", justify="right")
    table.add_column("bar")
    table.add_column("count", justify="right")
    peak = max((b["count"] for b in buckets), default=0)
    for bucket in buckets:
        filled = round(width * bucket["count"] / peak) if peak else 0
        bar = Text("█" * filled, style="cyan") if filled else Text("▏" if bucket["count"] else "")
        table.add_row(bucket["label"], bar, f"{bucket['count']:,}")
    return table
