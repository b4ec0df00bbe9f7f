"""Deeply immutable JSON values: what a snapshot's state and metadata are made of.

`frozen(value)` turns the dicts and lists of a JSON value into `FrozenDict` and
`FrozenList`: a `dict` and a `list` for every reader (`json.dumps`, msgspec, `==`,
`isinstance`), whose changing methods raise `TypeError` (as `MappingProxyType` does), so
nested state cannot be changed in place. `copy.copy`/`copy.deepcopy` and `thawed(value)`
give plain, changeable copies. Freezing costs one pass over the value, not over the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"a session snapshot is immutable: {type(self).__name__} cannot be "
                    "changed in place (copy it with copy.deepcopy, or append a state change)")


class FrozenDict(dict[str, Any]):
    """A dict that refuses to change."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return thawed(self)  # type: ignore[no-any-return]

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thawed(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> Any:
        return (dict, (thawed(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        raise TypeError("unhashable type: 'FrozenDict'")


class FrozenList(list[Any]):
    """A list that refuses to change."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return thawed(self)  # type: ignore[no-any-return]

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thawed(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> Any:
        return (list, (thawed(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        raise TypeError("unhashable type: 'FrozenList'")


def frozen(value: Any) -> Any:
    """`value` with every dict and list inside it frozen (other values as they are)."""
    kind = type(value)
    if kind in _FLAT or kind is FrozenDict or kind is FrozenList:
        return value
    if isinstance(value, dict):
        return FrozenDict({k: v if type(v) in _FLAT else frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return FrozenList([v if type(v) in _FLAT else frozen(v) for v in value])
    return value


def thawed(value: Any) -> Any:
    """A plain, changeable copy of a (frozen or not) JSON value."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thawed(v) for v in value]
    return value


_FLAT = frozenset({str, int, float, bool, type(None)})
