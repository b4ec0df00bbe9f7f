"""The read-model tests run each model inline and catch-up (`modes`)."""

from __future__ import annotations

import pytest

from tests.kit import ALL_CATCHUP, ALL_INLINE


@pytest.fixture(params=["inline", "catchup"])
def modes(request: pytest.FixtureRequest) -> dict[str, str]:
    return ALL_INLINE if request.param == "inline" else ALL_CATCHUP
