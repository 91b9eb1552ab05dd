"""A write-through cache of settings namespaces (pure: no I/O).

Storage is the only process that opens its databases, so a namespace read
once from the database stays true as long as every committed change to it is
applied here. The service loads a namespace on its first get, serves later
gets from memory, and applies each write only after its transaction
committed. A load that raced a write is not installed: every committed
change bumps the namespace's generation (and an import bumps the epoch of
them all), and a load installs only if neither moved while it read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Namespace = tuple[str, str]  # (persona, skill)

MAX_NAMESPACES = 1024
MAX_KEYS_PER_NAMESPACE = 10_000  # larger namespaces are read from the database each time


@dataclass(frozen=True)
class LoadTicket:
    """What a load saw when it started; install() refuses it if anything moved."""

    namespace: Namespace
    generation: int
    epoch: int


class SettingsCache:
    def __init__(self, max_namespaces: int = MAX_NAMESPACES, max_keys: int = MAX_KEYS_PER_NAMESPACE) -> None:
        self.max_namespaces = max_namespaces
        self.max_keys = max_keys
        self._values: OrderedDict[Namespace, dict[str, str]] = OrderedDict()
        self._generation: dict[Namespace, int] = {}
        self._epoch = 0
        self._too_large: set[Namespace] = set()
        self.hits = 0
        self.loads = 0

    def lookup(self, namespace: Namespace, key: str) -> tuple[bool, str | None]:
        """(found, value): found is False when the namespace is not cached."""
        values = self._values.get(namespace)
        if values is None:
            return False, None
        self._values.move_to_end(namespace)
        self.hits += 1
        return True, values.get(key)

    def cacheable(self, namespace: Namespace) -> bool:
        return namespace not in self._too_large

    def too_large(self, namespace: Namespace) -> None:
        """A load found more than `max_keys`: gets of it go to the database
        (until an import, which may have shrunk it)."""
        self._too_large.add(namespace)

    def begin_load(self, namespace: Namespace) -> LoadTicket:
        return LoadTicket(namespace, self._generation.get(namespace, 0), self._epoch)

    def install(self, ticket: LoadTicket, rows: Mapping[str, str]) -> bool:
        """Cache what a load read, unless a write committed meanwhile."""
        namespace = ticket.namespace
        if ticket.epoch != self._epoch or ticket.generation != self._generation.get(namespace, 0):
            return False
        if len(rows) > self.max_keys:
            self._too_large.add(namespace)
            return False
        self.loads += 1
        self._values[namespace] = dict(rows)
        self._values.move_to_end(namespace)
        while len(self._values) > self.max_namespaces:
            self._values.popitem(last=False)
        return True

    def committed_set(self, namespace: Namespace, key: str, value: str) -> None:
        self._bump(namespace)
        values = self._values.get(namespace)
        if values is None:
            return
        values[key] = value
        if len(values) > self.max_keys:
            del self._values[namespace]
            self._too_large.add(namespace)

    def committed_delete(self, namespace: Namespace, key: str) -> None:
        self._bump(namespace)
        values = self._values.get(namespace)
        if values is not None:
            values.pop(key, None)

    def forget(self, namespaces: Iterable[Namespace]) -> None:
        """The database may or may not hold a change (a commit that failed):
        read these namespaces again."""
        for namespace in namespaces:
            self._bump(namespace)
            self._values.pop(namespace, None)

    def forget_all(self) -> None:
        """Rows changed outside the settings operations (an import)."""
        self._epoch += 1
        self._values.clear()
        self._too_large.clear()

    def _bump(self, namespace: Namespace) -> None:
        self._generation[namespace] = self._generation.get(namespace, 0) + 1

    def detail(self) -> dict[str, int]:
        return {
            "namespaces": len(self._values),
            "keys": sum(len(v) for v in self._values.values()),
            "hits": self.hits,
            "loads": self.loads,
        }
