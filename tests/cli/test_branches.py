"""`fork`, `rewind` and `history --key`: once through the console script, the rest in-process,
on both backends; what they print is checked against the store."""

from __future__ import annotations

import json

from session_store import SyncSessionStore
from tests.kit import in_process, ok_json


def _conversation(url: str) -> None:
    with SyncSessionStore(url) as store:
        s = store.create_session(app_name="app", user_id="ann", session_id="chat",
                                 state={"city": "Oslo"})
        store.add_message(s, "user", "to Lisbon", state_delta={"city": "Lisbon"})
        store.add_message(s, "assistant", "3 flights", state_delta={"user:lang": "pt"})
        store.add_message(s, "user", "no, Porto", state_delta={"city": "Porto"})


def test_fork_rewind_history(store_url: str) -> None:
    _conversation(store_url)
    forked = ok_json("fork", "chat", "--at-version", "2", "--id", "retry", db=store_url)
    assert forked["session_id"] == "retry" and forked["messages"] == 1
    assert forked["forked_from"] == {"app_name": "app", "user_id": "ann", "session_id": "chat",
                                     "version": 2}
    code, out, _ = in_process("rewind", "chat", "--to-version", "3", db=store_url)
    assert code == 0 and "1 message(s) left the visible history, 2 remain" in out
    code, out, _ = in_process("history", "chat", "--key", "city", "--json", db=store_url)
    assert code == 0
    assert [(v["version"], v["value"]) for v in json.loads(out)] == [
        (1, "Oslo"), (2, "Lisbon"), (4, "Porto"), (6, "Lisbon")]
    code, out, _ = in_process("history", "chat", "--key", "user:lang", db=store_url)
    assert code == 0 and "pt" in out and "1 value(s)" in out
    code, out, _ = in_process("history", "retry", "--key", "nothing", db=store_url)
    assert code == 0 and "never had a value" in out
    code, out, _ = in_process("replay", "chat", "--json", db=store_url)
    types = [row["type"] for row in json.loads(out)["timeline"]]
    assert types.count("MessageAppended") == 3 and "HistoryRewound" in types
    assert "ForkCreated" in types
    code, _, err = in_process("rewind", "chat", "--to-version", "99", db=store_url)
    assert code == 2 and "has 6 events" in err
    code, _, err = in_process("fork", "nobody", db=store_url)
    assert code == 2
    with SyncSessionStore(store_url) as store:
        chat = store.get_session(app_name="app", user_id="ann", session_id="chat")
        assert chat is not None and [m.text for m in chat.messages] == ["to Lisbon", "3 flights"]
        assert [f.key.session_id for f in chat.forks] == ["retry"]
        assert store.verify().ok
