"""Property: for random command sequences, get_session == replay == get_session(at_version=latest),
and at_version=n is the session after exactly n events (checked against an in-test model).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_store import Event, Session, SessionClosed, Usage
from session_store.store import SessionStore

KEYS = st.sampled_from(["a", "b", "app:x", "user:y", "temp:z"])
VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(),
                   st.lists(st.booleans(), max_size=2))
DELTAS = st.dictionaries(KEYS, VALUES, max_size=3)

COMMANDS = st.one_of(
    st.tuples(st.just("message"), st.sampled_from(["user", "assistant", "tool"]),
              st.text(max_size=8), DELTAS, st.booleans()),
    st.tuples(st.just("state"), DELTAS),
    st.tuples(st.just("metadata"), st.dictionaries(st.sampled_from(["m", "n"]), VALUES,
                                                   max_size=2), st.booleans()),
    st.tuples(st.just("track"), st.integers(0, 50), st.integers(0, 50),
              st.floats(0, 10, allow_nan=False)),
    st.sampled_from([("archive",), ("reactivate",), ("clear",), ("end",)]),
)


@dataclass
class Model:
    """What the session should look like, kept by the test alone."""

    state: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    texts: list[str] = field(default_factory=list)
    message_tokens: int = 0
    """Usage of the visible messages: statistics() covers what the snapshot holds..."""
    tracked_tokens: int = 0
    """...plus every tracked interaction, which clear_history does not take back."""

    def view(self) -> tuple[Any, ...]:
        return (dict(self.state), dict(self.metadata), self.status, list(self.texts),
                self.message_tokens + self.tracked_tokens)


def persisted(delta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in delta.items() if not k.startswith("temp:")}


def view(session: Session) -> tuple[Any, ...]:
    stats = session.statistics()
    return (dict(session.state), dict(session.metadata), session.status,
            [m.text for m in session.messages], stats.tokens_in + stats.tokens_out)


async def run(store: SessionStore, session: Session, model: Model, command: tuple[Any, ...]
              ) -> None:
    kind = command[0]
    if kind == "message":
        _, role, text, delta, with_usage = command
        usage = Usage(tokens_in=2, tokens_out=3) if with_usage else None
        await store.append_event(session, Event(role=role, text=text, state_delta=delta or None,
                                                usage=usage))
        model.state.update(persisted(delta))
        model.texts.append(text)
        model.message_tokens += 5 if with_usage else 0
    elif kind == "state":
        await store.update_state(session, command[1])
        model.state.update(persisted(command[1]))
    elif kind == "metadata":
        _, patch, merge = command
        await store.update_session_metadata(session, patch, merge=merge)
        model.metadata = {**model.metadata, **patch} if merge else dict(patch)
    elif kind == "track":
        _, tokens_in, tokens_out, response_time = command
        await store.track_interaction(session, tokens_in=tokens_in, tokens_out=tokens_out,
                                      response_time=response_time)
        model.tracked_tokens += tokens_in + tokens_out
    elif kind == "archive":
        await store.archive_session(session)
        model.status = "archived"
    elif kind == "reactivate":
        await store.reactivate_session(session)
        model.status = "active"
    elif kind == "clear":
        await store.clear_history(session)
        model.texts = []
        model.message_tokens = 0
    elif kind == "end":
        await store.end_session(session)
        model.status = "ended"


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=DELTAS, commands=st.lists(COMMANDS, max_size=12))
async def test_reads_agree_with_the_log_and_the_model(
        store: SessionStore, initial: dict[str, Any], commands: list[tuple[Any, ...]]) -> None:
    app = f"app-{uuid.uuid4().hex[:8]}"  # scope streams of one example only
    session = await store.create_session(app_name=app, user_id="u", state=initial)
    model = Model(state=persisted(initial))
    expected = {1: model.view()}
    for command in commands:
        if model.status == "ended":
            before = await store.log.last_position()
            try:
                await run(store, session, Model(), command)
            except SessionClosed:
                pass
            else:
                raise AssertionError(f"{command} was accepted by an ended session")
            assert await store.log.last_position() == before
            continue
        await run(store, session, model, command)
        expected[len(expected) + 1] = model.view()

    latest = len(expected)
    now = await store.get_session(app_name=app, user_id="u", session_id=session.id)
    assert now is not None and now.version == latest
    assert view(now) == expected[latest]
    assert now == await store.replay(session)
    assert now == await store.get_session(app_name=app, user_id="u", session_id=session.id,
                                          at_version=latest)
    for version, wanted in expected.items():
        then = await store.get_session(app_name=app, user_id="u", session_id=session.id,
                                       at_version=version)
        assert then is not None and then.version == version
        assert view(then) == wanted, f"at_version={version}"
        assert then == await store.replay(session, to_version=version)
