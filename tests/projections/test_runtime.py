"""The runtime: read-your-writes waits, and the modes it accepts."""

from __future__ import annotations

import pytest

from session_store.domain.events import (
    SessionCreated,
)
from tests.kit import ALL_CATCHUP, ALL_INLINE, S1, append, opened, read_models, said


async def test_wait_for_times_out_and_inline_needs_no_wait(store_url: str) -> None:
    async with opened(store_url, ALL_INLINE) as (log, runtime):
        last = await append(log, S1, SessionCreated(), said("now"))
        await runtime.wait_for(last + 1000, timeout=0.1)  # nothing to wait for: all inline
        history = read_models(runtime).history
        assert await history.count(app_name="app", user_id="ann", session_id="s1") == 1
    async with opened(store_url, ALL_CATCHUP) as (log, runtime):
        with pytest.raises(TimeoutError):
            await runtime.wait_for(last + 1000, timeout=0.2)


def test_modes_are_checked() -> None:
    from projections.runtime import resolve_modes

    assert resolve_modes({"history": "catch-up"})["history"] == "catchup"
    with pytest.raises(ValueError, match="unknown projection"):
        resolve_modes({"histories": "inline"})
    with pytest.raises(ValueError, match="mode must be"):
        resolve_modes({"users": "eventually"})
    with pytest.raises(ValueError, match="always runs inline"):
        resolve_modes({"heads": "catchup"})
