"""A name → object registry that fails loudly, in the spirit of timm's model registry.

Registering a name twice raises; looking up an unknown name raises with the closest known names.
A registry is filled by the module that defines it, at import, and nothing else changes global
state on import.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import ConfigError, UnknownNameError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``"backbone"``, ``"strategy"``…)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered (as {self._entries[name]!r}); "
                f"pick another name or remove the first registration"
            )
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._entries))
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{did_you_mean(str(name), self._entries)} "
                f"Known: {known}."
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
