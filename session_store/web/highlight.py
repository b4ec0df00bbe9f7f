"""Search hits with the matched words marked, by the rule search itself follows
(`session_store.domain.search`: whole words or `prefix*`, case- and accent-insensitive)."""

from __future__ import annotations

from session_store.domain import search


class Wanted:
    """The words a query asks for: whole (`kettle`) or as a prefix (`kett*`)."""

    def __init__(self, query: str) -> None:
        self.whole: set[str] = set()
        self.prefixes: set[str] = set()
        for term in search.parse(query):
            self.whole.update(term.words)
            if term.prefix:
                self.prefixes.add(term.words[-1])

    def __contains__(self, word: str) -> bool:
        folded = search.fold(word)
        return folded in self.whole or any(folded.startswith(p) for p in self.prefixes)


def words(query: str) -> Wanted:
    """The words of a query as search compares them."""
    return Wanted(query)


def fragments(text: str, wanted: Wanted) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is_hit) pieces, in order; joined, they give `text` back.
    A page shows them with `textContent`, the hits inside <mark>."""
    pieces: list[tuple[str, bool]] = []
    last = 0
    for match in search.WORD.finditer(text):
        if match.group() in wanted:
            if match.start() > last:
                pieces.append((text[last:match.start()], False))
            pieces.append((match.group(), True))
            last = match.end()
    if last < len(text):
        pieces.append((text[last:], False))
    return pieces
