"""One registry helper for everything intrakd looks up by name: models, distillation methods, datasets.

A :class:`Registry` is a read-only mapping ``{name: object}`` filled by :meth:`Registry.register` (as a call or
as a decorator). Every unknown name raises :class:`UnknownNameError`, whose message lists the valid names; it is
both a ``KeyError`` (a mapping lookup) and a ``ValueError`` (a bad value given by a user), so code written
against either keeps catching it. Torch-free and import-free: the report layer and the workflow may read any
registry's names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A name no registry entry has: ``unknown <kind> 'x'; valid: a, b, c``."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class Registry(Mapping[str, T], Generic[T]):
    """``{name: object}`` of one ``kind`` ("model", "method", "dataset"), in registration order."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name`` and return it; without ``obj``, a decorator doing that. ValueError for
        an empty name or one registered twice."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return what it held (a test's throwaway entry); :class:`UnknownNameError` if absent."""
        item = self[name]
        del self._items[name]
        return item

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def unknown(self, name, what: str | None = None) -> UnknownNameError:
        """The error for ``name``: ``unknown <what> 'name'; valid: <sorted names>`` (``what``: the kind, or the key
        the name was given under, e.g. a run's ``teacher``)."""
        return UnknownNameError(f"unknown {what or self.kind} {name!r}; valid: {', '.join(self.names())}")

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name (a list from YAML) is unknown too
            raise self.unknown(name) from None

    def __contains__(self, name) -> bool:
        try:
            return name in self._items
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

