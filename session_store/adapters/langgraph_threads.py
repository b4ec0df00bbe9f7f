"""A LangGraph thread as folded from its session stream (no LangGraph import: a pure fold).

`Thread.apply` takes the stream's events in version order and keeps what the checkpoint
saver answers from: the visible checkpoints per namespace, the channel values by
(namespace, channel, version), the pending writes per checkpoint, and the ids of the
LangChain messages already recorded as the session's messages. Events it has seen
(by version) are skipped, so folding the same events twice is harmless.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from session_store.domain.events import (
    CheckpointSaved,
    CheckpointsRemoved,
    MessageAppended,
    PendingWritesSaved,
    RecordedEvent,
    SessionDeleted,
    SessionKey,
    SessionPurged,
    TypedValue,
)

MESSAGE_KIND = "langgraph/message"
"""`Event.native["kind"]` of the messages the saver records from a thread's state."""

def typed(pair: tuple[str, bytes]) -> TypedValue:
    """A serializer's `(type, bytes)` pair as stored."""
    return TypedValue(type=pair[0], value=bytes(pair[1]))


Write = tuple[str, str, TypedValue, str, int]
"""A pending write as folded: task id, channel, value, task path, index."""


@dataclass
class Thread:
    """What the saver knows of one thread, as of stream version `version`."""

    version: int = 0
    deleted: bool = False
    checkpoints: dict[str, dict[str, CheckpointSaved]] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)
    values: dict[tuple[str, str, str], TypedValue] = field(default_factory=dict)
    writes: dict[tuple[str, str], dict[tuple[str, int], Write]] = field(default_factory=dict)
    message_ids: set[str] = field(default_factory=set)

    def apply(self, records: list[RecordedEvent]) -> bool:
        """Fold the records that follow `version`; False when one is missing (a gap), and
        nothing from the gap on is folded."""
        for record in records:
            if record.version <= self.version:
                continue
            if record.version != self.version + 1:
                return False
            self.version = record.version
            self._fold(record)
        return True

    def _fold(self, record: RecordedEvent) -> None:
        data = record.data
        if isinstance(data, CheckpointSaved):
            found = self.checkpoints.setdefault(data.ns, {})
            found[data.checkpoint_id] = data
            if data.checkpoint_id > self.latest.get(data.ns, ""):
                self.latest[data.ns] = data.checkpoint_id
            for value in data.values:
                self.values[(data.ns, value.channel, value.version)] = value.value
        elif isinstance(data, PendingWritesSaved):
            writes = self.writes.setdefault((data.ns, data.checkpoint_id), {})
            for write in data.writes:
                key = (data.task_id, write.idx)
                if write.idx >= 0 and key in writes:
                    continue  # a regular write is kept as first written (a retry adds nothing)
                writes[key] = (data.task_id, write.channel, write.value, data.task_path, write.idx)
        elif isinstance(data, CheckpointsRemoved):
            touched = set()
            for ref in data.checkpoints:
                self.checkpoints.get(ref.ns, {}).pop(ref.checkpoint_id, None)
                self.writes.pop((ref.ns, ref.checkpoint_id), None)
                touched.add(ref.ns)
            for ns in touched:
                remaining = self.checkpoints.get(ns)
                if remaining:
                    self.latest[ns] = max(remaining)
                else:
                    self.checkpoints.pop(ns, None)
                    self.latest.pop(ns, None)
        elif isinstance(data, MessageAppended):
            native = data.message.native
            if isinstance(native, dict) and native.get("kind") == MESSAGE_KIND:
                self.message_ids.add(str(native.get("id")))
        elif isinstance(data, SessionDeleted | SessionPurged):
            self.deleted = True
            self.checkpoints.clear()
            self.latest.clear()
            self.values.clear()
            self.writes.clear()

    def ordered(self, ns: str | None) -> list[CheckpointSaved]:
        """The visible checkpoints of namespace `ns` (every namespace when None), newest
        first (checkpoint ids sort by time)."""
        spaces = [ns] if ns is not None else list(self.checkpoints)
        found = [c for space in spaces for c in self.checkpoints.get(space, {}).values()]
        found.sort(key=lambda c: c.checkpoint_id, reverse=True)
        return found

    def find(self, ns: str, checkpoint_id: str | None) -> CheckpointSaved | None:
        """Checkpoint `checkpoint_id` of `ns`, or its newest when the id is None."""
        found = self.checkpoints.get(ns)
        if not found:
            return None
        if checkpoint_id is None:
            return found[self.latest[ns]]
        return found.get(checkpoint_id)

    def pending(self, ns: str, checkpoint_id: str) -> list[Write]:
        writes = self.writes.get((ns, checkpoint_id))
        if not writes:
            return []
        # LangGraph's order (`writes_sort_key`): task path, task id, index.
        return [writes[key] for key in sorted(writes, key=lambda k: (writes[k][3], *k))]


class Threads:
    """The folded threads the saver keeps, newest use last, at most `capacity` of them."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._threads: OrderedDict[SessionKey, Thread] = OrderedDict()

    def get(self, key: SessionKey) -> Thread:
        thread = self._threads.get(key)
        if thread is None:
            thread = self._threads[key] = Thread()
            while len(self._threads) > self.capacity:
                self._threads.popitem(last=False)
        else:
            self._threads.move_to_end(key)
        return thread

    def forget(self, key: SessionKey) -> None:
        self._threads.pop(key, None)
