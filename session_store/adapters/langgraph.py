"""LangGraph checkpointer backed by the event log.

    from session_store.adapters.langgraph import EventSourcedCheckpointSaver
    graph = builder.compile(checkpointer=EventSourcedCheckpointSaver(store))
    await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1", "user_id": "ada"}})

Each thread is one session of the store, named `(app_name, user_id, thread_id)`: the app
and user come from the run's `configurable` (`app_name`, `user_id`; defaults "langgraph"
and "default", or the saver's own), and the session is tagged "langgraph". Its checkpoint
namespaces (subgraphs) share the thread's stream, each event naming its namespace. Every
checkpoint is a `CheckpointSaved` event carrying only the channel values that changed
(LangGraph's serializer output, type and bytes, kept as they are), every batch of pending
writes a `PendingWritesSaved`, a prune or deleted run a `CheckpointsRemoved`. New
LangChain messages in the `messages` channel are also appended as the session's messages
(in the same commit), so history, replay and analytics show the conversation.

Reads fold the stream into a `Thread` kept in memory and catch up on the events appended
since (one indexed read), so reading the latest checkpoint does not depend on the length
of the thread. Deleting a thread tombstones and purges its session; its id is not reused.
The sync methods run on the store's loop: pass a `SyncSessionStore`, or call them from
another thread than the async store's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from session_store.adapters.langgraph_messages import new_messages
from session_store.adapters.langgraph_threads import Thread, Threads
from session_store.adapters.langgraph_threads import typed as _typed
from session_store.domain.events import (
    ChannelValue,
    CheckpointRef,
    CheckpointSaved,
    CheckpointsRemoved,
    Payload,
    PendingWrite,
    PendingWritesSaved,
    RecordedEvent,
    SessionCreated,
    SessionKey,
)
from session_store.errors import ConcurrencyError, InvalidEvent, StoreUnavailable
from session_store.store import SessionStore
from session_store.sync import SyncSessionStore

DEFAULT_APP = "langgraph"
DEFAULT_USER = "default"
TAG = "langgraph"
"""The tag of every thread's session."""

T = TypeVar("T")


