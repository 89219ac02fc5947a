"""Package names loaded on first use (PEP 562), for packages whose submodules pull in heavy
imports that most callers never need (httpx, aiosqlite, cryptography).

    if not TYPE_CHECKING:  # mypy reads the package's TYPE_CHECKING imports instead
        __getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())

`where` maps each public name to the submodule that defines it; once loaded, a name is a plain
attribute of the package."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's `__getattr__` and `__dir__`."""

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # once loaded, a plain attribute
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *where})

    return getattr_, dir_
