"""A real LangGraph `StateGraph` (no model: nodes append messages and update state) on the
saver, on SQLite and PostgreSQL: several turns, an interrupt and its resume, the state
history, a fork from an old checkpoint, and a restart (the store reopened) between turns.
The thread is a session like any other: listed, replayed, verified, deleted with a purge."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt

from session_store.adapters.langgraph import EventSourcedCheckpointSaver
from session_store.domain.events import CheckpointSaved, MessageAppended
from session_store.errors import StoreUnavailable
from session_store.store import open_store
from session_store.sync import SyncSessionStore


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: Annotated[int, operator.add]
    approved: str


def respond(state: State) -> dict[str, Any]:
    last = state["messages"][-1]
    reply = AIMessage(content=f"echo: {last.content}",
                      usage_metadata={"input_tokens": 5, "output_tokens": 3, "total_tokens": 8})
    return {"messages": [reply], "turns": 1}


def review(state: State) -> dict[str, Any]:
    if "book" not in str(state["messages"][-2].content):
        return {}
    answer = interrupt({"question": "book it?"})
    return {"approved": str(answer), "messages": [AIMessage(content=f"booked: {answer}")]}


def build() -> StateGraph[State]:
    builder = StateGraph(State)
    builder.add_node("respond", respond)
    builder.add_node("review", review)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", "review")
    builder.add_edge("review", END)
    return builder


CONFIG: Any = {"configurable": {"thread_id": "trip-1", "user_id": "ada", "app_name": "travel"}}


async def test_a_graph_over_turns_interrupt_fork_and_restart(store_url: str) -> None:
    async with open_store(store_url) as store:
        graph = build().compile(checkpointer=EventSourcedCheckpointSaver(store))
        await graph.ainvoke({"messages": [HumanMessage(content="hello")]}, CONFIG)
        out = await graph.ainvoke({"messages": [HumanMessage(content="please book Lisbon")]},
                                  CONFIG)
        assert "__interrupt__" in out  # review stopped to ask
        state = await graph.aget_state(CONFIG)
        assert state.next == ("review",) and state.interrupts

    # A restart: a new process would open the store again and find the thread in the log.
    async with open_store(store_url) as store:
        saver = EventSourcedCheckpointSaver(store)
        graph = build().compile(checkpointer=saver)
        out = await graph.ainvoke(Command(resume="yes"), CONFIG)
        assert out["approved"] == "yes" and out["turns"] == 2
        assert out["messages"][-1].content == "booked: yes"
        out = await graph.ainvoke({"messages": [HumanMessage(content="thanks")]}, CONFIG)
        assert out["turns"] == 3

        history = [s async for s in graph.aget_state_history(CONFIG)]
        assert len(history) >= 8
        assert [len(s.values.get("messages", [])) for s in history][0] == 7
        # Fork: change an old checkpoint's state; the original branch stays as it was.
        first_turn = next(s for s in reversed(history) if s.values.get("turns") == 1)
        forked = await graph.aupdate_state(first_turn.config, {"approved": "forked"})
        assert forked["configurable"]["checkpoint_id"] != first_turn.config["configurable"][
            "checkpoint_id"]
        branch = await graph.aget_state(forked)
        assert branch.values["approved"] == "forked" and branch.values["turns"] == 1
        assert branch.parent_config is not None
        assert branch.parent_config["configurable"]["checkpoint_id"] == first_turn.config[
            "configurable"]["checkpoint_id"]
        resumed = await graph.ainvoke({"messages": [HumanMessage(content="again")]}, forked)
        assert resumed["turns"] == 2 and resumed["approved"] == "forked"

        # The thread is a session of the store, with its conversation as messages.
        page = await store.list_sessions(app_name="travel", user_id="ada")
        assert [s.id for s in page.sessions] == ["trip-1"]
        assert "langgraph" in page.sessions[0].tags
        session = await store.get_session(app_name="travel", user_id="ada", session_id="trip-1")
        assert session is not None
        texts = [m.text for m in session.messages]
        assert texts[:4] == ["hello", "echo: hello", "please book Lisbon",
                             "echo: please book Lisbon"]
        assert "booked: yes" in texts and "echo: again" in texts
        assert len(texts) == len(set(m.message.native["id"] for m in [  # no duplicates
            e.data for e in session.events if isinstance(e.data, MessageAppended)]))
        assert session.statistics().tokens_in == 4 * 5  # four model turns
        replayed = await store.replay(session)
        assert replayed.version == session.version
        digest = await store.digest()
        await store.rebuild()  # the read models fold the thread's events again, the same
        report = await store.verify(digest=digest)
        assert report.ok, report.problems

    # Another restart: the thread replays from the log alone.
    async with open_store(store_url) as store:
        graph = build().compile(checkpointer=EventSourcedCheckpointSaver(store))
        again = [s async for s in graph.aget_state_history(CONFIG)]
        assert [s.config for s in again[-len(history):]] == [s.config for s in history]
        latest = (await graph.aget_state(CONFIG)).values  # the fork is the newest branch
        assert latest["turns"] == 2 and latest["approved"] == "forked"
        saver = EventSourcedCheckpointSaver(store)
        await saver.adelete_thread("trip-1")
        assert await saver.aget_tuple(CONFIG) is None
        assert await store.get_session(app_name="travel", user_id="ada",
                                       session_id="trip-1") is None
        report = await store.verify()
        assert report.ok, report.problems


async def test_channel_values_are_stored_once(store_url: str) -> None:
    """A channel whose version did not change is not written again (as the official savers'
    blobs): a large value set once is stored once however long the thread grows."""
    async with open_store(store_url) as store:
        graph = build().compile(checkpointer=EventSourcedCheckpointSaver(store))
        config: Any = {"configurable": {"thread_id": "long"}}
        await graph.ainvoke({"messages": [HumanMessage(content="hi")], "approved": "x" * 5000},
                            config)
        for turn in range(12):
            await graph.ainvoke({"messages": [HumanMessage(content=f"turn {turn}")]}, config)
        saved = [e.data async for e in store.read_stream(("langgraph", "default", "long"))
                 if isinstance(e.data, CheckpointSaved)]
        assert len(saved) > 12 * 3
        stored = [v for c in saved for v in c.values if v.channel == "approved"]
        assert len(stored) == 1
        assert (await graph.aget_state(config)).values["approved"] == "x" * 5000


def test_the_sync_graph_on_a_sync_store(tmp_path: Any) -> None:
    with SyncSessionStore(str(tmp_path / "sync.db")) as store:
        graph = build().compile(checkpointer=EventSourcedCheckpointSaver(store))
        graph.invoke({"messages": [HumanMessage(content="hi")]}, CONFIG)
        out = graph.invoke({"messages": [HumanMessage(content="book it")]}, CONFIG)
        assert "__interrupt__" in out
        out = graph.invoke(Command(resume="ok"), CONFIG)
        assert out["approved"] == "ok"
        assert len(list(graph.get_state_history(CONFIG))) >= 6


async def test_sync_methods_refuse_the_store_loop(tmp_path: Any) -> None:
    async with open_store(str(tmp_path / "a.db")) as store:
        saver = EventSourcedCheckpointSaver(store)
        with pytest.raises(StoreUnavailable):
            saver.get_tuple(CONFIG)  # no loop known yet
        assert await saver.aget_tuple(CONFIG) is None
        with pytest.raises(StoreUnavailable):
            saver.get_tuple(CONFIG)  # on the store's own loop: would deadlock
        # From another thread, the sync forms hand their work to the store's loop.
        found: list[Any] = []
        worker = threading.Thread(target=lambda: found.append(saver.get_tuple(CONFIG)))
        worker.start()
        while worker.is_alive():
            await asyncio.sleep(0.01)
        assert found == [None]