class EventSourcedCheckpointSaver(BaseCheckpointSaver[Any]):
    """A LangGraph checkpointer whose threads are sessions of `store` (see the module)."""

    def __init__(self, store: SessionStore | SyncSessionStore, *, app_name: str = DEFAULT_APP,
                 user_id: str = DEFAULT_USER, serde: SerializerProtocol | None = None,
                 cache_threads: int = 1024) -> None:
        super().__init__(serde=serde)
        if isinstance(store, SyncSessionStore):
            self.store = store.store
            self._home: asyncio.AbstractEventLoop | None = store.loop
        elif isinstance(store, SessionStore):
            self.store = store
            self._home = None
        else:
            raise InvalidEvent(f"store must be a SessionStore or SyncSessionStore, not "
                               f"{type(store).__name__}")
        self.app_name = app_name
        self.user_id = user_id
        self._threads = Threads(cache_threads)

    # --- identity -----------------------------------------------------------------------

    def _key(self, config: RunnableConfig) -> SessionKey:
        configurable = config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if thread_id is None or thread_id == "":
            raise InvalidEvent("a LangGraph config needs configurable.thread_id")
        return SessionKey(str(configurable.get("app_name") or self.app_name),
                          str(configurable.get("user_id") or self.user_id), str(thread_id))

    def _config(self, base: RunnableConfig, key: SessionKey, ns: str,
                checkpoint_id: str) -> RunnableConfig:
        configurable: dict[str, Any] = {"thread_id": key.session_id, "checkpoint_ns": ns,
                                        "checkpoint_id": checkpoint_id}
        given = base.get("configurable") or {}
        for name in ("app_name", "user_id"):
            if given.get(name):
                configurable[name] = given[name]
        return {"configurable": configurable}

    async def _keys_of(self, thread_id: str) -> list[SessionKey]:
        """The LangGraph sessions named `thread_id`, in any app and for any user."""
        found = []
        for key in await self.store.find_sessions(str(thread_id), limit=1000):
            session = await self.store.get_session(app_name=key.app_name, user_id=key.user_id,
                                                   session_id=key.session_id,
                                                   num_recent_events=0)
            if session is not None and TAG in session.tags:
                found.append(key)
        return found

    # --- the fold -----------------------------------------------------------------------

    async def _thread(self, key: SessionKey) -> Thread:
        thread = self._threads.get(key)
        records = [r async for r in self.store.read_stream(key, from_version=thread.version + 1)]
        if not thread.apply(records):  # cannot happen with a contiguous read; start over
            self._threads.forget(key)
            thread = self._threads.get(key)
            thread.apply([r async for r in self.store.read_stream(key)])
        return thread

    async def _append(self, key: SessionKey, payloads: list[Payload]) -> list[RecordedEvent]:
        thread = self._threads.get(key)
        if thread.version == 0:
            thread = await self._thread(key)
        if thread.version == 0:
            with contextlib.suppress(ConcurrencyError):  # created meanwhile: append below
                records = await self.store.append_payloads(
                    key, [SessionCreated(tags=[TAG]), *payloads], expected_version=0)
                thread.apply(records)
                return records
        records = await self.store.append_payloads(key, payloads)
        thread.apply(records)
        return records

    def _tuple(self, config: RunnableConfig, key: SessionKey, thread: Thread,
               saved: CheckpointSaved) -> CheckpointTuple:
        checkpoint: Checkpoint = self.serde.loads_typed(
            (saved.checkpoint.type, saved.checkpoint.value))
        values: dict[str, Any] = {}
        for channel, version in checkpoint["channel_versions"].items():
            found = thread.values.get((saved.ns, channel, str(version)))
            if found is not None and found.type != "empty":
                values[channel] = self.serde.loads_typed((found.type, found.value))
        checkpoint = {**checkpoint, "channel_values": values}
        pending = thread.pending(saved.ns, saved.checkpoint_id)
        writes = [(task_id, channel, self.serde.loads_typed((value.type, value.value)))
                  for task_id, channel, value, _, _ in pending]
        return CheckpointTuple(
            config=self._config(config, key, saved.ns, saved.checkpoint_id),
            checkpoint=checkpoint,
            metadata=self.serde.loads_typed((saved.metadata.type, saved.metadata.value)),
            parent_config=(self._config(config, key, saved.ns, saved.parent_id)
                           if saved.parent_id else None),
            pending_writes=writes,
        )

    # --- async API ----------------------------------------------------------------------

    async def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run on the store's loop: here when this is it, else handed over to it."""
        running = asyncio.get_running_loop()
        if self._home is None:
            self._home = running
        if running is self._home:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._home))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._call(self._get_tuple(config))

    async def _get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        key = self._key(config)
        ns = str((config.get("configurable") or {}).get("checkpoint_ns", ""))
        thread = await self._thread(key)
        saved = thread.find(ns, get_checkpoint_id(config))
        return None if saved is None else self._tuple(config, key, thread, saved)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None
                    ) -> AsyncIterator[CheckpointTuple]:
        for found in await self._call(self._list(config, filter, before, limit)):
            yield found

    async def _list(self, config: RunnableConfig | None, filter: dict[str, Any] | None,
                    before: RunnableConfig | None, limit: int | None) -> list[CheckpointTuple]:
        if limit is not None and limit <= 0:
            return []
        if config is not None:
            keys = [self._key(config)]
            configurable = config.get("configurable") or {}
            ns = configurable.get("checkpoint_ns")
            wanted = get_checkpoint_id(config)
        else:
            keys = await self._all_keys()
            ns, wanted = None, None
        before_id = get_checkpoint_id(before) if before else None
        found: list[CheckpointTuple] = []
        for key in keys:
            thread = await self._thread(key)
            for saved in thread.ordered(None if ns is None else str(ns)):
                if wanted and saved.checkpoint_id != wanted:
                    continue
                if before_id and saved.checkpoint_id >= before_id:
                    continue
                result = self._tuple(config or {}, key, thread, saved)
                if filter and not all(result.metadata.get(k) == v for k, v in filter.items()):
                    continue
                found.append(result)
                if limit is not None and len(found) >= limit:
                    return found
        return found

    async def _all_keys(self) -> list[SessionKey]:
        keys: dict[SessionKey, None] = {}
        async for record in self.store.read_all(types=["CheckpointSaved"]):
            keys[record.key] = None
        return list(keys)

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        return await self._call(self._put(config, checkpoint, metadata, new_versions))

    async def _put(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        key = self._key(config)
        configurable = config.get("configurable") or {}
        ns = str(configurable.get("checkpoint_ns", ""))
        stored: dict[str, Any] = dict(checkpoint)
        channel_values: dict[str, Any] = stored.pop("channel_values", None) or {}
        values = [ChannelValue(channel=channel, version=str(version),
                               value=_typed(self.serde.dumps_typed(channel_values[channel])
                                            if channel in channel_values else ("empty", b"")))
                  for channel, version in new_versions.items()]
        full = get_checkpoint_metadata(config, metadata)
        run_id = full.get("run_id")
        payloads: list[Payload] = [CheckpointSaved(
            ns=ns, checkpoint_id=str(checkpoint["id"]), parent_id=configurable.get("checkpoint_id"),
            checkpoint=_typed(self.serde.dumps_typed(stored)),
            metadata=_typed(self.serde.dumps_typed(full)), values=values,
            run_id=None if run_id is None else str(run_id))]
        if "messages" in new_versions:
            thread = self._threads.get(key)
            if thread.version == 0:  # not folded yet (a restart): learn what is recorded
                thread = await self._thread(key)
            payloads.extend(new_messages(channel_values.get("messages"), thread.message_ids, ns))
        await self._append(key, payloads)
        return self._config(config, key, ns, str(checkpoint["id"]))

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await self._call(self._put_writes(config, writes, task_id, task_path))

    async def _put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str) -> None:
        if not writes:
            return
        key = self._key(config)
        configurable = config.get("configurable") or {}
        checkpoint_id = configurable.get("checkpoint_id")
        if not checkpoint_id:
            raise InvalidEvent("put_writes needs configurable.checkpoint_id")
        batch = [PendingWrite(idx=WRITES_IDX_MAP.get(channel, idx), channel=channel,
                              value=_typed(self.serde.dumps_typed(value)))
                 for idx, (channel, value) in enumerate(writes)]
        await self._append(key, [PendingWritesSaved(
            ns=str(configurable.get("checkpoint_ns", "")), checkpoint_id=str(checkpoint_id),
            task_id=str(task_id), task_path=str(task_path), writes=batch)])

    async def adelete_thread(self, thread_id: str) -> None:
        await self._call(self._delete_thread(thread_id))

    async def _delete_thread(self, thread_id: str) -> None:
        for key in await self._keys_of(thread_id):
            await self.store.delete_session(app_name=key.app_name, user_id=key.user_id,
                                            session_id=key.session_id, purge=True)
            self._threads.forget(key)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._call(self._delete_for_runs(run_ids))

    async def _delete_for_runs(self, run_ids: Sequence[str]) -> None:
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        doomed: dict[SessionKey, list[CheckpointRef]] = {}
        async for record in self.store.read_all(types=["CheckpointSaved"]):
            data = record.data
            if isinstance(data, CheckpointSaved) and data.run_id in wanted:
                doomed.setdefault(record.key, []).append(
                    CheckpointRef(ns=data.ns, checkpoint_id=data.checkpoint_id))
        for key, refs in doomed.items():
            thread = await self._thread(key)
            visible = [r for r in refs if thread.find(r.ns, r.checkpoint_id) is not None]
            if visible:
                await self._append(key, [CheckpointsRemoved(checkpoints=visible,
                                                            reason="delete_for_runs")])

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._call(self._copy_thread(source_thread_id, target_thread_id))

    async def _copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        for source in await self._keys_of(source_thread_id):
            thread = await self._thread(source)
            target = SessionKey(source.app_name, source.user_id, str(target_thread_id))
            payloads: list[Payload] = []
            for saved in reversed(thread.ordered(None)):  # oldest first, as written
                payloads.append(self._with_values(thread, saved))
                for task_id, channel, value, task_path, idx in thread.pending(
                        saved.ns, saved.checkpoint_id):
                    payloads.append(PendingWritesSaved(
                        ns=saved.ns, checkpoint_id=saved.checkpoint_id, task_id=task_id,
                        task_path=task_path, writes=[PendingWrite(idx=idx, channel=channel,
                                                                  value=value)]))
            if payloads:
                await self._append(target, payloads)

    def _with_values(self, thread: Thread, saved: CheckpointSaved) -> CheckpointSaved:
        """`saved` with every channel value it reads (a copy must not depend on the source)."""
        checkpoint = self.serde.loads_typed((saved.checkpoint.type, saved.checkpoint.value))
        values = []
        for channel, version in checkpoint["channel_versions"].items():
            found = thread.values.get((saved.ns, channel, str(version)))
            if found is not None:
                values.append(ChannelValue(channel=channel, version=str(version), value=found))
        return CheckpointSaved(ns=saved.ns, checkpoint_id=saved.checkpoint_id,
                               parent_id=saved.parent_id, checkpoint=saved.checkpoint,
                               metadata=saved.metadata, values=values, run_id=saved.run_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._call(self._prune(thread_ids, strategy))

    async def _prune(self, thread_ids: Sequence[str], strategy: str) -> None:
        if strategy not in ("keep_latest", "delete"):
            raise InvalidEvent(f"prune strategy must be 'keep_latest' or 'delete', "
                               f"not {strategy!r}")
        for thread_id in thread_ids:
            for key in await self._keys_of(thread_id):
                thread = await self._thread(key)
                refs = [CheckpointRef(ns=saved.ns, checkpoint_id=saved.checkpoint_id)
                        for saved in thread.ordered(None)
                        if strategy == "delete" or saved.checkpoint_id != thread.latest[saved.ns]]
                if refs:
                    await self._append(key, [CheckpointsRemoved(checkpoints=refs,
                                                                reason=f"prune:{strategy}")])

    # --- sync API -----------------------------------------------------------------------

    def _block(self, coroutine: Coroutine[Any, Any, T]) -> T:
        home = self._home
        if home is None or home.is_closed():
            coroutine.close()
            raise StoreUnavailable("the sync methods of EventSourcedCheckpointSaver run on the "
                                   "store's loop: pass a SyncSessionStore, or use the async ones")
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is home:
                coroutine.close()
                raise StoreUnavailable("a sync method of EventSourcedCheckpointSaver was called "
                                       "on the store's own loop: use its async form there")
        return asyncio.run_coroutine_threadsafe(coroutine, home).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._block(self._get_tuple(config))

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None
             ) -> Iterator[CheckpointTuple]:
        yield from self._block(self._list(config, filter, before, limit))

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        return self._block(self._put(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        self._block(self._put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._block(self._delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._block(self._delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._block(self._copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._block(self._prune(thread_ids, strategy))
