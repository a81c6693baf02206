"""Lazy package attributes (PEP 562): a package's public names load their module on first use.

``import recagent.agent.schemas`` then runs only what that module needs, not FAISS, torch or the pipeline, which
is what lets the remote LangChain tools and ``recagent --help`` start in a blink.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_attributes(package: str, table: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``package.table[name]`` and returns its ``name``."""

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(importlib.import_module(package), name, value)  # later lookups skip __getattr__
        return value

    return __getattr__
