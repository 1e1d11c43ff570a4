"""Deferred imports of heavy libraries.

Why: ``wattledger ingest`` runs every night and its wall time is part of the product; importing
polars (and through it numpy/pyarrow) costs a few hundred milliseconds that the ingest path
never uses. Modules that use polars only inside functions bind ``pl = deferred("polars")``;
the import happens on the first attribute access, then costs a dict lookup.
"""

from __future__ import annotations

import importlib
from typing import Any


class Deferred:
    """A stand-in for a module, imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


def deferred(name: str) -> Any:
    return Deferred(name)
