"""The saver's edges: typed errors for bad input, lossless typed bytes, threads named by
their user and app, a deleted thread's id, and a core that imports without LangGraph."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from session_store.adapters.langgraph import EventSourcedCheckpointSaver
from session_store.domain.events import CheckpointSaved
from session_store.errors import InvalidEvent, SessionStoreError
from session_store.store import SessionStore


def _config(thread: str, **more: Any) -> Any:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": "", **more}}


async def _put(saver: EventSourcedCheckpointSaver, config: Any, values: dict[str, Any]) -> Any:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = {name: 1 for name in values}
    return await saver.aput(config, checkpoint, {"source": "input", "step": -1, "parents": {}},
                            {name: 1 for name in values})


async def test_bad_input_is_refused_with_typed_errors(store: SessionStore) -> None:
    saver = EventSourcedCheckpointSaver(store)
    with pytest.raises(InvalidEvent, match="thread_id"):
        await saver.aget_tuple({"configurable": {}})
    with pytest.raises(InvalidEvent, match="checkpoint_id"):
        await saver.aput_writes(_config("t"), [("ch", 1)], "task")
    with pytest.raises(InvalidEvent, match="strategy"):
        await saver.aprune(["t"], strategy="keep_some")
    with pytest.raises(InvalidEvent):
        EventSourcedCheckpointSaver("sessions.db")  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent):
        await _put(saver, _config("x" * 600), {"a": 1})  # ids have the store's limits


async def test_every_serializer_value_reads_back(store: SessionStore) -> None:
    saver = EventSourcedCheckpointSaver(store)
    values = {"raw": bytes(range(256)), "nul": "a\x00b", "big": 2**63 - 1, "nan": float("inf"),
              "set": {1, 2}, "tuple": (1, "two"), "nested": {"k": [b"\xff", None]}}
    stored = await _put(saver, _config("lossless"), values)
    found = await EventSourcedCheckpointSaver(store).aget_tuple(stored)  # a cold saver
    assert found is not None
    # What the serializer itself reads back (it turns a tuple into a list), byte for byte.
    assert found.checkpoint["channel_values"] == {
        name: saver.serde.loads_typed(saver.serde.dumps_typed(value))
        for name, value in values.items()}
    async for record in store.read_stream(("langgraph", "default", "lossless")):
        if isinstance(record.data, CheckpointSaved):
            assert {v.channel: (v.value.type, v.value.value) for v in record.data.values} == {
                name: saver.serde.dumps_typed(value) for name, value in values.items()}


async def test_a_thread_belongs_to_its_user_and_app(store: SessionStore) -> None:
    saver = EventSourcedCheckpointSaver(store, app_name="bot")
    await _put(saver, _config("t-1", user_id="ada"), {"a": 1})
    assert await saver.aget_tuple(_config("t-1")) is None  # the default user has no such thread
    found = await saver.aget_tuple(_config("t-1", user_id="ada"))
    assert found is not None and found.config["configurable"]["user_id"] == "ada"
    page = await store.list_sessions(app_name="bot", user_id="ada")
    assert [s.id for s in page.sessions] == ["t-1"]
    await saver.adelete_thread("t-1")  # by thread id alone, as LangGraph calls it
    assert await saver.aget_tuple(_config("t-1", user_id="ada")) is None
    with pytest.raises(SessionStoreError):  # a deleted id is never reused
        await _put(saver, _config("t-1", user_id="ada"), {"a": 2})
    assert (await store.verify()).ok


def test_the_core_imports_without_langgraph() -> None:
    code = ("import sys; sys.modules['langgraph'] = None; sys.modules['langchain_core'] = None\n"
            "import session_store, session_store.store, session_store.sync\n"
            "import session_store.cli.main\n"
            "from session_store import open_store, SyncSessionStore\n"
            "try:\n    import session_store.adapters.langgraph\nexcept ImportError: print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
