"""The analytics tally's row encoding: stable across releases, and a faithful round trip."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from projections.tally import Tally

roles = st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 10**6), max_size=5)
times = st.lists(st.floats(min_value=0.0001, max_value=1e4, allow_nan=False), max_size=30)


@given(roles, times)
def test_rows_encode_exactly_as_json_dumps_did_and_read_back(role_counts: dict[str, int],
                                                              response_times: list[float]
                                                              ) -> None:
    tally = Tally()
    for role, count in role_counts.items():
        for _ in range(min(count, 3)):
            tally.add(1.0, role=role)
    for seconds in response_times:
        tally.add(2.0, interaction=True, response_time=seconds)
    row = tally.values()
    # Rows written by earlier releases (json.dumps) must compare equal to new ones.
    assert row["roles"] == json.dumps(tally.roles, sort_keys=True, separators=(",", ":"))
    assert row["rt_hist"] == json.dumps(sorted(tally.hist.items()), separators=(",", ":"))
    again = Tally.from_row(row)
    assert again.values() == row
    assert again.roles == tally.roles and again.hist == tally.hist
