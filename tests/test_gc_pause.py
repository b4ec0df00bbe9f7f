"""gc_pause: the library's one process-wide setting is changed only around its own work."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from session_store import gc_pause


@pytest.fixture(autouse=True)
def _threshold() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_threshold_is_raised_while_held_and_restored_exactly() -> None:
    gc.set_threshold(555, 11, 12)
    with gc_pause.fewer_collections():
        assert gc.get_threshold()[0] == gc_pause.BURST_THRESHOLD
        with gc_pause.fewer_collections():  # holders nest
            pass
        assert gc.get_threshold()[0] == gc_pause.BURST_THRESHOLD
    assert gc.get_threshold() == (555, 11, 12)


def test_a_threshold_the_application_sets_meanwhile_is_left_alone() -> None:
    gc.set_threshold(700, 10, 10)
    gc_pause.hold()
    gc.set_threshold(321, 9, 8)  # the application's own choice, while the library holds
    gc_pause.release()
    assert gc.get_threshold() == (321, 9, 8)


def test_a_higher_threshold_of_the_application_is_not_lowered() -> None:
    gc.set_threshold(500_000, 10, 10)
    with gc_pause.fewer_collections():
        assert gc.get_threshold() == (500_000, 10, 10)
    assert gc.get_threshold() == (500_000, 10, 10)
