"""Loading the methodology pack, the grid tables and column-mapping rules.

The default pack ships inside the package (``wattledger/packs/default.toml``) and is read
through ``importlib.resources`` so it works from a wheel, a zip or an editable install alike.
Its origin string says "built-in" so reports can tell it from a user's file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources

from wattledger import _core
from wattledger.errors import ConfigError, GridError, UsageError

PathLike = str | os.PathLike[str]

DEFAULT_PACK_ORIGIN = "wattledger/packs/default.toml (built-in)"

#: ``{canonical: source}`` or ``["canonical=source", ...]``.
ColumnRules = Mapping[str, str] | Sequence[str] | None


def default_pack_text() -> str:
    """The TOML text of the built-in methodology pack."""
    resource = resources.files("wattledger").joinpath("packs").joinpath("default.toml")
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(
            "the built-in methodology pack wattledger/packs/default.toml is missing from this "
            "installation; reinstall wattledger or pass --config CONFIG.toml"
        ) from None


def load_config(path: PathLike | _core.Config | None = None) -> _core.Config:
    """Parse and validate a methodology pack; ``None`` means the built-in default pack."""
    if isinstance(path, _core.Config):
        return path
    if path is None:
        return _core.Config.from_toml(default_pack_text(), origin=DEFAULT_PACK_ORIGIN)
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ConfigError(f"config file {name} does not exist; pass an existing methodology pack (TOML)")
    return _core.Config.from_path(name)


def load_grid(paths: PathLike | Iterable[PathLike] | _core.Grid = (), lifecycle: bool = False) -> _core.Grid:
    """Merge hourly grid intensity files; no files gives an empty grid (every lookup falls back
    to the site's ``fallback_g_per_kwh`` or stays unresolved, and reports say how much)."""
    if isinstance(paths, _core.Grid):
        return paths
    names = [os.fspath(paths)] if isinstance(paths, str | os.PathLike) else [os.fspath(p) for p in paths]
    if not names:
        return _core.Grid.empty()
    for name in names:
        if not os.path.isfile(name):
            raise GridError(f"grid file {name} does not exist; pass an hourly intensity CSV with --grid")
    return _core.Grid.from_paths(names, lifecycle=lifecycle)


def column_rules(columns: ColumnRules) -> list[str]:
    """Normalise column renames to the engine's ``canonical=source`` strings."""
    if columns is None:
        return []
    if isinstance(columns, Mapping):
        rules = [f"{canonical}={source}" for canonical, source in columns.items()]
    elif isinstance(columns, str):
        rules = [columns]
    else:
        rules = list(columns)
    for rule in rules:
        canonical, sep, source = rule.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise UsageError(f"column rule {rule!r} is not canonical=source (e.g. --column ts=timestamp)")
    return rules
