"""Event ids: UUIDv7, time-ordered, distinct across forks."""

from __future__ import annotations

from session_store.domain.ids import new_id, new_ids


def test_new_ids_are_canonical_time_ordered_uuids_and_distinct() -> None:
    import time
    import uuid

    before = time.time_ns() // 1_000_000
    ids = new_ids(2_000) + [new_id() for _ in range(2_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    stamps = []
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
        stamps.append(parsed.int >> 80)
    assert all(before <= stamp <= after for stamp in stamps)
    assert stamps == sorted(stamps)  # made later, sorts later: the index grows at its edge


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    import os

    new_id()  # fill the pool
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(write_end, "".join(new_ids(8)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 10_000).decode()
    assert not any(i in child for i in new_ids(8))
