"""Mergeable usage counters: what one analytics row adds up.

A `Tally` counts interactions, messages by role, tokens and response times.
Response times are kept in whole microseconds (sums stay exact, so any two
folds of the same events agree bit for bit) and in a sparse histogram of
fixed log-spaced buckets: bucket `i >= 1` holds values in
`[GROWTH**(i-1), GROWTH**i)` microseconds, bucket 0 holds zero. Histograms of
two rows merge by adding counts, which is what the per-user, per-app and
per-day rollups do; percentiles read from a histogram are within
`(GROWTH - 1) / 2` (2.5 %) of the true value, and exact at the extremes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

import msgspec

_days: dict[int, str] = {}


def day_of(at: float) -> str:
    """The UTC date (ISO) of a time in epoch seconds: the day an analytics row counts."""
    number = int(at // 86400)
    day = _days.get(number)
    if day is None:
        day = _days[number] = time.strftime("%Y-%m-%d", time.gmtime(number * 86400))
    return day


GROWTH = 1.05
_LOG_GROWTH = math.log(GROWTH)


def bucket_of(micros: int) -> int:
    """The histogram bucket of a response time in microseconds."""
    if micros <= 0:
        return 0
    return int(math.log(micros) / _LOG_GROWTH) + 1


def bucket_value(index: int) -> float:
    """The representative value (microseconds) of a bucket: its geometric middle."""
    if index <= 0:
        return 0.0
    return float(GROWTH ** (index - 1) * math.sqrt(GROWTH))


class ResponseTimes(msgspec.Struct, frozen=True, kw_only=True):
    """Response-time distribution in seconds (`None` when nothing was measured)."""

    count: int = 0
    total: float = 0.0
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class Tally:
    """Counters of one analytics row, updated event by event and merged row by row."""

    __slots__ = ("interactions", "messages", "roles", "tokens_in", "tokens_out", "rt_count",
                 "rt_sum", "rt_min", "rt_max", "hist", "last_update_time")

    def __init__(self) -> None:
        self.interactions = 0
        self.messages = 0
        self.roles: dict[str, int] = {}
        self.tokens_in = 0
        self.tokens_out = 0
        self.rt_count = 0
        self.rt_sum = 0
        self.rt_min: int | None = None
        self.rt_max: int | None = None
        self.hist: dict[int, int] = {}
        self.last_update_time = 0.0

    def add(self, at: float, *, role: str | None = None, interaction: bool = False,
            tokens_in: int = 0, tokens_out: int = 0, response_time: float | None = None) -> None:
        """Count one message (`role` given) and/or one interaction recorded at `at`; tokens
        and a response time count either way (a tracked completion of a turn adds both)."""
        if role is not None:
            self.messages += 1
            self.roles[role] = self.roles.get(role, 0) + 1
        if interaction:
            self.interactions += 1
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if response_time is not None:
            micros = round(response_time * 1_000_000)
            self.rt_count += 1
            self.rt_sum += micros
            if self.rt_min is None or micros < self.rt_min:
                self.rt_min = micros
            if self.rt_max is None or micros > self.rt_max:
                self.rt_max = micros
            index = bucket_of(micros)
            self.hist[index] = self.hist.get(index, 0) + 1
        if at > self.last_update_time:
            self.last_update_time = at

    def merge(self, other: Tally) -> None:
        self.interactions += other.interactions
        self.messages += other.messages
        for role, count in other.roles.items():
            self.roles[role] = self.roles.get(role, 0) + count
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.rt_count += other.rt_count
        self.rt_sum += other.rt_sum
        if other.rt_min is not None and (self.rt_min is None or other.rt_min < self.rt_min):
            self.rt_min = other.rt_min
        if other.rt_max is not None and (self.rt_max is None or other.rt_max > self.rt_max):
            self.rt_max = other.rt_max
        for index, count in other.hist.items():
            self.hist[index] = self.hist.get(index, 0) + count
        if other.last_update_time > self.last_update_time:
            self.last_update_time = other.last_update_time

    # --- rows ------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The row columns (deterministic encodings, so equal tallies make equal rows)."""
        return {
            "interactions": self.interactions, "messages": self.messages,
            "roles": _encode_roles(self.roles),
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "rt_count": self.rt_count, "rt_sum": self.rt_sum, "rt_min": self.rt_min,
            "rt_max": self.rt_max,
            "rt_hist": _encoder.encode(sorted(self.hist.items())).decode(),
            "last_update_time": self.last_update_time,
        }

    @classmethod
    def from_row(cls, row: Any) -> Tally:
        """A tally from a row mapping holding the columns of `values()`."""
        tally = cls()
        tally.interactions = row["interactions"]
        tally.messages = row["messages"]
        tally.roles = msgspec.json.decode(row["roles"])
        tally.tokens_in = row["tokens_in"]
        tally.tokens_out = row["tokens_out"]
        tally.rt_count = row["rt_count"]
        tally.rt_sum = row["rt_sum"]
        tally.rt_min = row["rt_min"]
        tally.rt_max = row["rt_max"]
        tally.hist = dict(_hist_decoder.decode(row["rt_hist"]))
        tally.last_update_time = row["last_update_time"]
        return tally

    @classmethod
    def merged(cls, tallies: Iterable[Tally]) -> Tally:
        total = cls()
        for tally in tallies:
            total.merge(tally)
        return total

    # --- reading ---------------------------------------------------------------

    def percentile(self, q: float) -> float | None:
        """The `q` quantile (0..1) in seconds, from the histogram, clamped to min and max."""
        if not self.rt_count or self.rt_min is None or self.rt_max is None:
            return None
        rank = max(1, math.ceil(q * self.rt_count))
        seen = 0
        value = float(self.rt_max)
        for index in sorted(self.hist):
            seen += self.hist[index]
            if seen >= rank:
                value = bucket_value(index)
                break
        return min(max(value, self.rt_min), self.rt_max) / 1_000_000

    def response_times(self) -> ResponseTimes:
        if not self.rt_count or self.rt_min is None or self.rt_max is None:
            return ResponseTimes()
        total = self.rt_sum / 1_000_000
        return ResponseTimes(count=self.rt_count, total=total, mean=total / self.rt_count,
                             min=self.rt_min / 1_000_000, max=self.rt_max / 1_000_000,
                             p50=self.percentile(0.50), p95=self.percentile(0.95),
                             p99=self.percentile(0.99))


# The row encodings are those of `json.dumps(..., sort_keys=True, separators=(",", ":"))`,
# byte for byte (rows written before must compare equal), at a fraction of the cost.
_encoder = msgspec.json.Encoder(order="sorted")
_hist_decoder = msgspec.json.Decoder(list[tuple[int, int]])


def _encode_roles(roles: dict[str, int]) -> str:
    text = _encoder.encode(roles).decode()
    if not text.isascii():  # json.dumps escapes non-ASCII; keep its exact bytes
        text = json.dumps(roles, sort_keys=True, separators=(",", ":"))
    return text
