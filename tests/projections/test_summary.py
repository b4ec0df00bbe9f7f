"""`analytics.summary`: a manager's view of a period, checked against sums computed here
over what the test appended, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from session_store import Event, InvalidEvent, Usage
from session_store.store import SessionStore

MODELS = [("gpt-x", "openai"), ("claude-y", "anthropic"), ("local-z", None)]


def _rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


async def _fill(store: SessionStore) -> dict[str, object]:
    """Sessions of two users of app `a` (and one of app `b`) with usage; what was appended."""
    rng = random.Random(14)
    expected: dict[str, object] = {}
    counts: dict[str, int] = {}
    models: dict[str, list[int]] = {}
    providers: dict[str, list[int]] = {}
    times: list[float] = []
    for n in range(7):
        session = await store.create_session(app_name="a", user_id=f"u{n % 2}",
                                             session_id=f"s{n}")
        events = []
        for i in range(rng.randint(1, 9)):
            model, provider = MODELS[rng.randrange(3)]
            tokens = (rng.randint(0, 500), rng.randint(0, 90))
            rt = round(rng.uniform(0.05, 3.0), 3)
            events.append(Event(role="user", text=f"q{i}"))
            events.append(Event(role="assistant", text=f"a{i}", response_time=rt,
                                usage=Usage(tokens_in=tokens[0], tokens_out=tokens[1],
                                            model=model, provider=provider)))
            for table, name in ((models, model), (providers, provider)):
                if name is not None:
                    row = table.setdefault(name, [0, 0, 0, 0])
                    row[0] += 1
                    row[1] += 1
                    row[2] += tokens[0]
                    row[3] += tokens[1]
            times.append(rt)
        await store.append_events(session, events)
        counts[session.id] = len(events)
    tracked = await store.create_session(app_name="a", user_id="u0", session_id="tracked")
    await store.track_interaction(tracked, tokens_in=7, tokens_out=3, response_time=0.5,
                                  model="gpt-x", provider="openai")
    counts["tracked"] = 0
    times.append(0.5)
    for table, name in ((models, "gpt-x"), (providers, "openai")):
        row = table.setdefault(name, [0, 0, 0, 0])
        row[1] += 1
        row[2] += 7
        row[3] += 3
    other = await store.create_session(app_name="b", user_id="u9", session_id="elsewhere")
    await store.add_message(other, "user", "not counted in a", response_time=9.0)
    expected.update(counts=counts, models=models, providers=providers, times=times)
    return expected


async def test_summary_sums_what_was_appended(store: SessionStore) -> None:
    appended = await _fill(store)
    counts = appended["counts"]
    models, providers, times = appended["models"], appended["providers"], appended["times"]
    assert isinstance(counts, dict) and isinstance(times, list)
    assert isinstance(models, dict) and isinstance(providers, dict)

    summary = await store.analytics.summary(app_name="a")
    assert summary.sessions == len(counts) == 8
    assert summary.active_users == 2
    assert summary.messages == sum(counts.values())
    assert summary.messages_by_role == {"assistant": summary.messages // 2,
                                        "user": summary.messages // 2}
    values = [float(v) for v in counts.values()]
    spread = summary.messages_per_session
    assert spread.mean == pytest.approx(sum(values) / len(values))
    assert (spread.p50, spread.p95, spread.max) == (_rank(values, 0.5), _rank(values, 0.95),
                                                    max(values))
    assert {m: [u.messages, u.interactions, u.tokens_in, u.tokens_out]
            for m, u in summary.models.items()} == models
    assert {p: [u.messages, u.interactions, u.tokens_in, u.tokens_out]
            for p, u in summary.providers.items()} == providers
    assert summary.tokens_in == sum(u[2] for u in models.values())
    rt = summary.response_time
    assert rt.count == len(times) and rt.min == min(times) and rt.max == max(times)
    assert rt.mean == pytest.approx(sum(times) / len(times))
    for q, found in ((0.5, rt.p50), (0.95, rt.p95), (0.99, rt.p99)):
        assert found == pytest.approx(_rank(times, q), rel=0.025)  # histogram: within 2.5 %

    mine = await store.analytics.summary(app_name="a", user_id="u1")
    assert mine.sessions == sum(1 for s in counts if s.startswith("s") and int(s[1:]) % 2)
    assert mine.active_users == 1
    everything = await store.analytics.summary()
    assert everything.sessions == 9 and everything.active_users == 3

    # Deleted sessions keep counting (their usage happened); purged ones are forgotten.
    await store.delete_session(app_name="a", user_id="u0", session_id="s0")
    assert (await store.analytics.summary(app_name="a")).messages == summary.messages
    await store.delete_session(app_name="a", user_id="u0", session_id="s0", purge=True)
    purged = await store.analytics.summary(app_name="a")
    assert purged.messages == summary.messages - counts["s0"] and purged.sessions == 7
    before = purged
    await store.rebuild(["analytics"])
    assert await store.analytics.summary(app_name="a") == before
    report = await store.verify()
    assert report.ok, report.problems


async def test_a_period_is_whole_utc_days(store: SessionStore) -> None:
    session = await store.create_session(app_name="a", user_id="u", session_id="today")
    await store.add_message(session, "user", "hi", usage=Usage(tokens_in=1, model="m"))
    now = time.time()
    today = datetime.fromtimestamp(now, UTC)
    found = await store.analytics.summary(app_name="a", start=today - timedelta(days=1),
                                          end=today)
    assert found.sessions == 1 and found.models["m"].tokens_in == 1
    assert found.period.first_day == (today - timedelta(days=1)).date().isoformat()
    assert found.period.last_day == today.date().isoformat()
    assert (await store.analytics.summary(app_name="a", start=now)).sessions == 1
    past = await store.analytics.summary(app_name="a", start=now - 3 * 86_400,
                                         end=now - 2 * 86_400)
    assert (past.sessions, past.active_users, past.messages, past.models) == (0, 0, 0, {})
    assert past.messages_per_session.mean is None and past.response_time.p50 is None
    assert (await store.analytics.summary(app_name="nobody")).sessions == 0


async def test_summary_refuses_what_it_cannot_mean(store: SessionStore) -> None:
    for bad in ({"start": datetime(2026, 1, 1)},  # naive: which timezone?
                {"start": 10.0, "end": 5.0}, {"start": -1}, {"end": "yesterday"},
                {"start": True}, {"end": float("nan")}, {"app_name": ""}, {"user_id": 3}):
        with pytest.raises(InvalidEvent):
            await store.analytics.summary(**bad)  # type: ignore[arg-type]


async def test_models_and_providers_are_checked_like_ids(store: SessionStore) -> None:
    session = await store.create_session(app_name="a", user_id="u")
    for model, provider in (("", None), ("m\x00", None), ("m", 5), ("m", "x" * 513)):
        with pytest.raises(InvalidEvent):
            await store.track_interaction(session, model=model,  # type: ignore[arg-type]
                                          provider=provider)
        with pytest.raises(InvalidEvent):
            await store.add_message(session, "assistant", "hi", usage=Usage(
                model=model, provider=provider))  # type: ignore[arg-type]
    assert await store.count_events() == 1  # only the session's creation
