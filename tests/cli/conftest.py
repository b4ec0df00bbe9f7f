"""A demo database per backend, written once per module by the real CLI and shared by the
read-only tests; tests that change a database make their own from `store_url`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import fresh_pg_database
from tests.kit import SMALL_DEMO, ok_json


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(url, the demo's --json summary) of a database the demo wrote."""
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("demo") / "sessions.db")
        yield url, ok_json(*SMALL_DEMO, db=url)
        return
    loop = asyncio.new_event_loop()
    database = fresh_pg_database()
    try:
        url = loop.run_until_complete(database.__aenter__())
        yield url, ok_json(*SMALL_DEMO, db=url)
    finally:
        loop.run_until_complete(database.__aexit__(None, None, None))
        loop.close()


@pytest.fixture
def demo_url(demo_db: tuple[str, dict[str, Any]]) -> str:
    return demo_db[0]


@pytest.fixture
def demo_summary(demo_db: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return demo_db[1]
