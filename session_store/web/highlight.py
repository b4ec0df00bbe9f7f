"""Search hits with the matched words marked, as the history read model matches them:
whole words, case- and accent-insensitive (`projections.history.fold`)."""

from __future__ import annotations

import re

from projections.history import fold

_WORD = re.compile(r"\w+", re.UNICODE)


def words(query: str) -> set[str]:
    """The words of a query as search compares them."""
    return {fold(word).casefold() for word in _WORD.findall(query)}


def fragments(text: str, wanted: set[str]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is_hit) pieces, in order; joined, they give `text` back.
    A page shows them with `textContent`, the hits inside <mark>."""
    pieces: list[tuple[str, bool]] = []
    last = 0
    for match in _WORD.finditer(text):
        if fold(match.group()).casefold() in wanted:
            if match.start() > last:
                pieces.append((text[last:match.start()], False))
            pieces.append((match.group(), True))
            last = match.end()
    if last < len(text):
        pieces.append((text[last:], False))
    return pieces
