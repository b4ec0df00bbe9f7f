"""`verify(session)`: one session's chain, versions and head against a fresh fold."""

from __future__ import annotations

import sqlalchemy as sa

from projections.heads import HEADS
from session_store.storage.codec import decode_head, encode_head
from session_store.store import SessionStore


async def test_verify_one_session_finds_an_altered_head_and_only_that(
        store: SessionStore) -> None:
    kept = await store.create_session(app_name="app", user_id="u", state={"n": 1})
    altered = await store.create_session(app_name="app", user_id="u", state={"n": 1})
    await store.update_state(altered, {"n": 2})
    assert (await store.verify(kept)).ok and (await store.verify(altered)).ok

    where = sa.and_(HEADS.c.app_name == "app", HEADS.c.user_id == "u",
                    HEADS.c.session_id == altered.id)
    async with store.db.engine.begin() as conn:
        head = decode_head((await conn.execute(sa.select(HEADS.c.body).where(where))).scalar_one())
        head.state = {"n": 99}
        await conn.execute(HEADS.update().where(where).values(body=encode_head(head)))

    report = await store.verify(altered)
    assert not report.ok and report.events == 2 and report.streams == 1
    assert altered.id in report.problems[0]
    assert (await store.verify(kept)).ok
