"""A registry of classes chosen by name (runtimes, search spaces, searchers), like timm's.

SPACES = Registry[SearchSpace]("space", "search space")
@SPACES.register
class FBNet(SearchSpace): name = "fbnet"
SPACES.create("fbnet", resolution=224)
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, field: str, what: str):
        self.field, self.what = field, what  # field: the name errors start with
        self._classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        name: str = cls.name  # type: ignore[attr-defined]
        if name in self._classes:
            raise RuntimeError(f"{self.what} {name!r} registered twice")
        self._classes[name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            raise ValueError(
                f"{self.field}: unknown {self.what} {name!r} (known: {', '.join(self.names())})"
            ) from None

    def create(self, name: str, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)
