"""Tables that fit the terminal without cutting what users copy.

A column is one of four kinds: `id` and `num` cells are never cut or wrapped (ids and
numbers are what a user copies into the next command); `text` cells wrap; `line` cells
keep one line and end in `…` when the terminal is too narrow (the timeline: one line per
event, `show` has the whole text). When even the ids and numbers do not fit, the table is
printed wider than the terminal rather than cut. `--wide` prints every cell whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | Text

MIN_TEXT = 8
"""The narrowest a wrapping or one-line column gets."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "id"
    """'id', 'num', 'text' or 'line'."""
    style: str = ""
    ratio: int = 1
    """Share of the room left for `text` and `line` columns."""
    optional: bool = False
    """A `text` column left out when it would get less than `MIN_TEXT` (see --wide)."""


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _cut(cell: Cell, width: int) -> Cell:
    text = cell.plain if isinstance(cell, Text) else cell
    if cell_len(text) <= width:
        return cell
    short = text[: max(width - 1, 0)] + "…"
    return Text(short, style=cell.style) if isinstance(cell, Text) else short


def table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
          width: int, wide: bool = False) -> tuple[Table, int]:
    """The table, and the width to print it at (`console.print(table, width=...)`)."""
    needed = [max([cell_len(c.name), *(_width(row[i]) for row in rows)])
              for i, c in enumerate(columns)]
    fixed = sum(n for n, c in zip(needed, columns, strict=True) if c.kind in ("id", "num"))
    room = width - 2 * (len(columns) - 1) - fixed  # one space of padding, one separator
    kept = list(range(len(columns)))
    if not wide:
        for i, column in enumerate(columns):
            if column.optional and room - 2 < MIN_TEXT:
                kept.remove(i)
                room += 2
    flexible = [i for i in kept if columns[i].kind in ("text", "line")]
    shares = {i: needed[i] for i in flexible}
    if not wide and sum(shares.values()) > room:
        total_ratio = sum(columns[i].ratio for i in flexible) or 1
        for i in flexible:
            shares[i] = min(needed[i], max(MIN_TEXT, cell_len(columns[i].name),
                                           room * columns[i].ratio // total_ratio))
    dropped = [columns[i].name for i in range(len(columns)) if i not in kept]
    if dropped:
        title += f"  ({', '.join(dropped)}: --wide)"
    result = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                   show_edge=False, padding=(0, 1), collapse_padding=True)
    for i in kept:
        column = columns[i]
        kind = column.kind
        result.add_column(column.name, style=column.style or None,
                          justify="right" if kind == "num" else "left",
                          no_wrap=kind != "text", overflow="fold" if kind == "text" else
                          "ellipsis", min_width=needed[i] if kind in ("id", "num") else None)
    for row in rows:
        result.add_row(*(_cut(row[i], shares[i]) if columns[i].kind == "line" else row[i]
                         for i in kept))
    used = 2 * (len(kept) - 1) + sum(needed[i] for i in kept if i not in shares) + sum(
        shares.values())
    return result, max(width, used)


def show(console: Console, title: str, columns: Sequence[Column],
         rows: Sequence[Sequence[Cell]], *, wide: bool = False) -> None:
    """Print the fitted table on `console`."""
    found, width = table(title, columns, rows, width=console.width, wide=wide)
    console.print(found, width=width, crop=False)
