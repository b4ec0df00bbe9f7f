"""Model usage per app: calls and tokens per model, folded from the log's messages and
tracked interactions.

The analytics read model has no per-model rows, so the viewer keeps this fold in
memory: the first request of an app reads its `MessageAppended` and
`InteractionTracked` events, later ones only what was appended since. A purged session's
events read back erased and are left out of a first fold; a purge after that is not
subtracted until the server restarts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from session_store.domain.events import InteractionTracked, MessageAppended, RecordedEvent
from session_store.store import SessionStore

_TYPES = ["MessageAppended", "InteractionTracked"]
UNNAMED = "(unnamed)"


@dataclass
class _Usage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass
class _Fold:
    position: int = 0
    """The next log position to read."""
    models: dict[str, _Usage] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add(self, record: RecordedEvent) -> None:
        data = record.data
        if isinstance(data, MessageAppended) and data.message.usage is not None:
            usage = data.message.usage
            self._count(usage.model, usage.tokens_in, usage.tokens_out)
        elif isinstance(data, InteractionTracked):
            self._count(data.model, data.tokens_in, data.tokens_out)

    def _count(self, model: str | None, tokens_in: int, tokens_out: int) -> None:
        usage = self.models.setdefault(model or UNNAMED, _Usage())
        usage.calls += 1
        usage.tokens_in += tokens_in
        usage.tokens_out += tokens_out


class ModelUsage:
    """Per app, the models its calls used (most calls first)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._folds: dict[str, _Fold] = {}

    async def of(self, app_name: str) -> list[dict[str, Any]]:
        fold = self._folds.setdefault(app_name, _Fold())
        async with fold.lock:
            async for record in self.store.read_all(from_position=fold.position, types=_TYPES,
                                                    app_name=app_name):
                fold.add(record)
                fold.position = record.position + 1
            rows = [{"model": name, "calls": u.calls, "tokens_in": u.tokens_in,
                     "tokens_out": u.tokens_out} for name, u in fold.models.items()]
        return sorted(rows, key=lambda row: (-row["calls"], row["model"]))
