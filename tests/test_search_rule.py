"""One meaning of search: `Session.search` and `history.search` give the same messages for
every case of one table, on both backends (`session_store.domain.search`)."""

from __future__ import annotations

import pytest

from session_store import Event
from session_store.errors import InvalidEvent
from session_store.store import SessionStore

CORPUS = [
    "The weather in Lisbon is sunny",
    "Weathering the storm, café au lait",
    "New York, new york!",
    "e-mail me at ada@example.com",
    "snake_case and CamelCase",
    "Straße ÉCOLE 2024",
    "東京 is Tokyo",
    "long " + "w" * 3000,  # a word longer than a PostgreSQL tsvector holds
]

# Each case: a search text and the messages (indexes into CORPUS) it matches, worked out by
# hand from the rule: words of letters and digits, no case, no accents, every term.
CASES: list[tuple[str, list[int]]] = [
    ("weather", [0]),                 # a word, not a prefix: "Weathering" is another word
    ("weath*", [0, 1]),               # a prefix
    ("WEATHER lisbon", [0]),          # every term, any case
    ('"in lisbon"', [0]),             # a phrase: in this order, one after the other
    ('"lisbon in"', []),
    ('"weather lisbon"', []),         # both words, not adjacent
    ("cafe", [1]), ("CAFÉ", [1]),     # accents folded both ways
    ('"new york"', [2]), ('"york new"', [2]),  # "...York, new york": adjacent across a comma
    ('"new yo"*', [2]),               # a phrase whose last word is a prefix
    ("e-mail", [3]),                  # punctuation joins words into a phrase
    ("example.com", [3]), ("mail*", [3]), ("ada", [3]),
    ("snake", [4]), ("snake_case", [4]), ("camel*", [4]), ("case", [4]),
    ("straße", [5]), ("strasse", []), ("ecole", [5]), ("2024", [5]), ("202*", [5]),
    ("東京", [6]), ('"is tokyo"', [6]),
    ("w" * 3000, [7]), ("long " + "w" * 3000, [7]), ("w" * 2999, []), ("w" * 2999 + "*", [7]),
    ("lisbon absent", []), ("", []), ("***", []), ('"', []), ("!?", []),
]


async def test_one_meaning_of_search(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u", session_id="s")
    for index, text in enumerate(CORPUS):
        await store.append_event(session, Event(role="user", text=text, id=f"m{index}",
                                                timestamp=1000.0 + index))
    snapshot = await store.get_session(app_name="app", user_id="u", session_id="s")
    assert snapshot is not None
    for text, expected in CASES:
        wanted = [f"m{i}" for i in expected]
        in_snapshot = [m.id for m in snapshot.search(text)]
        in_history = [m.message_id for m in await store.history.search(text, app_name="app")]
        assert in_snapshot == wanted, text                 # oldest first
        assert in_history == wanted[::-1], text            # newest first
    with pytest.raises(InvalidEvent):
        snapshot.search(None)  # type: ignore[arg-type]


async def test_search_pages_past_candidates_the_rule_drops(store: SessionStore) -> None:
    """A phrase whose words are in many messages but in order in few: the index hands out
    candidates in pages until `limit` messages match."""
    session = await store.create_session(app_name="app", user_id="u", session_id="s")
    texts = [("york new" if i % 10 else "new york") for i in range(200)]
    await store.append_events(session, [Event(role="user", text=t, id=f"p{i}")
                                        for i, t in enumerate(texts)])
    found = await store.history.search('"new york"', app_name="app", limit=15)
    expected = [f"p{i}" for i in range(199, -1, -1) if texts[i] == "new york"][:15]
    assert [m.message_id for m in found] == expected
