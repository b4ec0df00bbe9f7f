"""LangGraph's own conformance suite (`langgraph-checkpoint-conformance`) against the saver,
on SQLite and PostgreSQL: every base capability and every extended one must pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    EXTENDED_CAPABILITIES,
)
from langgraph.checkpoint.conformance.report import ProgressCallbacks

from session_store.adapters.langgraph import EventSourcedCheckpointSaver
from session_store.store import open_store


async def test_conformance(store_url: str, record_property: Any) -> None:
    @checkpointer_test(name="EventSourcedCheckpointSaver")
    async def saver() -> AsyncIterator[EventSourcedCheckpointSaver]:
        async with open_store(store_url) as store:
            yield EventSourcedCheckpointSaver(store)

    failures: list[str] = []

    def on_result(capability: str, test: str, passed: bool, error: str | None) -> None:
        if not passed:
            failures.append(f"{capability}/{test}: {error}")

    report = await validate(saver, progress=ProgressCallbacks(on_test_result=on_result))
    report.print_report()
    counts = {}
    for group, caps in (("base", BASE_CAPABILITIES), ("extended", EXTENDED_CAPABILITIES)):
        results = [report.results[c.value] for c in caps]
        counts[group] = (sum(r.tests_passed for r in results),
                         sum(r.tests_passed + r.tests_failed for r in results))
        line = (f"{store_url.split(':')[0].split('+')[0] if '://' in store_url else 'sqlite'} "
                f"{group}: {counts[group][0]}/{counts[group][1]} tests passed; " + ", ".join(
                    f"{c.value}={report.results[c.value].passed}" for c in sorted(caps)))
        print(line)
        record_property("langgraph_conformance", line)  # printed in the run's summary
    assert not failures, "\n".join(failures)
    assert report.passed_all_base()
    assert all(report.results[c.value].passed for c in EXTENDED_CAPABILITIES)
