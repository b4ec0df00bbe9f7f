"""The heads fold: `fold` is pure, `advance` (in place) folds to the same heads."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from session_store.domain.events import (
    Event,
    HistoryCleared,
    InteractionTracked,
    MessageAppended,
    MessageRetracted,
    MetadataChanged,
    RecordedEvent,
    SessionArchived,
    SessionCreated,
    SessionEnded,
    SessionExpired,
    SessionReactivated,
    StateChanged,
)
from session_store.domain.lifecycle import Head, advance, copy_head, fold, fold_all
from session_store.errors import SessionStoreError
from session_store.storage.codec import encode_head

_keys = st.sampled_from(["a", "b", "app:x", "user:y", "temp:z"])
_deltas = st.dictionaries(_keys, st.integers(0, 3), max_size=3)
_payloads = st.one_of(
    st.builds(lambda d: MessageAppended(message=Event(role="user", text="hi", state_delta=d)),
              _deltas),
    st.builds(StateChanged, delta=_deltas),
    st.builds(MetadataChanged, patch=st.dictionaries(_keys, st.integers(0, 3), max_size=2),
              merge=st.booleans()),
    st.builds(MessageRetracted, message_id=st.sampled_from(["m1", "m2"])),
    st.builds(InteractionTracked, tokens_in=st.integers(0, 9), tokens_out=st.integers(0, 9),
              response_time=st.sampled_from([0.0, 0.5])),
    st.sampled_from([HistoryCleared(), SessionArchived(), SessionReactivated(), SessionExpired(),
                     SessionEnded()]),
)


def _records(session_id: str, payloads: list[Any]) -> list[RecordedEvent]:
    return [RecordedEvent(position=n, app_name="app", user_id="u" if session_id else "",
                          session_id=session_id, version=n, type=type(p).__name__, data=p,
                          event_id=f"e{n}", recorded_at=float(n), hash="")
            for n, p in enumerate(payloads, 1)]


@given(st.booleans(), _deltas, st.lists(_payloads, max_size=25))
def test_fold_is_pure_and_advance_agrees(scope_stream: bool, initial: dict[str, int],
                                         payloads: list[Any]) -> None:
    first: list[Any] = [] if scope_stream else [SessionCreated(state=initial, tags=["t"])]
    records = _records("" if scope_stream else "s", [*first, *payloads])
    folded: list[Head] = []
    head: Head | None = None
    owned: Head | None = None
    for record in records:
        before = None if head is None else encode_head(head)
        try:
            head = fold(head, record)
        except SessionStoreError:
            break  # e.g. an event after SessionEnded: advance refuses it alike below
        if folded:
            assert encode_head(folded[-1]) == before  # the input head was not changed
        folded.append(head)
        owned = advance(owned, record)
        assert encode_head(owned) == encode_head(head)
    for n, expected in enumerate(folded, 1):  # later folds never reached back into them
        assert encode_head(expected) == encode_head(fold_all(records[:n]))  # type: ignore[arg-type]
    if folded:
        copied = copy_head(folded[-1])
        assert copied == folded[-1] and copied.state is not folded[-1].state
