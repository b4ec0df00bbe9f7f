"""What a search text means: one rule for `Session.search` and `history.search`.

A search text is a list of terms; a message matches when it matches every term:

- a word, `lisbon`: some word of the message is that word;
- a prefix, `weath*`: some word of the message starts with it;
- a phrase, `"exact words"` (or words joined by punctuation, `e-mail`): the words appear
  one after the other, in that order; a `*` after a phrase's last word makes that word a
  prefix (`"new yo"*`).

Words are runs of letters and digits (`[^\\W_]+`: punctuation, spaces and `_` separate
them), compared without case and without accents ('Café' matches `cafe`). A text without
any word matches nothing. The history read model narrows the candidates with its full-text
index (SQLite FTS5, PostgreSQL `tsvector`) and then applies this very rule, so both backends
and a snapshot's `search` agree on every message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import msgspec

from session_store.domain.events import Event

WORD = re.compile(r"[^\W_]+")
"""A word: a run of letters and digits."""
_TERM = re.compile(r'"([^"]*)"?(\*?)|(\S+)')


class Term(msgspec.Struct, frozen=True):
    """Words that must appear one after the other; `prefix`: the last one may go on."""

    words: tuple[str, ...]
    prefix: bool = False


def fold(text: str) -> str:
    """`text` without accents, lower case: what words are compared as ('Café' -> 'cafe')."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c))
    return text.lower()


def words(text: str) -> list[str]:
    """The words of `text`, folded, in order."""
    return WORD.findall(fold(text))


def indexed(text: str) -> str:
    """What a full-text index is given for `text`: its folded words, one space apart."""
    return " ".join(words(text))


def parse(text: str) -> list[Term]:
    """The terms of a search text (none when it holds no word)."""
    terms: list[Term] = []
    for phrase, star, bare in _TERM.findall(text):
        found = tuple(words(bare or phrase))
        if found:
            terms.append(Term(found, bool(star) or bare.endswith("*")))
    return terms


def matches(terms: Sequence[Term], text: str) -> bool:
    """Whether `text` matches every term (False when there are no terms)."""
    if not terms:
        return False
    have = words(text)
    return all(_has(term, have) for term in terms)


def _has(term: Term, have: list[str]) -> bool:
    wanted = term.words
    n = len(wanted)
    last = wanted[-1]
    for start in range(len(have) - n + 1):
        if have[start:start + n - 1] != list(wanted[:-1]):
            continue
        word = have[start + n - 1]
        if word == last or (term.prefix and word.startswith(last)):
            return True
    return False


def text_of(message: Event) -> str:
    """The searchable text of a message: its text and the text of its parts."""
    texts = [message.text] if message.text else []
    for part in message.parts or ():
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts)
